"""Raw-zone key scheme and table layout."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market_ingest import rawzone
from market_ingest.rawzone import (
    SCHEMAS,
    object_key,
    parquet_bytes,
    split_by_partition,
    to_table,
    window_of,
)
from market_ingest.records import validate_frame
from market_ingest.sources.synthetic import SyntheticSource


@pytest.mark.parametrize("offset", [0, 1, 99, 100, 101, 12_345, 10**12 + 7])
def test_window_contains_offset_and_is_aligned(offset: int) -> None:
    first, last = window_of(offset, 100)
    assert first <= offset <= last and first % 100 == 0 and last - first == 99


def test_keys_are_deterministic_and_sort_by_offset() -> None:
    keys = [
        object_key(
            "raw",
            "historical",
            "year=2024",
            topic="stock-market-batch",
            partition=2,
            first=f,
            last=f + 99,
        )
        for f in (900, 1000, 100, 0)
    ]
    assert keys[3] == (
        "raw/historical/year=2024/part-stock-market-batch-p0002-" f"o{0:020d}-{99:020d}.parquet"
    )
    assert sorted(keys) == [keys[3], keys[2], keys[0], keys[1]]
    again = object_key(
        "raw/",
        "historical",
        "year=2024",
        topic="stock-market-batch",
        partition=2,
        first=900,
        last=999,
    )
    assert again == keys[0]


def _table(stream: str) -> tuple[pd.DataFrame, pa.Table]:
    src = SyntheticSource(seed=5)
    now = datetime(2025, 1, 10, tzinfo=UTC)
    if stream == "historical":
        frame = src.daily_frame(
            ["AAPL", "MSFT"], pd.Timestamp("2022-12-20").date(), pd.Timestamp("2024-01-05").date()
        )
        kind = "daily_bar"
    else:
        from market_ingest.clock import SimulatedClock

        frame = pd.concat(
            list(src.ticks(["AAPL"], clock=SimulatedClock(now), session_minutes=90)),
            ignore_index=True,
        )
        kind = "tick"
    checked = validate_frame(kind, frame.assign(schema_version=1), now=now)  # type: ignore[arg-type]
    n = len(checked.frame)
    table = to_table(
        stream,  # type: ignore[arg-type]
        checked.frame,
        topic="t",
        partition=1,
        offsets=np.arange(n, dtype=np.int64) + 500,
        timestamps_ms=np.full(n, 1_700_000_000_000),
        ingested_at=now,
    )
    return checked.frame, table


def test_historical_split_by_trade_date_year() -> None:
    frame, table = _table("historical")
    assert table.schema == SCHEMAS["historical"]
    groups = dict(split_by_partition("historical", table))  # type: ignore[arg-type]
    expected = frame["trade_date"].dt.year.value_counts().to_dict()
    assert {k: v.num_rows for k, v in groups.items()} == {
        f"year={y}": n for y, n in expected.items()
    }
    back = pq.read_table(io.BytesIO(parquet_bytes(groups["year=2023"])))
    assert back.schema == SCHEMAS["historical"]
    assert {d.year for d in back.column("trade_date").to_pylist()} == {2023}


def test_realtime_split_by_utc_date_and_hour() -> None:
    frame, table = _table("realtime")
    groups = dict(split_by_partition("realtime", table))  # type: ignore[arg-type]
    expected = frame["ts"].dt.strftime("date=%Y-%m-%d/hour=%H").value_counts().to_dict()
    assert {k: v.num_rows for k, v in groups.items()} == expected
    assert sum(g.num_rows for g in groups.values()) == len(frame)


def test_window_in_key_reads_back_what_object_key_names() -> None:
    prefix = rawzone.objects_prefix(
        "raw", "historical", "year=2024", topic="t-p0001-o1", partition=1
    )
    key = rawzone.object_key(
        "raw", "historical", "year=2024", topic="t-p0001-o1", partition=1, first=20, last=39
    )
    assert rawzone.window_in_key(key, prefix) == (20, 39)
    other_partition = rawzone.objects_prefix(
        "raw", "historical", "year=2024", topic="t-p0001-o1", partition=11
    )
    assert rawzone.window_in_key(key, other_partition) is None
    assert rawzone.window_in_key(prefix + "00000000000000000020-x.parquet", prefix) is None


def test_without_offsets_keeps_rows_outside_the_window() -> None:
    table = pa.table({"kafka_offset": pa.array([3, 7, 8, 12, 14], pa.int64())})
    kept = rawzone.without_offsets(table, 7, 12)
    assert kept.column("kafka_offset").to_pylist() == [3, 14]
