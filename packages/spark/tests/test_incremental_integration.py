"""Incremental batch + log-driven loader == full rebuild + clean load, on MinIO and fakesnow.

A seeded random sequence of daily runs, backfills and corrections (each a new raw file, as
the consumer writes them), with an aborted commit in the middle, runs the incremental batch
and the incremental loader after every step. At the end the Delta table must equal a full
rebuild over the same raw files and the pandas reference (same rows, same checksums of keys
and values), and the warehouse must equal a clean load of the rebuilt table.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from market_common.settings import MarketSettings
from market_loaders.datasets import HISTORICAL
from market_loaders.loader import load_dataset
from market_spark import lake, synthetic
from market_spark.batch import run_batch

if TYPE_CHECKING:
    from market_testing.pytest_plugin import UniqueNames

pytestmark = [pytest.mark.integration, pytest.mark.spark]
NOW = datetime(2024, 6, 3, 12, tzinfo=UTC)
VALUE_COLUMNS = ["symbol", "trade_date", "open", "high", "low", "close", "volume", "source"]


@pytest.fixture(scope="module")
def spark_settings(local_stack: Any) -> MarketSettings:
    return local_stack.settings


def table_frame(spark: SparkSession, uri: str) -> pd.DataFrame:
    frame = spark.read.format("delta").load(uri).select(*VALUE_COLUMNS).toPandas()
    return frame.sort_values(["trade_date", "symbol"]).reset_index(drop=True)


def checksum(frame: pd.DataFrame) -> str:
    """sha256 over the rows (keys and values, values rounded to 1e-9) in key order."""
    rows = frame.astype({"trade_date": str}).round(9).itertuples(index=False, name=None)
    return hashlib.sha256(repr(list(rows)).encode()).hexdigest()


def warehouse_frame(conn: Any, settings: MarketSettings) -> pd.DataFrame:
    sf = settings.snowflake
    cur = conn.cursor()
    table = f"{sf.batch_database}.{sf.schema_}.{sf.batch_table}"  # validated identifiers
    cur.execute(
        "select SYMBOL, DATE, DAILY_OPEN, DAILY_HIGH, DAILY_LOW, DAILY_CLOSE, DAILY_VOLUME, "  # noqa: S608
        f"SOURCE from {table} order by DATE, SYMBOL"
    )
    frame = pd.DataFrame(cur.fetchall(), columns=VALUE_COLUMNS)
    frame["trade_date"] = pd.to_datetime(frame["trade_date"]).dt.date
    return frame.astype({"volume": "int64"})


def test_random_runs_backfills_corrections_and_a_crash_equal_a_rebuild(
    spark: SparkSession,
    spark_settings: MarketSettings,
    s3_client: Any,
    unique_name: UniqueNames,
    snowflake_conn_factory: Callable[..., Any],
    references: dict[str, Callable[..., Any]],
) -> None:
    rng = random.Random(20240603)
    tag = unique_name("inc")
    settings = spark_settings.model_copy(deep=True)
    settings.s3.raw_prefix = f"it/{tag}/raw"
    settings.s3.processed_prefix = f"it/{tag}/processed"
    settings.s3.quarantine_prefix = f"it/{tag}/quarantine"
    settings.snowflake.batch_database = unique_name.ident("INC")
    bucket = settings.s3.bucket
    raw_uri = settings.s3.uri(settings.s3.raw_prefix, "historical")
    table_uri = settings.s3.uri(settings.s3.processed_prefix, "historical")
    symbols = synthetic.symbols(12)
    days = synthetic.business_days(date(2023, 11, 1), 70)  # Nov 2023 .. Feb 2024
    frames: list[pd.DataFrame] = []
    sequence = 0

    def put_raw(frame: pd.DataFrame) -> None:
        nonlocal sequence
        sequence += 1
        frame = frame.copy()
        frame["kafka_offset"] = frame["kafka_offset"] + 1_000_000 * sequence
        frames.append(frame)
        years = pd.to_datetime(frame["trade_date"]).dt.year
        for year, part in frame.groupby(years):
            body = synthetic.to_parquet_bytes(part, "historical")
            key = f"{settings.s3.raw_prefix}/historical/year={year}/part-{sequence:05d}.parquet"
            s3_client.put_object(Bucket=bucket, Key=key, Body=body)

    def batch_and_load(**kwargs: Any) -> None:
        run_batch(settings, spark=spark, now=NOW, **kwargs)
        load_dataset(HISTORICAL, settings)

    history_end = 40
    put_raw(synthetic.raw_historical(symbols, days[20:history_end], seed=1))
    batch_and_load()
    next_day, backfilled_to = history_end, 20
    crashed = False
    operations = ["daily", "backfill", "correction", "crash"]
    rng.shuffle(operations)
    for step, op in enumerate(operations):
        if op == "daily":
            put_raw(synthetic.raw_historical(symbols, days[next_day : next_day + 1], seed=step))
            next_day += 1
        elif op == "backfill":
            put_raw(
                synthetic.raw_historical(
                    symbols, days[backfilled_to - 10 : backfilled_to], seed=step
                )
            )
            backfilled_to -= 10
        else:
            current = pd.concat(frames)
            picked = current.sample(n=5, random_state=rng.randrange(1 << 30)).copy()
            picked["close"] = picked["low"] + (picked["high"] - picked["low"]) * rng.random()
            picked["ingested_at"] = picked["ingested_at"] + pd.Timedelta(days=step + 1)
            put_raw(picked)
        if op == "crash":
            # The run dies after data files were uploaded but before the Delta commit: one
            # task writes the months in order (a month's file is uploaded when the next
            # month starts) and fails inside the last month, so the job aborts uncommitted.
            table = spark.read.format("delta").load(table_uri)
            before = set(table.inputFiles())
            last_month = table.agg(F.max("month")).first()[0]  # type: ignore[index]
            garbage = (
                table.repartition(1)
                .sortWithinPartitions("month", "symbol")
                .withColumn(
                    "close",
                    F.when(
                        (F.col("month") == last_month) & (F.col("symbol") == symbols[-1]),
                        F.raise_error(F.lit("crash")),
                    ).otherwise(F.lit(-1.0)),
                )
            )
            with pytest.raises(Exception, match="crash"):
                lake.write_table(garbage, table_uri)
            listed = s3_client.list_objects_v2(
                Bucket=bucket, Prefix=f"{settings.s3.processed_prefix}/historical/month="
            )
            orphans = {f"s3a://{bucket}/{o['Key']}" for o in listed.get("Contents", [])} - before
            assert set(spark.read.format("delta").load(table_uri).inputFiles()) == before
            load_dataset(HISTORICAL, settings)  # the loader must not see the orphans
            crashed = bool(orphans)
        batch_and_load()

    assert crashed, "the aborted write should have left uncommitted files behind"
    incremental = table_frame(spark, table_uri)
    expected, _ = references["historical"](pd.concat(frames), today=NOW.date())
    expected = expected[VALUE_COLUMNS].sort_values(["trade_date", "symbol"]).reset_index(drop=True)
    references["assert_close"](incremental, expected, keys=["symbol", "trade_date"])

    rebuild_uri = settings.s3.uri(f"it/{tag}/rebuild", "historical")
    run_batch(
        settings, spark=spark, now=NOW, full=True, input_uri=raw_uri, output_uri=rebuild_uri,
        quarantine_uri=settings.s3.uri(f"it/{tag}/rebuild-q", "historical"),
    )  # fmt: skip
    rebuilt = table_frame(spark, rebuild_uri)
    pd.testing.assert_frame_equal(incremental, rebuilt)
    assert checksum(incremental) == checksum(rebuilt)
    listed = s3_client.list_objects_v2(
        Bucket=bucket, Prefix=f"{settings.s3.processed_prefix}/historical/month="
    )
    assert len(listed.get("Contents", [])) == len(
        spark.read.format("delta").load(table_uri).inputFiles()
    ), "the vacuum after the recovery run deletes the crashed run's files"

    clean = settings.model_copy(deep=True)
    clean.s3.processed_prefix = f"it/{tag}/rebuild"
    clean.snowflake.batch_database = unique_name.ident("CLEAN")
    load_dataset(HISTORICAL, clean, full_refresh=True)
    conn = snowflake_conn_factory()
    loaded, clean_loaded = warehouse_frame(conn, settings), warehouse_frame(conn, clean)
    pd.testing.assert_frame_equal(loaded, clean_loaded)
    assert checksum(loaded) == checksum(rebuilt.astype({"volume": "int64"}))
