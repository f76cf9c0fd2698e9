"""Batch recompute of the realtime window metrics from ``raw/realtime`` (backfills).

Uses the very same steps as the streaming job (:mod:`~market_spark.steps.tick_quality`,
:mod:`~market_spark.steps.tick_dedup`, :mod:`~market_spark.steps.tick_windows`), so the same
ticks give the same numbers; redelivered ticks in the raw zone are dropped the same way. Unlike
the stream it has no watermark: late ticks that the stream dropped are included, and windows
the stream has not closed yet are emitted. It writes to its own prefix (default
``processed/realtime_recompute``) because the stream's output directory is governed by its
``_spark_metadata`` log: files written there by anything else are invisible to Spark readers.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import Observation
from pyspark.sql import functions as F

from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_spark import storage
from market_spark.schemas import PARTITION_COLUMN, RAW_REALTIME, TICK_COLUMNS
from market_spark.steps import tick_dedup, tick_quality, tick_windows
from market_spark.summary import RecomputeSummary, new_run_id

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)


def default_uris(settings: MarketSettings) -> tuple[str, str]:
    s3 = settings.s3
    return s3.uri(s3.raw_prefix, "realtime"), s3.uri(s3.processed_prefix, "realtime_recompute")


def ticks_from_raw(raw: DataFrame) -> DataFrame:
    """Raw-zone ticks (:data:`RAW_REALTIME`) in the shape the tick steps expect."""
    return raw.select(
        *[F.col(c) for c in TICK_COLUMNS], F.lit(None).cast("string").alias("parse_error")
    )


def run_recompute(
    settings: MarketSettings,
    *,
    spark: SparkSession,
    input_uri: str | None = None,
    output_uri: str | None = None,
    since: date | None = None,
    until: date | None = None,
    run_id: str | None = None,
) -> RecomputeSummary:
    """Recompute windows whose ``window_start`` date is in [since, until] (all if unset).

    Ticks from the hour before ``since`` are read too, so ``ma_1h`` of the first windows is
    complete. Output partitions (``date=``) are replaced with dynamic overwrite.
    """
    started = time.perf_counter()
    run_id = run_id or new_run_id()
    default_in, default_out = default_uris(settings)
    input_uri, output_uri = input_uri or default_in, output_uri or default_out

    raw = storage.read_parquet(spark, input_uri, RAW_REALTIME)
    if since is not None:
        raw = raw.where(F.col("ts") >= F.lit(since).cast("timestamp") - F.expr("INTERVAL 1 HOUR"))
    if until is not None:
        raw = raw.where(F.col("ts") < F.lit(until + timedelta(days=1)).cast("timestamp"))
    classified = tick_quality.transform(ticks_from_raw(raw))
    counted = Observation("recompute_input")
    classified = classified.observe(
        counted,
        F.count(F.lit(1)).alias("ticks_in"),
        *[F.count_if(F.col("reason") == r).alias(r) for r in tick_quality.REASONS],
    )
    deduped = Observation("recompute_unique")
    unique = tick_dedup.transform(classified.where(F.col("reason").isNull())).observe(
        deduped, F.count(F.lit(1)).alias("rows")
    )
    windows = tick_windows.transform(unique)
    if since is not None:
        windows = windows.where(F.col("window_start") >= F.lit(since).cast("timestamp"))
    written = Observation("recompute_output")
    windows = windows.observe(
        written,
        F.count(F.lit(1)).alias("rows"),
        # Observation returns arrays as JVM objects: ship the set as one string.
        F.array_join(F.array_sort(F.collect_set(F.col(PARTITION_COLUMN))), ",").alias("dates"),
    )
    storage.write_partitioned(windows, output_uri, sort=("symbol", "window_start"))
    inputs, outputs = counted.get, written.get
    invalid = {r: int(inputs[r]) for r in tick_quality.REASONS if inputs[r]}
    valid = int(inputs["ticks_in"]) - sum(invalid.values())
    summary = RecomputeSummary(
        run_id=run_id,
        input_uri=input_uri,
        output_uri=output_uri,
        ticks_in=int(inputs["ticks_in"]),
        valid_ticks=valid,
        invalid=invalid,
        duplicate_ticks_dropped=valid - int(deduped.get["rows"]),
        windows_written=int(outputs["rows"]),
        dates_written=[d for d in (outputs["dates"] or "").split(",") if d],
        duration_s=round(time.perf_counter() - started, 3),
    )
    storage.write_text(spark, f"{output_uri.rstrip('/')}/_runs/{run_id}.json", summary.to_json())
    log.info(
        "realtime recompute done", extra={"run_id": run_id, "windows": summary.windows_written}
    )
    return summary
