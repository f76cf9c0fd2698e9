"""Fault tests: the warehouse emulator goes down before or in the middle of a load.

fakesnow runs privately (its own state dir and port) so it can be stopped; the processed
files live on the shared MinIO under a unique prefix. Each test proves the load retries
with backoff, fails with a clear message and a non-zero exit, leaves nothing half-applied,
and that a rerun once the warehouse is back equals a clean single load (count + key checksum).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from market_common.clients import snowflake_connection
from market_common.exitcodes import ExitCode
from market_common.runtime import child_env
from market_common.settings import MarketSettings
from market_loaders.datasets import HISTORICAL
from market_loaders.errors import SnowflakeUnavailableError
from market_loaders.loader import load_historical, target_ref
from market_testing.pytest_plugin import PrivateStack

if TYPE_CHECKING:
    from conftest import Lake

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "NVDA"]
DAYS = 5
DAY0 = date(2024, 3, 4)


def write_bars(lake: Lake) -> list[tuple[str, date]]:
    """One processed file per day; returns the (symbol, date) keys a load must produce."""
    keys = []
    for d in range(DAYS):
        day = DAY0 + timedelta(days=d)
        lake.put_parquet(
            "historical", f"date={day}/part-00000-c000.snappy.parquet", lake.bars(day, SYMBOLS)
        )
        keys += [(s, day) for s in SYMBOLS]
    lake.put_text("historical", "_SUCCESS", "")
    return keys


def key_checksum(keys: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(sorted(keys)).encode()).hexdigest()


@pytest.fixture
def warehouse(lake: Lake, private_stack: PrivateStack) -> MarketSettings:
    """``lake.settings`` pointed at a private fakesnow, with short connect timeouts."""
    private = private_stack.up("snowflake")
    settings = lake.settings.model_copy(deep=True)
    settings.snowflake = settings.snowflake.model_copy(
        update={
            "host": private.settings.stack.host,
            "port": private.settings.stack.fakesnow_port,
            "login_timeout_s": 2,
            "connect_retries": 3,
        }
    )
    return settings


def target_state(settings: MarketSettings) -> tuple[list[tuple[Any, ...]], int]:
    """(SYMBOL, DATE) keys in the target and the audit row count; empty if never created."""
    target = target_ref(HISTORICAL, settings)
    audit = target.sibling(settings.snowflake.audit_table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn = snowflake_connection(settings)
    try:
        cur = conn.cursor()
        databases = {row[1] for row in cur.execute("show databases").fetchall()}
        if target.database not in databases:
            return [], 0
        tables = {
            row[1]
            for row in cur.execute(f"show tables in schema {target.database}.{target.schema}")
        }
        keys = (
            list(cur.execute(f"select symbol, date from {target.fqn}").fetchall())  # noqa: S608
            if target.name in tables
            else []
        )
        audited = (
            cur.execute(f"select count(*) from {audit.fqn}").fetchone()[0]  # noqa: S608
            if audit.name in tables
            else 0
        )
        return keys, audited
    finally:
        conn.close()


def market_load(settings: MarketSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``market-load`` CLI in a child process, configured only through MARKET_* env."""
    s3, sf = settings.s3, settings.snowflake
    env = {
        "MARKET_S3__ENDPOINT_URL": s3.endpoint_url or "",
        "MARKET_S3__ACCESS_KEY_ID": s3.access_key_id.get_secret_value() if s3.access_key_id else "",
        "MARKET_S3__SECRET_ACCESS_KEY": (
            s3.secret_access_key.get_secret_value() if s3.secret_access_key else ""
        ),
        "MARKET_S3__BUCKET": s3.bucket,
        "MARKET_S3__PROCESSED_PREFIX": s3.processed_prefix,
        "MARKET_SNOWFLAKE__HOST": sf.host or "",
        "MARKET_SNOWFLAKE__PORT": str(sf.port),
        "MARKET_SNOWFLAKE__PROTOCOL": sf.protocol or "http",
        "MARKET_SNOWFLAKE__BATCH_DATABASE": sf.batch_database,
        "MARKET_SNOWFLAKE__LOGIN_TIMEOUT_S": str(sf.login_timeout_s),
        "MARKET_SNOWFLAKE__CONNECT_RETRIES": str(sf.connect_retries),
        "MARKET_LOG_FORMAT": "console",
    }
    return subprocess.run(
        [sys.executable, "-m", "market_loaders.cli", *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_cli_exits_non_zero_with_a_clear_message_when_the_warehouse_is_down(
    lake: Lake, warehouse: MarketSettings, private_stack: PrivateStack
) -> None:
    """Emulator stopped: ``market-load`` retries with backoff, exits 4 naming the endpoint,
    and nothing reaches the warehouse; once it is back, a rerun is a clean single load."""
    keys = write_bars(lake)
    private_stack.stop("snowflake")

    down = market_load(warehouse, "historical", "--json")
    output = " ".join((down.stdout + down.stderr).split())  # rich wraps long lines
    assert down.returncode == ExitCode.UNAVAILABLE, output
    assert "warehouse unreachable" in output and "after 3 attempts" in output, output
    assert f"{warehouse.snowflake.host}:{warehouse.snowflake.port}" in output, output
    assert output.count("snowflake connect failed, retrying") >= 2, "retried before giving up"

    private_stack.start("snowflake")
    assert target_state(warehouse) == ([], 0), "nothing was applied while the warehouse was down"
    back = market_load(warehouse, "historical", "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    loaded, audited = target_state(warehouse)
    assert len(loaded) == len(keys) and audited == DAYS
    assert key_checksum(loaded) == key_checksum(keys), "the rerun equals a clean single load"


def test_warehouse_lost_before_the_merge_leaves_the_target_untouched(
    lake: Lake, warehouse: MarketSettings, private_stack: PrivateStack
) -> None:
    """Emulator stopped between staging and the MERGE: the load retries, fails clearly,
    the target has no row and no audit; the rerun equals a clean single load."""
    keys = write_bars(lake)
    statements: list[str] = []

    def connect_then_die_before_merge(settings: MarketSettings, **kwargs: Any) -> Any:
        # A real connection to the real emulator; the only addition is that the emulator
        # is stopped right before the MERGE is sent, the worst moment for a half-apply.
        conn = snowflake_connection(settings, network_timeout=10, **kwargs)
        cursor = conn.cursor

        def watched_cursor(*args: Any, **kw: Any) -> Any:
            cur = cursor(*args, **kw)
            execute = cur.execute

            def watched_execute(statement: str, *a: Any, **k: Any) -> Any:
                statements.append(statement.split(None, 1)[0].lower())
                if statement.lstrip().lower().startswith("merge"):
                    private_stack.stop("snowflake")
                return execute(statement, *a, **k)

            cur.execute = watched_execute
            return cur

        conn.cursor = watched_cursor
        return conn

    sleeps: list[float] = []
    with pytest.raises(SnowflakeUnavailableError, match="after 3 attempts"):
        load_historical(
            warehouse, s3=lake.s3, connect=connect_then_die_before_merge, sleep=sleeps.append
        )
    assert "copy" in statements and "merge" in statements, statements
    # The load's retries and the reconnects inside them both wait by the shared jittered
    # policy (market_common.retry), so their waits interleave: assert that every retry waited.
    assert len(sleeps) >= 2 and all(d > 0 for d in sleeps), f"backoff between attempts: {sleeps}"

    private_stack.start("snowflake")
    assert target_state(warehouse) == ([], 0), "no row and no audit from the failed load"
    result = load_historical(warehouse, s3=lake.s3, clock=lambda: datetime(2024, 6, 1))
    loaded, audited = target_state(warehouse)
    assert result.files_loaded == DAYS and audited == DAYS
    assert len(loaded) == len(keys) and key_checksum(loaded) == key_checksum(keys)
