"""Historical batch job against the real MinIO (s3a) of the local stack."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from market_common.settings import MarketSettings
from market_spark import synthetic
from market_spark.batch import run_batch

pytestmark = [pytest.mark.integration, pytest.mark.spark]
NOW = datetime(2024, 6, 3, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def spark_settings(local_stack: Any) -> MarketSettings:
    return local_stack.settings


def put_raw_like_ingest(s3: Any, bucket: str, prefix: str, raw: pd.DataFrame) -> None:
    """``<prefix>/year=YYYY/part-*.parquet`` with µs UTC timestamps, as market_ingest writes."""
    years = pd.to_datetime(raw["trade_date"]).dt.year.fillna(1970).astype(int)
    for year, part in raw.groupby(years):
        for i in range(0, len(part), 5_000):
            body = synthetic.to_parquet_bytes(part.iloc[i : i + 5_000], "historical")
            s3.put_object(
                Bucket=bucket, Key=f"{prefix}/year={year}/part-{i:08d}.parquet", Body=body
            )


def object_digests(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """``date=…`` partition → sha256 of its single Parquet object."""
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}/date="
    ):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if not key.endswith(".parquet"):
                continue
            partition = key[len(prefix) + 1 :].split("/")[0]
            assert partition not in out, f"{partition} holds more than one data file"
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            out[partition] = hashlib.sha256(body).hexdigest()
    return out


def test_batch_on_minio_counts_quarantine_and_idempotent_rerun(
    spark: SparkSession,
    spark_settings: MarketSettings,
    s3_client: Any,
    unique_name: Callable[[str], str],
    references: dict[str, Callable[..., Any]],
) -> None:
    bucket = spark_settings.s3.bucket
    root = f"it/{unique_name('batch')}"
    days = synthetic.business_days(date(2023, 12, 1), 40)  # spans two `year=` partitions
    raw, planted = references["plant_bad_bars"](
        synthetic.raw_historical(synthetic.symbols(60), days, seed=3)
    )
    put_raw_like_ingest(s3_client, bucket, f"{root}/raw/historical", raw)
    uris = {
        "input_uri": f"s3a://{bucket}/{root}/raw/historical",
        "output_uri": f"s3a://{bucket}/{root}/processed/historical",
        "quarantine_uri": f"s3a://{bucket}/{root}/quarantine/historical",
    }

    first = run_batch(spark_settings, spark=spark, now=NOW, run_id="run-1", **uris)

    expected, reasons = references["historical"](raw, today=NOW.date())
    assert first.quarantined == planted == reasons.to_dict()
    assert (first.rows_in, first.rows_out) == (len(raw), len(expected))
    actual = spark.read.format("delta").load(uris["output_uri"]).toPandas()
    actual["ingested_at"] = pd.to_datetime(actual["ingested_at"], utc=True)
    references["assert_close"](
        actual.drop(columns="month"), expected, keys=["symbol", "trade_date"]
    )
    quarantine = spark.read.parquet(uris["quarantine_uri"]).toPandas()
    assert quarantine["reason"].value_counts().to_dict() == planted
    summary_key = f"{root}/processed/historical/_runs/run-1.json"
    assert s3_client.head_object(Bucket=bucket, Key=summary_key)["ContentLength"] > 0

    sorted_rows = actual.sort_values(["trade_date", "symbol"]).reset_index(drop=True)
    quarantine_digests = object_digests(s3_client, bucket, f"{root}/quarantine/historical")

    # Unchanged raw input: the incremental run commits nothing.
    second = run_batch(spark_settings, spark=spark, now=NOW, run_id="run-2", **uris)
    assert (second.mode, second.rows_in, second.partitions_written) == ("incremental", 0, [])
    # A full rebuild over the same input gives the same rows and quarantine bytes.
    third = run_batch(spark_settings, spark=spark, now=NOW, run_id="run-3", full=True, **uris)
    assert (third.rows_out, third.quarantined) == (first.rows_out, first.quarantined)
    assert object_digests(s3_client, bucket, f"{root}/quarantine/historical") == quarantine_digests
    again = spark.read.format("delta").load(uris["output_uri"]).toPandas()
    again["ingested_at"] = pd.to_datetime(again["ingested_at"], utc=True)
    pd.testing.assert_frame_equal(
        again.sort_values(["trade_date", "symbol"]).reset_index(drop=True), sorted_rows
    )


def test_no_s3a_secret_on_any_jvm_command_line(
    spark: SparkSession, spark_settings: MarketSettings
) -> None:
    """The S3A keys reach the JVM's live configuration only, never a process command line."""
    secret = spark_settings.s3.secret_access_key
    access = spark_settings.s3.access_key_id
    assert secret is not None and access is not None, "the stack generates credentials"
    bucket = spark_settings.s3.bucket
    # Prove the credentials are in effect: an s3a round trip through this session.
    uri = f"s3a://{bucket}/it/secrets-{uuid.uuid4().hex[:8]}"
    spark.range(3).write.mode("overwrite").parquet(uri)
    assert spark.read.parquet(uri).count() == 3
    jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # type: ignore[union-attr]
    # Only this session's processes: other sessions on a shared machine are not ours to judge.
    ours = _descendants(os.getpid())
    assert jvm_pid in ours, "the check must see this session's own JVM"
    for pid in ours:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # the process ended while we looked
        for value in (secret.get_secret_value(), access.get_secret_value()):
            assert value not in cmdline, f"an S3A credential is on the command line of pid {pid}"
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.ui.killEnabled") == "false"
    assert conf.get("spark.hadoop.fs.s3a.secret.key") is None


def _descendants(root: int) -> set[int]:
    """``root``'s child processes, their children, and so on (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
