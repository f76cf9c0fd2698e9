"""Streaming job against the real Kafka broker and MinIO: windows, kill/restart, lateness, dedup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from market_common.clients import ensure_topics, kafka_producer
from market_common.contracts import SessionClose
from market_common.settings import MarketSettings
from market_spark import synthetic
from market_spark.recompute import run_recompute
from market_spark.stream import StreamPaths, run_stream

pytestmark = [pytest.mark.integration, pytest.mark.spark]

START = datetime(2024, 1, 2, 14, 0, tzinfo=UTC)
WATERMARK = timedelta(minutes=10)
PER_TRIGGER = 150


@pytest.fixture(scope="module")
def spark_settings(local_stack: Any) -> MarketSettings:
    return local_stack.settings


def _stream_paths(bucket: str, root: str) -> StreamPaths:
    """The stream's output, quarantine and checkpoint under a test's own prefix."""
    return StreamPaths(
        output=f"s3a://{bucket}/{root}/processed/realtime",
        quarantine=f"s3a://{bucket}/{root}/quarantine/realtime",
        checkpoint=f"s3a://{bucket}/{root}/checkpoints/realtime",
    )


def _subprocess_env(settings: MarketSettings) -> dict[str, str]:
    env = dict(os.environ)
    env["MARKET_STATE_DIR"] = str(settings.stack.state_dir)
    env["MARKET_KAFKA__BOOTSTRAP_SERVERS"] = settings.kafka.bootstrap_servers
    env["MARKET_S3__ENDPOINT_URL"] = settings.s3.endpoint_url or ""
    for name in ("access_key_id", "secret_access_key"):
        secret = getattr(settings.s3, name)
        if secret is not None:
            env[f"MARKET_S3__{name.upper()}"] = secret.get_secret_value()
    env["MARKET_SPARK__SHUFFLE_PARTITIONS"] = "2"
    return env


def _wait_for_key(
    s3: Any, bucket: str, key: str, proc: subprocess.Popen[bytes], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"stream subprocess exited early with {proc.returncode}")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key)
        if any(o["Key"] == key for o in listed.get("Contents", [])):
            return
        time.sleep(0.5)
    raise AssertionError(f"{key} did not appear within {timeout_s}s")


def _crash(proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    """SIGKILL the driver *and its JVM*; return once both are gone, as after a host crash.

    pyspark's JVM is a child of the Python driver that exits only after it reads EOF on its
    stdin, runs Spark's shutdown hooks and stops the context, so killing the Python process
    alone leaves it running batches for seconds (longer under load), concurrently with the
    resumed run on the same checkpoint: two writers, which Structured Streaming does not
    support. The driver runs in its own session, so its process group is exactly the two.
    """
    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while (alive := _running_in_group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"pids {alive} of the killed driver still run {timeout_s}s after SIGKILL"


def _running_in_group(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are not zombies (PID 1 may be slow to reap)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            running.append(int(stat.parent.name))
    return running


def test_stream_survives_sigkill_drops_late_and_duplicate_ticks_and_matches_recompute(
    spark: SparkSession,
    spark_settings: MarketSettings,
    s3_client: Any,
    unique_name: Callable[[str], str],
    references: dict[str, Callable[..., Any]],
    tmp_path: Any,
) -> None:
    settings = spark_settings
    bucket = settings.s3.bucket
    topic = unique_name("ticks")
    root = f"it/{topic}"
    ensure_topics(settings, [topic], partitions=1)

    on_time = synthetic.ticks(
        ["AAPL", "MSFT", "BRK.B"], start=START, count=900, span=timedelta(hours=2), topic=topic
    )
    # Late ticks: their 15-minute windows closed long before they arrive in the last batch
    # (the previous batch's watermark is past 15:00), and they lie outside every emitted
    # window's trailing hour.
    late = on_time.iloc[:5].copy()
    late["ts"] = [START - timedelta(minutes=m) for m in (59, 58, 50, 40, 33)]
    late["symbol"] = ["AAPL", "AAPL", "MSFT", "MSFT", "BRK.B"]
    sentinel = on_time.iloc[:1].copy()
    sentinel["ts"] = [START + timedelta(hours=3)]
    # Redeliveries (same payload, new offset) within the watermark: tick 145 of batch 0, which
    # the killed run commits, comes again as the first record of batch 1, so its dedup state
    # must survive the restart; ticks 500 and 501 come again right after 501, in one batch.
    redelivered = [on_time.iloc[[145]], on_time.iloc[[500, 501]]]
    sent = pd.concat(
        [on_time.iloc[:PER_TRIGGER], redelivered[0], on_time.iloc[PER_TRIGGER:502],
         redelivered[1], on_time.iloc[502:]],
        ignore_index=True,
    )  # fmt: skip
    sent["kafka_offset"] = range(len(sent))  # as the broker assigns them
    duplicates = sum(len(r) for r in redelivered)
    bad = [
        b"{not json",
        b'{"schema_version":1,"symbol":"AAPL","ts":"2024-01-02T14:00:00Z","price":-1,"volume":1,"source":"s"}',
    ]
    producer = kafka_producer(settings)
    for frame in (sent, late, sentinel):
        for _, row in frame.iterrows():
            producer.send(topic, key=row["symbol"].encode(), value=synthetic.tick_json(row))
    for value in bad:
        producer.send(topic, value=value)
    producer.flush()
    producer.close()

    paths = _stream_paths(bucket, root)
    cmd = [
        sys.executable, "-m", "market_spark.cli", "--master", "local[2]", "stream",
        "--topic", topic, "--max-offsets-per-trigger", str(PER_TRIGGER),
        "--output", paths.output, "--quarantine", paths.quarantine, "--checkpoint", paths.checkpoint,
    ]  # fmt: skip
    log_path = tmp_path / "killed-run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            env=_subprocess_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_key(
                s3_client,
                bucket,
                f"{root}/checkpoints/realtime/windows/commits/0",
                proc,
                timeout_s=400,
            )
        finally:
            _crash(proc)
    assert proc.returncode == -signal.SIGKILL

    # The resumed run cuts the same 150-offset batches as the killed one: where the batches
    # end decides which ticks are late (see tick_dedup: late means behind the watermark of
    # the previous micro-batch), so the test must not leave that to the timing of the kill.
    # With one batch for the rest, the late ticks would share batch 1 with on-time ones,
    # judged against batch 0's watermark (none yet), and be aggregated.
    summary = run_stream(
        settings,
        spark=spark,
        topic=topic,
        paths=paths,
        run_id="resumed",
        max_offsets_per_trigger=PER_TRIGGER,
    )
    assert summary.batches >= 1

    out = spark.read.parquet(
        paths.output
    ).toPandas()  # through _spark_metadata: committed files only
    for col in ("window_start", "window_end"):
        out[col] = pd.to_datetime(out[col]).dt.tz_localize("UTC")
    assert not out.duplicated(["symbol", "window_start"]).any(), "a window was written twice"

    final_watermark = pd.Timestamp(sentinel["ts"].iloc[0]) - WATERMARK
    assert pd.Timestamp(summary.watermark) == final_watermark
    expected = references["windows"](pd.concat([on_time, sentinel], ignore_index=True))
    expected = expected[expected["window_end"] <= final_watermark]
    references["assert_close"](out.drop(columns="date"), expected, keys=["symbol", "window_start"])

    # Late ticks are absent (no window before 14:00) and counted one by one, although they
    # fall into only 4 (symbol, window) groups; redeliveries are counted and not aggregated
    # (the windows equal the reference without them).
    assert out["window_start"].min() >= pd.Timestamp(START)
    assert summary.late_rows_dropped == len(late) == 5
    assert summary.duplicate_ticks_dropped == duplicates == 3

    quarantine = spark.read.parquet(paths.quarantine).toPandas()
    assert sorted(quarantine["reason"]) == ["malformed_json", "non_positive_price"]
    assert sorted(quarantine["raw_value"]) == sorted(v.decode() for v in bad)

    # The batch recompute over the same ticks in the raw zone, redeliveries included, gives
    # the same numbers.
    raw_prefix = f"{root}/raw/realtime"
    ticks = pd.concat([sent, sentinel], ignore_index=True)
    for (day, hour), part in ticks.groupby([ticks["ts"].dt.date, ticks["ts"].dt.hour]):
        s3_client.put_object(
            Bucket=bucket,
            Key=f"{raw_prefix}/date={day}/hour={hour:02d}/part-0.parquet",
            Body=synthetic.to_parquet_bytes(part, "realtime"),
        )
    recomputed_uri = f"s3a://{bucket}/{root}/processed/realtime_recompute"
    recomputed = run_recompute(
        settings, spark=spark, input_uri=f"s3a://{bucket}/{raw_prefix}", output_uri=recomputed_uri
    )
    assert recomputed.duplicate_ticks_dropped == duplicates
    batch = spark.read.parquet(recomputed_uri).toPandas()
    for col in ("window_start", "window_end"):
        batch[col] = pd.to_datetime(batch[col]).dt.tz_localize("UTC")
    batch = batch.merge(out[["symbol", "window_start"]], on=["symbol", "window_start"], how="inner")
    references["assert_close"](
        batch.drop(columns="date"), out.drop(columns="date"), keys=["symbol", "window_start"]
    )
    stored = json.loads(
        s3_client.get_object(Bucket=bucket, Key=f"{root}/processed/realtime/_runs/resumed.json")[
            "Body"
        ].read()
    )
    assert stored["late_rows_dropped"] == summary.late_rows_dropped
    assert stored["duplicate_ticks_dropped"] == summary.duplicate_ticks_dropped


def _windows(spark: SparkSession, uri: str) -> pd.DataFrame:
    out = spark.read.parquet(uri).toPandas()  # through _spark_metadata: committed files only
    for col in ("window_start", "window_end"):
        out[col] = pd.to_datetime(out[col]).dt.tz_localize("UTC")
    return out


def test_session_close_emits_the_sessions_last_window_in_this_run_exactly_once(
    spark: SparkSession,
    spark_settings: MarketSettings,
    s3_client: Any,
    unique_name: Callable[[str], str],
    references: dict[str, Callable[..., Any]],
) -> None:
    """Without a SessionClose the last window waits for the next session's ticks; the
    producer's SessionClose (one per partition) emits it in the run that reads it, once, and
    neither it nor a redelivered copy is quarantined or changes any window."""
    settings = spark_settings
    bucket = settings.s3.bucket
    topic = unique_name("session-close")
    root = f"it/{topic}"
    ensure_topics(settings, [topic], partitions=2)
    close = START + timedelta(hours=2)
    ticks = synthetic.ticks(["AAPL", "MSFT"], start=START, count=600, span=close - START)
    paths = _stream_paths(bucket, root)
    producer = kafka_producer(settings)
    partitions = sorted(producer.partitions_for(topic))
    assert len(partitions) == 2

    def send_close() -> None:
        marker = SessionClose(closes_at=close)
        for p in partitions:
            producer.send(topic, value=marker.value(), headers=marker.headers(), partition=p)
        producer.flush()

    for _, row in ticks.iterrows():
        producer.send(topic, key=row["symbol"].encode(), value=synthetic.tick_json(row))
    producer.flush()
    expected = references["windows"](ticks)
    last_start = close - timedelta(minutes=15)

    first = run_stream(settings, spark=spark, topic=topic, paths=paths, run_id="ticks-only")
    before = _windows(spark, paths.output)
    assert pd.Timestamp(first.watermark) < pd.Timestamp(close)
    assert not (
        before["window_start"] == pd.Timestamp(last_start)
    ).any(), "without a session close the last window waits for the watermark"
    assert len(before) < len(expected)

    send_close()
    second = run_stream(settings, spark=spark, topic=topic, paths=paths, run_id="closed")
    assert pd.Timestamp(second.watermark) > pd.Timestamp(close)
    after = _windows(spark, paths.output)
    assert not after.duplicated(["symbol", "window_start"]).any(), "a window was written twice"
    references["assert_close"](
        after.drop(columns="date"), expected, keys=["symbol", "window_start"]
    )
    assert sorted(after.loc[after["window_start"] == pd.Timestamp(last_start), "symbol"]) == [
        "AAPL",
        "MSFT",
    ]
    assert second.late_rows_dropped == 0 and second.duplicate_ticks_dropped == 0

    send_close()  # a redelivered control record
    run_stream(settings, spark=spark, topic=topic, paths=paths, run_id="again")
    producer.close()
    again = _windows(spark, paths.output)
    assert len(again) == len(after), "a replayed session close added windows"
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"{root}/quarantine/realtime/")
    quarantined = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".parquet")]
    assert not quarantined, f"control records are not bad ticks: {quarantined}"
