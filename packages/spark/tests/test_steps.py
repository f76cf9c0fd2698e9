"""Local-session tests of the steps and jobs on file:// paths (no stack needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from market_common.settings import MarketSettings
from market_spark import synthetic
from market_spark.batch import run_batch
from market_spark.errors import NoInputError, RawSchemaError
from market_spark.recompute import run_recompute
from market_spark.schemas import PROCESSED_HISTORICAL_COLUMNS, RAW_HISTORICAL, WINDOW_COLUMNS
from market_spark.steps import historical_quality, tick_parse, tick_quality, tick_windows
from market_spark.storage import read_parquet

pytestmark = pytest.mark.spark
NOW = datetime(2024, 6, 3, 12, tzinfo=UTC)


def write_raw(frame: pd.DataFrame, root: Path, *, partition: str = "year=2024") -> None:
    """Write like the raw consumer: Parquet files under Hive-style partition directories."""
    target = root / partition
    target.mkdir(parents=True, exist_ok=True)
    half = len(frame) // 2
    for i, part in enumerate((frame.iloc[:half], frame.iloc[half:])):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), target / f"part-{i}.parquet"
        )


def read_table(spark: SparkSession, uri: str) -> pd.DataFrame:
    """The Delta table's rows in key order, ``ingested_at`` as UTC."""
    frame = spark.read.format("delta").load(uri).toPandas()
    frame["ingested_at"] = pd.to_datetime(frame["ingested_at"], utc=True)
    return frame.sort_values(["trade_date", "symbol"]).reset_index(drop=True)


def test_batch_cleans_dedups_and_runs_incrementally(
    spark: SparkSession,
    spark_settings: MarketSettings,
    tmp_path: Path,
    references: dict[str, Callable[..., object]],
) -> None:
    days = synthetic.business_days(date(2024, 1, 1), 6)
    raw, planted = references["plant_bad_bars"](
        synthetic.raw_historical(synthetic.symbols(8), days)
    )
    write_raw(raw, tmp_path / "raw")
    uris = {
        "input_uri": f"file://{tmp_path}/raw",
        "output_uri": f"file://{tmp_path}/processed",
        "quarantine_uri": f"file://{tmp_path}/quarantine",
    }
    summary = run_batch(spark_settings, spark=spark, now=NOW, run_id="first", **uris)

    expected, expected_reasons = references["historical"](raw, today=NOW.date())
    assert summary.mode == "full", "no table yet: the first run is a full rebuild"
    assert summary.quarantined == planted == expected_reasons.to_dict()
    assert summary.rows_in == len(raw)
    assert summary.rows_out == len(expected)
    assert summary.duplicates_removed == 5 + 3 + 2
    assert summary.partitions_written == sorted(d.isoformat() for d in days)

    out = spark.read.format("delta").load(uris["output_uri"])
    assert out.columns == [*PROCESSED_HISTORICAL_COLUMNS, "month"]
    actual = read_table(spark, uris["output_uri"])
    assert (actual["month"] == actual["trade_date"].astype(str).str[:7]).all()
    references["assert_close"](
        actual.drop(columns="month"), expected, keys=["symbol", "trade_date"]
    )
    quarantine = spark.read.parquet(uris["quarantine_uri"]).toPandas()
    assert quarantine["reason"].value_counts().to_dict() == planted
    assert set(quarantine["reason"]) <= set(historical_quality.REASONS)

    stored = json.loads((tmp_path / "processed" / "_runs" / "first.json").read_text())
    assert stored["rows_out"] == summary.rows_out and stored["quarantined"] == planted

    log_before = sorted((tmp_path / "processed" / "_delta_log").glob("*.json"))
    again = run_batch(spark_settings, spark=spark, now=NOW, run_id="second", **uris)
    assert (again.mode, again.rows_in, again.partitions_written) == ("incremental", 0, [])
    assert (
        sorted((tmp_path / "processed" / "_delta_log").glob("*.json")) == log_before
    ), "an incremental run with unchanged raw input must not commit"

    # A one-day range run replaces only that date; the table's rows stay the same.
    one_day = run_batch(
        spark_settings, spark=spark, now=NOW, run_id="third", since=days[2], until=days[2], **uris
    )
    assert (one_day.mode, one_day.partitions_written) == ("range", [days[2].isoformat()])
    pd.testing.assert_frame_equal(read_table(spark, uris["output_uri"]), actual)

    # A correction in a new raw file: only its date is recomputed, and the table then equals
    # the reference over all raw rows (the later delivery wins).
    fix = raw[(raw["trade_date"] == days[4]) & raw["symbol"].notna()].head(3).copy()
    fix["close"] = fix["low"]
    fix["ingested_at"] = fix["ingested_at"] + pd.Timedelta(days=1)
    pq.write_table(
        pa.Table.from_pandas(fix, preserve_index=False),
        tmp_path / "raw" / "year=2024" / "part-fix.parquet",
    )
    fixed = run_batch(spark_settings, spark=spark, now=NOW, run_id="fourth", **uris)
    assert (fixed.mode, fixed.partitions_written) == ("incremental", [days[4].isoformat()])
    corrected, _ = references["historical"](pd.concat([raw, fix]), today=NOW.date())
    after = read_table(spark, uris["output_uri"])
    references["assert_close"](
        after.drop(columns="month"), corrected, keys=["symbol", "trade_date"]
    )
    live = {
        str(p.relative_to(tmp_path / "processed"))
        for p in (tmp_path / "processed").glob("month=*/*.parquet")
    }
    assert len(live) == len(
        spark.read.format("delta").load(uris["output_uri"]).inputFiles()
    ), "vacuum keeps only the files of the current version"


