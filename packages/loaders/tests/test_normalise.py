"""Processed-zone Arrow → staging shape: types, partition fill, UTC, rejected rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from market_loaders.datasets import HISTORICAL, REALTIME
from market_loaders.errors import FileSchemaError
from market_loaders.normalise import normalise, staging_schema
from market_loaders.sql import SOURCE_OBJECT, SOURCE_ROW, SOURCE_SEQ

LOAD_TS = datetime(2024, 6, 1, 12, 0, 0)


def bars(**overrides: object) -> pa.Table:
    cols: dict[str, object] = {
        "symbol": ["AAPL", None, "MSFT"],
        "open": [1.0, 2.0, 3.0],
        "high": [1.5, 2.5, 3.5],
        "low": [0.5, 1.5, 2.5],
        "close": [1.2, 2.2, 3.2],
        "volume": pa.array([10, 20, 30], pa.int32()),
        "source": ["synthetic"] * 3,
    }
    cols.update(overrides)
    return pa.table(cols)


def test_historical_date_from_partition_and_null_keys_dropped() -> None:
    out = normalise(
        bars(),
        HISTORICAL,
        partitions={"date": "2024-01-02"},
        object_key="k",
        sequence=4,
        load_ts=LOAD_TS,
    )
    assert out.table.schema == staging_schema(HISTORICAL)
    assert (out.rows_read, out.rows_rejected) == (3, 1)
    got = out.table.to_pylist()
    assert [r["SYMBOL"] for r in got] == ["AAPL", "MSFT"]
    assert {r["DATE"] for r in got} == {date(2024, 1, 2)}
    assert [r["DAILY_VOLUME"] for r in got] == [10, 30]
    assert {r["BATCH_LOAD_TIMESTAMP"] for r in got} == {LOAD_TS}
    assert {(r[SOURCE_OBJECT], r[SOURCE_SEQ]) for r in got} == {("k", 4)}
    assert [r[SOURCE_ROW] for r in got] == [0, 2], "row positions of the original file"


def test_trade_date_column_wins_over_partition() -> None:
    table = bars(trade_date=pa.array([date(2023, 5, 5)] * 3))
    out = normalise(
        table,
        HISTORICAL,
        partitions={"date": "2099-01-01"},
        object_key="k",
        sequence=0,
        load_ts=LOAD_TS,
    )
    assert {r["DATE"] for r in out.table.to_pylist()} == {date(2023, 5, 5)}


def test_missing_column_rejects_file() -> None:
    with pytest.raises(FileSchemaError, match="DAILY_CLOSE"):
        normalise(
            bars().drop(["close"]),
            HISTORICAL,
            partitions={"date": "2024-01-02"},
            object_key="k",
            sequence=0,
            load_ts=LOAD_TS,
        )


def test_uncastable_column_rejects_file() -> None:
    with pytest.raises(FileSchemaError, match="DAILY_OPEN"):
        normalise(
            bars(open=["x", "y", "z"]),
            HISTORICAL,
            partitions={"date": "2024-01-02"},
            object_key="k",
            sequence=0,
            load_ts=LOAD_TS,
        )


def test_realtime_timestamps_become_naive_utc_micros() -> None:
    start = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    table = pa.table(
        {
            "symbol": ["AAPL", "AAPL"],
            # nanosecond INT96-style naive UTC, and a tz-aware column in another zone
            "window_start": pa.array(
                [start.replace(tzinfo=None), start.replace(tzinfo=None) + timedelta(minutes=15)],
                pa.timestamp("ns"),
            ),
            "window_end": pa.array(
                [start.astimezone(plus_two) + timedelta(minutes=15)] * 2,
                pa.timestamp("us", tz="+02:00"),
            ),
            **{
                c: [1.0, 2.0]
                for c in (
                    "ma_15m",
                    "ma_1h",
                    "volatility_15m",
                    "window_open",
                    "window_high",
                    "window_low",
                    "window_close",
                )
            },
            "volume_sum_15m": pa.array([5, 6], pa.int64()),
            "tick_count": pa.array([3, 4], pa.int64()),
        }
    )
    out = normalise(
        table,
        REALTIME,
        partitions={"date": "2024-01-02"},
        object_key="k",
        sequence=0,
        load_ts=LOAD_TS,
    )
    row = out.table.to_pylist()[0]
    assert out.table.schema.field("WINDOW_START").type == pa.timestamp("us")
    assert row["WINDOW_START"] == start.replace(tzinfo=None)
    assert row["WINDOW_END"] == (start + timedelta(minutes=15)).replace(tzinfo=None)
