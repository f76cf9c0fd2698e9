"""Loads against the real local stack (MinIO + fakesnow): idempotence, increments, commit log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from market_common.exitcodes import ExitCode
from market_common.settings import MarketSettings
from market_loaders.cli import run_load
from market_loaders.datasets import HISTORICAL, REALTIME
from market_loaders.errors import LoadFailedError, SnowflakeAuthError, SnowflakeUnavailableError
from market_loaders.loader import load_historical, load_realtime, target_ref

if TYPE_CHECKING:
    from conftest import Lake

pytestmark = pytest.mark.integration

INJECTION = "AAPL'; drop table x; --"
DAY0 = date(2024, 3, 4)


def ticking_clock(start: datetime = datetime(2024, 6, 1, 9, 0)) -> Callable[[], datetime]:
    """A clock one minute later on every call, so runs have distinct load timestamps."""
    state = {"now": start}

    def now() -> datetime:
        state["now"] += timedelta(minutes=1)
        return state["now"]

    return now


def write_days(lake: Lake, days: int, symbols: list[str]) -> dict[date, str]:
    keys = {}
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        keys[day] = lake.put_parquet(
            "historical", f"date={day}/part-00000-c000.snappy.parquet", lake.bars(day, symbols)
        )
    lake.put_text("historical", "_SUCCESS", "")
    return keys


def target_rows(lake: Lake, dataset: Any = HISTORICAL) -> list[tuple[Any, ...]]:
    ref = target_ref(dataset, lake.settings)
    return lake.rows(ref.fqn, ", ".join(dataset.key))


def audit_rows(lake: Lake, dataset: Any = HISTORICAL) -> list[tuple[Any, ...]]:
    ref = target_ref(dataset, lake.settings)
    return lake.rows(ref.sibling(lake.settings.snowflake.audit_table).fqn, "OBJECT_KEY, LOADED_AT")


def test_historical_load_is_idempotent_and_incremental(lake: Lake) -> None:
    symbols = ["AAPL", "MSFT", "NVDA"]
    keys = write_days(lake, 4, symbols)
    clock = ticking_clock()

    first = load_historical(lake.settings, s3=lake.s3, clock=clock)
    rows1 = target_rows(lake)
    assert (first.files_seen, first.files_loaded, first.files_skipped) == (4, 4, 0)
    assert first.rows_inserted == len(rows1) == 4 * len(symbols)
    expected = sorted((s, day) for day in keys for s in symbols)
    assert [(r[0], r[1]) for r in rows1] == expected

    second = load_historical(lake.settings, s3=lake.s3, clock=clock)
    rows2 = target_rows(lake)
    assert (second.files_loaded, second.files_skipped, second.rows_merged) == (0, 4, 0)
    assert lake.checksum(rows2) == lake.checksum(
        rows1
    ), "a re-run leaves the target identical (incl. load timestamps)"
    assert len(audit_rows(lake)) == 4, "skipped files are not re-audited"

    # Change one file: only its rows change, and only they get a new load timestamp.
    changed_day = DAY0 + timedelta(days=2)
    lake.put_parquet(
        "historical",
        f"date={changed_day}/part-00000-c000.snappy.parquet",
        lake.bars(changed_day, symbols, scale=2.0),
    )
    third = load_historical(lake.settings, s3=lake.s3, clock=clock)
    rows3 = target_rows(lake)
    assert (third.files_loaded, third.files_skipped) == (1, 3)
    assert third.rows_updated == len(symbols) and third.rows_inserted == 0
    before = {(r[0], r[1]): r for r in rows1}
    after = {(r[0], r[1]): r for r in rows3}
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {(s, changed_day) for s in symbols}
    ts_col = [c.name for c in HISTORICAL.columns].index(HISTORICAL.load_ts_column)
    assert {after[k][ts_col] for k in changed} == {third.loaded_at}
    assert {before[k][ts_col] for k in after.keys() - changed} == {first.loaded_at}

    # A full refresh re-merges every file but changes nothing.
    refresh = load_historical(lake.settings, s3=lake.s3, clock=clock, full_refresh=True)
    assert (refresh.files_loaded, refresh.rows_merged) == (4, 0)
    assert lake.checksum(target_rows(lake)) == lake.checksum(rows3)


def test_symbol_injection_is_stored_literally(lake: Lake) -> None:
    write_days(lake, 1, [INJECTION, "MSFT"])
    result = load_historical(lake.settings, s3=lake.s3)
    assert result.rows_inserted == 2
    symbols = [r[0] for r in target_rows(lake)]
    assert INJECTION in symbols and "MSFT" in symbols
    again = load_historical(lake.settings, s3=lake.s3, full_refresh=True)
    assert again.rows_merged == 0, "the literal value matches itself on re-merge"


def test_table_setting_injection_is_rejected(lake: Lake) -> None:
    with pytest.raises(ValueError, match="not a valid identifier"):
        MarketSettings.model_validate(
            lake.settings.model_dump(by_alias=True)
            | {
                "snowflake": {
                    **lake.settings.snowflake.model_dump(by_alias=True),
                    "batch_table": "T; drop table x",
                }
            }
        )


def test_prefix_narrows_files_and_bad_files_are_rejected(lake: Lake) -> None:
    write_days(lake, 2, ["AAPL"])
    bad = lake.put_parquet(
        "historical", f"date={DAY0}/part-00001-bad.parquet", pa.table({"symbol": ["X"]})
    )
    code = run_load(
        "historical",
        full_refresh=False,
        prefix=f"date={DAY0}",
        as_json=False,
        settings=lake.settings,
    )
    assert code == ExitCode.REJECTED
    rows = target_rows(lake)
    assert {r[1] for r in rows} == {DAY0}, "only the prefixed partition loaded"
    audited = {r[1] for r in audit_rows(lake)}
    assert bad not in audited, "a rejected file is not audited, so it is retried next run"


def window_table(symbol: str, start: datetime, count: int, scale: float = 1.0) -> pa.Table:
    starts = [start + timedelta(minutes=15 * i) for i in range(count)]
    vals = [scale * (10 + i) for i in range(count)]
    return pa.table(
        {
            "symbol": [symbol] * count,
            "window_start": pa.array(starts, pa.timestamp("ns")),
            "window_end": pa.array([s + timedelta(minutes=15) for s in starts], pa.timestamp("ns")),
            "ma_15m": vals,
            "ma_1h": vals,
            "volatility_15m": [0.1] * count,
            "volume_sum_15m": pa.array([100] * count, pa.int64()),
            "tick_count": pa.array([5] * count, pa.int64()),
            "window_open": vals,
            "window_high": vals,
            "window_low": vals,
            "window_close": vals,
        }
    )


def sink_log(lake: Lake, *keys: str) -> str:
    lines = ["v1"] + [
        json.dumps({"path": f"s3a://{lake.bucket}/{k}", "size": 1, "isDir": False, "modificationTime": 0,
                    "blockReplication": 1, "blockSize": 1, "action": "add"})
        for k in keys
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_realtime_loads_only_committed_files(lake: Lake) -> None:
    t0 = datetime(2024, 3, 4, 14, 30)
    k0 = lake.put_parquet(
        "realtime", "date=2024-03-04/part-00000-b0.c000.snappy.parquet", window_table("AAPL", t0, 4)
    )
    k1 = lake.put_parquet(
        "realtime", "date=2024-03-04/part-00000-b1.c000.snappy.parquet", window_table("MSFT", t0, 3)
    )
    k2 = lake.put_parquet(
        "realtime", "date=2024-03-04/part-00000-b2.c000.snappy.parquet", window_table("NVDA", t0, 2)
    )
    garbage = lake.put_parquet(
        "realtime",
        "date=2024-03-04/part-00000-killed.c000.snappy.parquet",
        window_table("TSLA", t0, 5),
    )
    lake.put_text("realtime", "_spark_metadata/0", sink_log(lake, k0))
    lake.put_text("realtime", "_spark_metadata/1.compact", sink_log(lake, k0, k1))
    lake.put_text("realtime", "_spark_metadata/2", sink_log(lake, k2))
    lake.put_text("realtime", "_spark_metadata/.3.tmp", sink_log(lake, garbage))

    result = load_realtime(lake.settings, s3=lake.s3)
    assert (result.files_seen, result.files_uncommitted, result.files_loaded) == (3, 1, 3)
    rows = target_rows(lake, REALTIME)
    assert sorted({r[0] for r in rows}) == ["AAPL", "MSFT", "NVDA"]
    assert len(rows) == 4 + 3 + 2 == result.rows_inserted
    aapl_first = next(r for r in rows if r[0] == "AAPL")
    assert aapl_first[1] == t0 and aapl_first[2] == t0 + timedelta(
        minutes=15
    ), "UTC NTZ timestamps round-trip"

    again = load_realtime(lake.settings, s3=lake.s3)
    assert (again.files_skipped, again.rows_merged) == (3, 0)
    assert lake.checksum(target_rows(lake, REALTIME)) == lake.checksum(rows)


def test_audit_failure_after_merge_is_repaired_by_rerun(lake: Lake) -> None:
    """Killed between MERGE and audit: the next run re-merges without any visible change."""
    write_days(lake, 2, ["AAPL", "MSFT"])
    target = target_ref(HISTORICAL, lake.settings)
    audit = target.sibling(lake.settings.snowflake.audit_table)
    conn = lake.connect()
    cur = conn.cursor()
    cur.execute(f"create database if not exists {target.database}")
    cur.execute(f"create schema if not exists {target.database}.{target.schema}")
    # An audit table whose ROW_COUNT cannot take a number: the audit insert fails after the MERGE.
    cur.execute(
        f"create table {audit.fqn} (TARGET_TABLE varchar, OBJECT_KEY varchar, ETAG varchar, "
        "SIZE_BYTES number(38,0), ROW_COUNT date, LOADED_AT timestamp_ntz, RUN_ID varchar)"
    )
    with pytest.raises(LoadFailedError):
        load_historical(lake.settings, s3=lake.s3)
    merged = target_rows(lake)
    assert len(merged) == 4, "the MERGE itself completed"
    cur.execute(f"drop table {audit.fqn}")
    conn.close()

    repaired = load_historical(lake.settings, s3=lake.s3)
    assert (repaired.files_loaded, repaired.rows_merged) == (2, 0)
    assert lake.checksum(target_rows(lake)) == lake.checksum(merged)
    assert len(audit_rows(lake)) == 2


@pytest.fixture
def closed_port() -> Iterator[int]:
    from market_testing.pytest_plugin import free_port

    yield free_port()


def test_warehouse_down_retries_then_fails_clearly(lake: Lake, closed_port: int) -> None:
    write_days(lake, 1, ["AAPL"])
    settings = lake.settings.model_copy(deep=True)
    settings.snowflake.port = closed_port
    settings.snowflake.login_timeout_s = 1
    settings.snowflake.connect_retries = 3
    sleeps: list[float] = []
    with pytest.raises(SnowflakeUnavailableError, match=f"127.0.0.1:{closed_port}"):
        load_historical(settings, s3=lake.s3, sleep=sleeps.append)
    assert (
        sleeps == sorted(sleeps) and len(sleeps) == 2 and sleeps[1] > sleeps[0]
    ), "exponential backoff"

    sleeps.clear()
    code = run_load(
        "historical",
        full_refresh=False,
        prefix=None,
        as_json=False,
        settings=settings,
        sleep=sleeps.append,
    )
    assert code == ExitCode.UNAVAILABLE
    # Nothing was applied anywhere: the real warehouse has no trace of this load.
    conn = lake.connect()
    dbs = {r[1] for r in conn.cursor().execute("show databases").fetchall()}
    conn.close()
    assert lake.settings.snowflake.batch_database not in dbs


def test_auth_failure_exits_without_retrying(lake: Lake) -> None:
    write_days(lake, 1, ["AAPL"])
    calls: list[str] = []

    def rejecting_connect(settings: MarketSettings, **_: Any) -> Any:
        calls.append(settings.snowflake.user)
        raise SnowflakeAuthError("Snowflake rejected user 'market': Incorrect username or password")

    code = run_load(
        "historical",
        full_refresh=False,
        prefix=None,
        as_json=False,
        settings=lake.settings,
        connect=rejecting_connect,
    )
    assert code == ExitCode.AUTH
    assert len(calls) == 1, "auth failures are not retried"