def test_missing_input_and_missing_columns_fail_clearly(
    spark: SparkSession, tmp_path: Path
) -> None:
    with pytest.raises(NoInputError, match="no Parquet files"):
        read_parquet(spark, f"file://{tmp_path}/nothing", RAW_HISTORICAL)
    frame = synthetic.raw_historical(["AAPL"], [date(2024, 1, 2)]).drop(columns=["kafka_offset"])
    write_raw(frame, tmp_path / "raw")
    with pytest.raises(RawSchemaError, match="kafka_offset"):
        read_parquet(spark, f"file://{tmp_path}/raw", RAW_HISTORICAL)


def _kafka_rows(values: list[bytes | None]) -> list[tuple[object, ...]]:
    ts = datetime(2024, 1, 2, tzinfo=UTC)
    return [(None, v, "t", 0, i, ts) for i, v in enumerate(values)]


def test_tick_parse_and_quality_give_planted_reasons(spark: SparkSession) -> None:
    good = b'{"schema_version":1,"symbol":"AAPL","ts":"2024-01-02T14:30:00.123Z","price":187.2,"volume":300,"source":"synthetic"}'
    planted: list[tuple[str | None, bytes | None]] = [
        (None, good),
        (
            None,
            b'{"schema_version":1,"symbol":"BRK.B","ts":"2024-01-02T14:30:00.123456+00:00","price":1,"volume":0,"source":"s"}',
        ),
        ("malformed_json", b"not json"),
        ("malformed_json", None),
        ("malformed_json", b"[1,2]"),
        (
            "wrong_type",
            b'{"schema_version":1,"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","price":"x","volume":1,"source":"s"}',
        ),
        (
            "invalid_timestamp",
            b'{"schema_version":1,"symbol":"AAPL","ts":"yesterday","price":1,"volume":1,"source":"s"}',
        ),
        (
            "missing_field",
            b'{"schema_version":1,"ts":"2024-01-02T14:30:00Z","price":1,"volume":1,"source":"s"}',
        ),
        (
            "missing_field",
            b'{"schema_version":1,"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","volume":1,"source":"s"}',
        ),
        (
            "unsupported_schema_version",
            b'{"schema_version":2,"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","price":1,"volume":1,"source":"s"}',
        ),
        (
            "invalid_symbol",
            b'{"schema_version":1,"symbol":"aapl","ts":"2024-01-02T14:30:00Z","price":1,"volume":1,"source":"s"}',
        ),
        (
            "non_finite",
            b'{"schema_version":1,"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","price":NaN,"volume":1,"source":"s"}',
        ),
        (
            "non_positive_price",
            b'{"schema_version":1,"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","price":0,"volume":1,"source":"s"}',
        ),
        (
            "negative_volume",
            b'{"schema_version":1,"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","price":1,"volume":-1,"source":"s"}',
        ),
        (
            "future_timestamp",
            b'{"schema_version":1,"symbol":"AAPL","ts":"2150-01-02T14:30:00Z","price":1,"volume":1,"source":"s"}',
        ),
    ]
    df = spark.createDataFrame(
        _kafka_rows([v for _, v in planted]),
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    rows = tick_quality.transform(tick_parse.transform(df)).orderBy("kafka_offset").collect()
    assert [r["reason"] for r in rows] == [reason for reason, _ in planted]
    assert rows[0]["ts"] == datetime(2024, 1, 2, 14, 30, 0, 123000)
    assert rows[0]["price"] == 187.2 and rows[0]["source"] == "synthetic"
    assert rows[2]["raw_value"] == "not json"


def test_window_metrics_match_pandas(
    spark: SparkSession, references: dict[str, Callable[..., object]]
) -> None:
    ticks = synthetic.ticks(
        ["AAPL", "MSFT", "BRK.B"],
        start=datetime(2024, 1, 2, 13, 50, tzinfo=UTC),
        count=1500,
        span=timedelta(hours=3),
    )
    # A lone tick (volatility null) in an otherwise empty stretch, and equal timestamps.
    extra = ticks.iloc[:3].copy()
    extra["symbol"] = "TSLA"
    extra["ts"] = [pd.Timestamp("2024-01-02 18:00:00", tz="UTC")] + [
        pd.Timestamp("2024-01-02 19:01:00", tz="UTC")
    ] * 2
    extra["kafka_offset"] = [5000, 5002, 5001]
    ticks = pd.concat([ticks, extra], ignore_index=True)
    frame = ticks.assign(ts=ticks["ts"].dt.tz_convert("UTC").dt.tz_localize(None))
    out = tick_windows.transform(
        spark.createDataFrame(
            frame[["symbol", "ts", "price", "volume", "kafka_partition", "kafka_offset"]]
        )
    )
    assert out.columns == [*WINDOW_COLUMNS, "date"]
    actual = out.toPandas()
    assert (actual["date"].astype(str) == actual["window_start"].dt.strftime("%Y-%m-%d")).all()
    for col in ("window_start", "window_end"):
        actual[col] = pd.to_datetime(actual[col]).dt.tz_localize("UTC")
    expected = references["windows"](ticks)
    references["assert_close"](
        actual.drop(columns="date"), expected, keys=["symbol", "window_start"]
    )
    tsla = actual[actual["symbol"] == "TSLA"].sort_values("window_start")
    assert tsla["volatility_15m"].isna().tolist() == [True, False]
    # Offsets break the timestamp tie: 5001 is first, 5002 last.
    assert tsla["window_open"].iloc[1] == extra["price"].iloc[2]
    assert tsla["window_close"].iloc[1] == extra["price"].iloc[1]


def test_recompute_from_raw_realtime_matches_pandas(
    spark: SparkSession,
    spark_settings: MarketSettings,
    tmp_path: Path,
    references: dict[str, Callable[..., object]],
) -> None:
    ticks = synthetic.ticks(
        ["AAPL", "MSFT"],
        start=datetime(2024, 1, 2, 23, 0, tzinfo=UTC),
        count=800,
        span=timedelta(hours=2),
    )
    bad = ticks.iloc[:2].copy()
    bad["price"] = [-1.0, 0.0]
    bad["kafka_offset"] = [9000, 9001]
    redelivered = ticks.iloc[[10, 11]].assign(kafka_offset=[9002, 9003])
    raw = pd.concat([ticks, bad, redelivered], ignore_index=True)
    for (day, hour), part in raw.groupby([raw["ts"].dt.date, raw["ts"].dt.hour]):
        write_raw(part, tmp_path / "raw", partition=f"date={day}/hour={hour:02d}")
    summary = run_recompute(
        spark_settings,
        spark=spark,
        input_uri=f"file://{tmp_path}/raw",
        output_uri=f"file://{tmp_path}/out",
        run_id="r1",
    )
    assert summary.ticks_in == len(raw) and summary.invalid == {"non_positive_price": 2}
    assert summary.duplicate_ticks_dropped == 2
    assert summary.dates_written == ["2024-01-02", "2024-01-03"]
    actual = spark.read.parquet(f"file://{tmp_path}/out").toPandas()
    for col in ("window_start", "window_end"):
        actual[col] = pd.to_datetime(actual[col]).dt.tz_localize("UTC")
    expected = references["windows"](ticks)
    assert summary.windows_written == len(expected)
    references["assert_close"](
        actual.drop(columns="date"), expected, keys=["symbol", "window_start"]
    )

    # Incremental: unchanged raw input writes nothing; a new raw file with ticks early on
    # 2024-01-03 recomputes that date only, and the result equals the reference over all ticks.
    again = run_recompute(spark_settings, spark=spark, input_uri=f"file://{tmp_path}/raw",
                          output_uri=f"file://{tmp_path}/out", run_id="r2")  # fmt: skip
    assert (again.ticks_in, again.dates_written) == (0, [])
    late = synthetic.ticks(
        ["AAPL", "MSFT"], start=datetime(2024, 1, 3, 0, 20, tzinfo=UTC), count=40,
        span=timedelta(minutes=30), seed=5,
    )  # fmt: skip
    late["kafka_offset"] = late["kafka_offset"] + 50_000
    write_raw(late, tmp_path / "raw", partition="date=2024-01-03/hour=00-late")
    third = run_recompute(spark_settings, spark=spark, input_uri=f"file://{tmp_path}/raw",
                          output_uri=f"file://{tmp_path}/out", run_id="r3")  # fmt: skip
    assert third.dates_written == ["2024-01-03"]
    after = spark.read.parquet(f"file://{tmp_path}/out").toPandas()
    for col in ("window_start", "window_end"):
        after[col] = pd.to_datetime(after[col]).dt.tz_localize("UTC")
    references["assert_close"](
        after.drop(columns="date"),
        references["windows"](pd.concat([ticks, late], ignore_index=True)),
        keys=["symbol", "window_start"],
    )
