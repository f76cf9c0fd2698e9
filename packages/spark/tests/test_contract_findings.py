"""Spark side of issue #12: one contract in every engine, on literal rows.

The batch quality step must give the contract's codes (not its own), honour the configured
clock skew, bound the numbers so the aggregates cannot overflow, and the batch dedup must
let a correction win over a re-consumed original. The DuckDB SQL form of the benchmark must
give the same reasons as Spark.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import SparkSession

from market_benchmarks.spark import _reason_sql
from market_common.contract_spec import PRICE_MAX, VOLUME_MAX
from market_common.contracts import ContractPolicy, DailyBar, InvalidRecordError, validate_payload
from market_spark.schemas import RAW_HISTORICAL
from market_spark.steps import (
    historical_dedup,
    historical_quality,
    tick_parse,
    tick_quality,
    tick_windows,
)
from market_testing.bad_inputs import tick_record

pytestmark = pytest.mark.spark
NOW = datetime(2024, 6, 3, 23, 0, tzinfo=UTC)
INGESTED = datetime(2024, 6, 3, 12, 0)


def raw_bar(offset: int, **changes: Any) -> dict[str, Any]:
    row = {
        "symbol": "AAPL", "trade_date": date(2024, 6, 3), "open": 100.0, "high": 102.0,
        "low": 99.0, "close": 101.0, "volume": 1_000, "source": "t", "schema_version": 1,
        "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": offset,
        "ingested_at": INGESTED,
    }  # fmt: skip
    return row | changes


# (planted changes, the contract's code): findings of #12 and faults combined in one row.
CASES: list[tuple[dict[str, Any], str | None]] = [
    ({}, None),
    ({"volume": 2**63 - 1}, "out_of_bounds"),
    ({"close": 1e308, "high": 1e308}, "out_of_bounds"),
    ({"symbol": None}, "missing_field"),
    ({"close": None}, "missing_field"),
    ({"high": float("inf")}, "non_finite"),
    ({"open": 200.0}, "price_outside_range"),
    ({"trade_date": date(2024, 6, 5)}, "future_timestamp"),
    ({"symbol": "bad sym", "close": float("nan")}, "invalid_symbol"),
    ({"volume": -1, "low": 0.0}, "non_positive_price"),
    ({"schema_version": 2, "close": None}, "unsupported_schema_version"),
    ({"high": 98.0, "trade_date": date(2030, 1, 1)}, "high_below_low"),
]


def _classify(spark: SparkSession, rows: list[dict[str, Any]], policy: ContractPolicy) -> list[Any]:
    df = spark.createDataFrame(rows, RAW_HISTORICAL)
    out = historical_quality.transform(df, now=NOW, policy=policy)
    return [r["reason"] for r in out.orderBy("kafka_offset").collect()]


def _pydantic(row: dict[str, Any], policy: ContractPolicy) -> str | None:
    wire = {k: row[k] for k in DailyBar.model_fields if row.get(k) is not None}
    wire["trade_date"] = row["trade_date"].isoformat()
    try:
        validate_payload("daily_bar", wire, now=NOW, future_skew=policy.future_skew)
    except InvalidRecordError as exc:
        return exc.reason
    return None


def test_finding_batch_quality_uses_the_contract_codes(spark: SparkSession) -> None:
    policy = ContractPolicy()
    rows = [raw_bar(i, **changes) for i, (changes, _) in enumerate(CASES)]
    assert _classify(spark, rows, policy) == [code for _, code in CASES]
    # Same verdict as pydantic for every row a wire record can express.
    for row, (_, code) in zip(rows, CASES, strict=True):
        if row["symbol"] is not None and row["close"] is not None:
            assert _pydantic(row, policy) == code, row


def test_finding_batch_future_cutoff_honours_the_configured_skew(spark: SparkSession) -> None:
    tomorrow = raw_bar(0, trade_date=date(2024, 6, 4))  # NOW is 23:00 UTC on 06-03
    assert _classify(spark, [tomorrow], ContractPolicy()) == ["future_timestamp"]
    lenient = ContractPolicy(future_skew=timedelta(hours=2))
    assert _classify(spark, [tomorrow], lenient) == [None]


def test_finding_correction_beats_a_reconsumed_original(spark: SparkSession) -> None:
    original = raw_bar(10, close=101.0)
    correction = raw_bar(25, close=100.5)
    # A group reset re-reads the original later: newer ingested_at, same offset.
    reconsumed = raw_bar(10, close=101.0, ingested_at=INGESTED + timedelta(days=2))
    df = spark.createDataFrame([original, correction, reconsumed], RAW_HISTORICAL)
    (kept,) = historical_dedup.transform(df).collect()
    assert kept["close"] == 100.5


def test_duckdb_sql_form_gives_the_same_reasons(spark: SparkSession) -> None:
    import duckdb
    import pyarrow as pa

    rows = [raw_bar(i, **changes) for i, (changes, _) in enumerate(CASES)]
    frame = pa.Table.from_pylist(rows)  # noqa: F841 - read by DuckDB's replacement scan
    con = duckdb.connect()
    got = con.execute(
        f"SELECT {_reason_sql(NOW)} AS reason FROM frame ORDER BY kafka_offset"  # noqa: S608
    ).fetchall()
    assert [r[0] for r in got] == [code for _, code in CASES]


def _ticks(spark: SparkSession, records: list[dict[str, Any]]) -> Any:
    df = spark.createDataFrame(
        [(None, json.dumps(r).encode(), "t", 0, i, INGESTED) for i, r in enumerate(records)],
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    policy = ContractPolicy()
    return tick_quality.transform(tick_parse.transform(df, policy=policy), policy=policy, now=NOW)


def test_finding_volume_int64_max_tick_is_quarantined_and_window_sums_cannot_overflow(
    spark: SparkSession,
) -> None:
    # Was: 2^63-1 passed the contract and overflowed the windows' ANSI sum(volume), so the
    # stream failed on that batch on every rerun. The largest volume the contract admits
    # summed over many ticks of one window stays within 64 bits.
    start = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)
    valid = [
        tick_record("AAPL", start + timedelta(seconds=i)) | {"volume": VOLUME_MAX}
        for i in range(50)
    ]
    huge = tick_record("AAPL", start) | {"volume": 2**63 - 1}
    checked = _ticks(spark, [*valid, huge])
    reasons = [r["reason"] for r in checked.orderBy("kafka_offset").collect()]
    assert reasons == [None] * len(valid) + ["out_of_bounds"]
    (window,) = tick_windows.transform(checked.where("reason IS NULL")).collect()
    assert window["volume_sum_15m"] == VOLUME_MAX * len(valid)


def test_finding_price_1e308_tick_is_quarantined_and_window_means_stay_finite(
    spark: SparkSession,
) -> None:
    # Was: 1e308 was finite and positive, and sum(price) over a window became inf.
    start = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)
    valid = [tick_record("AAPL", start + timedelta(seconds=i), price=PRICE_MAX) for i in range(3)]
    huge = [tick_record("AAPL", start, price=p) for p in (1e308, 1.7e308)]
    checked = _ticks(spark, [*valid, *huge])
    reasons = [r["reason"] for r in checked.orderBy("kafka_offset").collect()]
    assert reasons == [None] * len(valid) + ["out_of_bounds"] * len(huge)
    (window,) = tick_windows.transform(checked.where("reason IS NULL")).collect()
    assert window["ma_15m"] == PRICE_MAX and window["ma_1h"] == PRICE_MAX
