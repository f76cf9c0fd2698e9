"""Realtime job: Kafka ticks → 15-minute window metrics (Structured Streaming).

Two queries read the topic, each with its own checkpoint under
``checkpoints/realtime/<name>`` and a Parquet file sink, the only sink with exactly-once
output: a batch's files count only once its entry is in the sink's ``_spark_metadata`` log,
and a restarted query replays exactly the offsets of its last uncommitted batch.

* ``windows``: valid ticks → :mod:`market_spark.steps.tick_dedup` (watermark; drops late and
  redelivered ticks) → :mod:`market_spark.steps.tick_windows` → ``processed/realtime``.
  A ``SessionClose`` control record (:class:`market_common.contracts.SessionClose`, sent by
  the producer when a session is complete) passes the dedup as an event at ``closes_at`` +
  the watermark delay and is dropped before the windows: it moves the watermark to the close,
  so the session's last window is emitted by this run instead of the next session's.
* ``quarantine``: invalid records with their raw value and reason → ``quarantine/realtime``.

A second query (rather than ``foreachBatch`` writing two outputs) keeps both outputs
exactly-once without idempotency bookkeeping; the price is reading the topic twice.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pyspark.sql import functions as F

from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_spark import storage
from market_spark.errors import StreamFailedError
from market_spark.schemas import PARTITION_COLUMN
from market_spark.steps import tick_dedup, tick_parse, tick_quality, tick_windows
from market_spark.summary import StreamSummary, new_run_id

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = get_logger(__name__)

Trigger = Literal["availableNow", "processingTime"]
QUARANTINE_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "symbol",
    "raw_value",
    "reason",
)


@dataclass(frozen=True)
class StreamPaths:
    output: str
    quarantine: str
    checkpoint: str

    @classmethod
    def from_settings(cls, settings: MarketSettings) -> StreamPaths:
        s3 = settings.s3
        return cls(
            output=s3.uri(s3.processed_prefix, "realtime"),
            quarantine=s3.uri(s3.quarantine_prefix, "realtime"),
            checkpoint=s3.uri(s3.checkpoint_prefix, "realtime"),
        )


def kafka_options(settings: MarketSettings) -> dict[str, str]:
    """``kafka.*`` source options from settings (bootstrap servers and security)."""
    k = settings.kafka
    opts = {
        "kafka.bootstrap.servers": k.bootstrap_servers,
        "kafka.security.protocol": k.security_protocol,
    }
    if k.sasl_mechanism:
        module = (
            "org.apache.kafka.common.security.scram.ScramLoginModule"
            if k.sasl_mechanism.startswith("SCRAM")
            else "org.apache.kafka.common.security.plain.PlainLoginModule"
        )
        password = k.sasl_password.get_secret_value() if k.sasl_password else ""
        opts["kafka.sasl.mechanism"] = k.sasl_mechanism
        opts["kafka.sasl.jaas.config"] = (
            f'{module} required username="{k.sasl_username}" password="{password}";'
        )
    return opts


def read_topic(
    spark: SparkSession,
    settings: MarketSettings,
    *,
    topic: str,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    fail_on_data_loss: bool = True,
) -> DataFrame:
    """The realtime topic as a streaming DataFrame (Kafka source columns)."""
    reader = spark.readStream.format("kafka").options(**kafka_options(settings))
    reader = reader.option("subscribe", topic).option("startingOffsets", starting_offsets)
    reader = reader.option("failOnDataLoss", str(fail_on_data_loss).lower())
    reader = reader.option("includeHeaders", "true")  # control records are told by a header
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()


def _counts_by_reason() -> list[Any]:
    return [F.count_if(F.col("reason") == r).alias(r) for r in tick_quality.REASONS]


def build_queries(source: DataFrame, *, watermark: str) -> tuple[DataFrame, DataFrame]:
    """(windows, quarantine) streaming DataFrames for one source, with observed counters."""
    classified = tick_quality.transform(tick_parse.transform(source))
    closes_at = F.col(tick_parse.CLOSES_AT)
    is_tick = closes_at.isNull()
    # One pass, no union (a second branch would read the topic twice): a session close rides
    # through the dedup as the event that puts the watermark just past ``closes_at``.
    valid = (
        classified.where(F.col("reason").isNull())
        .withColumn(
            "ts",
            F.when(is_tick, F.col("ts")).otherwise(
                closes_at + F.expr(f"INTERVAL {watermark}") + F.expr("INTERVAL 1 millisecond")
            ),
        )
        .observe("valid_ticks", F.count_if(is_tick).alias("rows"))
    )
    # Ticks in and out of the dedup: their difference is late + duplicate ticks.
    unique = tick_dedup.transform(valid, watermark=watermark).observe(
        "unique_ticks", F.count_if(is_tick).alias("rows")
    )
    windows = tick_windows.transform(unique.where(is_tick)).observe(
        "windows", F.count(F.lit(1)).alias("rows")
    )
    quarantine = (
        classified.where(F.col("reason").isNotNull())
        .select(
            *[F.col(c) for c in QUARANTINE_COLUMNS],
            F.date_format(F.col("kafka_timestamp"), "yyyy-MM-dd").alias(PARTITION_COLUMN),
        )
        .observe("quarantined", *_counts_by_reason())
    )
    return windows, quarantine


def _start(
    df: DataFrame,
    *,
    name: str,
    path: str,
    checkpoint: str,
    trigger: Trigger,
    interval: str,
) -> StreamingQuery:
    writer = (
        df.writeStream.format("parquet")
        .outputMode("append")
        .partitionBy(PARTITION_COLUMN)
        .option("path", path)
        .option("checkpointLocation", checkpoint)
        .queryName(name)
    )
    if trigger == "availableNow":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=interval)
    return writer.start()


def _progress(query: StreamingQuery) -> list[dict[str, Any]]:
    out = []
    for p in query.recentProgress:
        out.append(json.loads(p.json) if hasattr(p, "json") else dict(p))
    return out


def _observed(progress: Iterable[Mapping[str, Any]], name: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for p in progress:
        for key, value in (p.get("observedMetrics") or {}).get(name, {}).items():
            totals[key] = totals.get(key, 0) + int(value or 0)
    return totals


def summarize(
    *,
    run_id: str,
    topic: str,
    trigger: Trigger,
    paths: StreamPaths,
    windows_progress: list[dict[str, Any]],
    quarantine_progress: list[dict[str, Any]],
    duration_s: float,
) -> StreamSummary:
    """Fold the progress reports of both queries into one :class:`StreamSummary`.

    Late ticks are the dedup operator's watermark drops only: it sees every tick, whereas the
    window aggregation behind it drops whole partial-aggregate groups (and none after the dedup).
    """
    data_batches = [p for p in windows_progress if p.get("numInputRows", 0) > 0]
    late = sum(
        int(op.get("numRowsDroppedByWatermark", 0))
        for p in windows_progress
        for op in p.get("stateOperators", [])
        if op.get("operatorName") == tick_dedup.OPERATOR_NAME
    )
    valid = _observed(windows_progress, "valid_ticks").get("rows", 0)
    unique = _observed(windows_progress, "unique_ticks").get("rows", 0)
    watermark = next(
        (p["eventTime"].get("watermark") for p in reversed(windows_progress) if p.get("eventTime")),
        None,
    )
    quarantined = {k: v for k, v in _observed(quarantine_progress, "quarantined").items() if v}
    return StreamSummary(
        run_id=run_id,
        topic=topic,
        trigger=trigger,
        batches=len(data_batches),
        input_rows=sum(int(p.get("numInputRows", 0)) for p in windows_progress),
        valid_ticks=valid,
        quarantined=dict(sorted(quarantined.items())),
        windows_written=_observed(windows_progress, "windows").get("rows", 0),
        late_rows_dropped=late,
        duplicate_ticks_dropped=valid - unique - late,
        watermark=watermark,
        output_uri=paths.output,
        quarantine_uri=paths.quarantine,
        checkpoint_uri=paths.checkpoint,
        duration_s=round(duration_s, 3),
        progress=windows_progress,
    )


def run_stream(
    settings: MarketSettings,
    *,
    spark: SparkSession,
    topic: str | None = None,
    trigger: Trigger = "availableNow",
    interval: str = "1 minute",
    watermark: str = tick_dedup.DEFAULT_WATERMARK,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    paths: StreamPaths | None = None,
    run_id: str | None = None,
    timeout_s: float | None = None,
) -> StreamSummary:
    """Run both queries; return when ``availableNow`` has drained the topic.

    With ``trigger="processingTime"`` the queries run every ``interval`` until SIGTERM/SIGINT
    (or ``timeout_s``), then stop after their current batch. A failed query raises
    :class:`StreamFailedError`; restarting resumes from the checkpoint.
    """
    started = time.perf_counter()
    topic = topic or settings.kafka.realtime_topic
    paths = paths or StreamPaths.from_settings(settings)
    run_id = run_id or new_run_id()
    source = read_topic(
        spark,
        settings,
        topic=topic,
        starting_offsets=starting_offsets,
        max_offsets_per_trigger=max_offsets_per_trigger,
    )
    windows, quarantine = build_queries(source, watermark=watermark)
    ck = paths.checkpoint.rstrip("/")
    queries = [
        _start(
            df,
            name=f"realtime_{name}",
            path=path,
            checkpoint=f"{ck}/{name}",
            trigger=trigger,
            interval=interval,
        )
        for name, df, path in (
            ("windows", windows, paths.output),
            ("quarantine", quarantine, paths.quarantine),
        )
    ]
    log.info(
        "streaming queries started", extra={"run_id": run_id, "topic": topic, "trigger": trigger}
    )
    _await(queries, timeout_s=timeout_s)
    summary = summarize(
        run_id=run_id,
        topic=topic,
        trigger=trigger,
        paths=paths,
        windows_progress=_progress(queries[0]),
        quarantine_progress=_progress(queries[1]),
        duration_s=time.perf_counter() - started,
    )
    storage.write_text(spark, f"{paths.output.rstrip('/')}/_runs/{run_id}.json", summary.to_json())
    log.info("streaming run done", extra=json.loads(summary.to_json()))
    return summary


def _await(queries: list[StreamingQuery], *, timeout_s: float | None) -> None:
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        log.info("stop requested", extra={"signal": signum})
        stop_requested = True

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Outside the main thread signal() raises: the caller owns signal handling then.
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, request_stop)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            active = [q for q in queries if q.isActive]
            if not active or any(q.exception() is not None for q in queries):
                break
            if stop_requested or (deadline is not None and time.monotonic() > deadline):
                for q in active:
                    q.stop()
                break
            active[0].awaitTermination(1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failures = [(q.name, q.exception()) for q in queries if q.exception() is not None]
    if failures:
        for q in queries:
            if q.isActive:
                q.stop()
        detail = "; ".join(f"{name}: {exc}" for name, exc in failures)
        raise StreamFailedError(
            f"streaming query failed ({detail}). Fix the cause and rerun: the checkpoint "
            "makes the restart continue where the failed batch started."
        )
