"""Batch recompute of the realtime window metrics from ``raw/realtime`` (backfills).

Uses the very same steps as the streaming job (:mod:`~market_spark.steps.tick_quality`,
:mod:`~market_spark.steps.tick_dedup`, :mod:`~market_spark.steps.tick_windows`), so the same
ticks give the same numbers; redelivered ticks in the raw zone are dropped the same way. Unlike
the stream it has no watermark: late ticks that the stream dropped are included, and windows
the stream has not closed yet are emitted. It writes to its own prefix (default
``processed/realtime_recompute``) because the stream's output directory is governed by its
``_spark_metadata`` log: files written there by anything else are invisible to Spark readers.

Incremental like the historical batch (:mod:`market_spark.lake`): without ``since``/``until``
and without ``full``, only the window dates touched by raw files that are new or changed since
the last run are recomputed — the dates of their ticks, and the next date for ticks in the
last hour of a day (they count in the next day's first ``ma_1h``) — from all raw ticks of
those dates plus the hour before; the listing is stored in ``<output>/_state/`` after the
write. With nothing changed, nothing is written.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import Observation
from pyspark.sql import functions as F

from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_spark import lake, storage
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
    full: bool = False,
    run_id: str | None = None,
) -> RecomputeSummary:
    """Recompute windows whose ``window_start`` date is in [since, until], or whose raw
    input changed (incremental, the default), or all (``full``).

    Ticks from the hour before ``since`` are read too, so ``ma_1h`` of the first windows is
    complete. Output partitions (``date=``) are replaced with dynamic overwrite.
    """
    started = time.perf_counter()
    run_id = run_id or new_run_id()
    default_in, default_out = default_uris(settings)
    input_uri, output_uri = input_uri or default_in, output_uri or default_out

    inputs: lake.RawInputs | None = None
    dates: list[date] | None = None
    if since is None and until is None:
        inputs = lake.list_raw_files(spark, input_uri)
        previous = None if full else lake.load_state(spark, output_uri)
        if previous is not None:
            dates = _touched_dates(spark, inputs.changed_since(previous))
    raw = storage.read_parquet(spark, input_uri, RAW_REALTIME)
    if dates is not None:
        # The ticks of those dates and the hour before each (for ma_1h).
        raw = raw.where(
            F.to_date(F.col("ts")).isin(*dates)
            | F.to_date(F.col("ts") + F.expr("INTERVAL 1 HOUR")).isin(*dates)
        )
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
    if dates is not None:
        windows = windows.where(F.to_date(F.col("window_start")).isin(*dates))
    written = Observation("recompute_output")
    windows = windows.observe(
        written,
        F.count(F.lit(1)).alias("rows"),
        # Observation returns arrays as JVM objects: ship the set as one string.
        F.array_join(F.array_sort(F.collect_set(F.col(PARTITION_COLUMN))), ",").alias("dates"),
    )
    if dates != []:
        storage.write_partitioned(windows, output_uri, sort=("symbol", "window_start"))
    if inputs is not None:
        lake.save_state(spark, output_uri, inputs)
    if dates == []:
        return _nothing_changed(run_id, input_uri, output_uri, started)
    inputs_seen, outputs = counted.get, written.get
    invalid = {r: int(inputs_seen[r]) for r in tick_quality.REASONS if inputs_seen[r]}
    valid = int(inputs_seen["ticks_in"]) - sum(invalid.values())
    summary = RecomputeSummary(
        run_id=run_id,
        input_uri=input_uri,
        output_uri=output_uri,
        ticks_in=int(inputs_seen["ticks_in"]),
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


def _touched_dates(spark: SparkSession, changed: list[str]) -> list[date]:
    """Window dates whose metrics depend on ticks in the ``changed`` raw files."""
    if not changed:
        return []
    ticks = storage.conform(spark.read.parquet(*changed), RAW_REALTIME, where="changed raw files")
    ts = F.col("ts")
    touched = ticks.where(ts.isNotNull()).select(
        F.explode(F.array(F.to_date(ts), F.to_date(ts + F.expr("INTERVAL 1 HOUR")))).alias("d")
    )
    return sorted({r["d"] for r in touched.distinct().collect()})


def _nothing_changed(
    run_id: str, input_uri: str, output_uri: str, started: float
) -> RecomputeSummary:
    log.info("realtime recompute: raw input unchanged", extra={"run_id": run_id})
    return RecomputeSummary(
        run_id=run_id, input_uri=input_uri, output_uri=output_uri, ticks_in=0, valid_ticks=0,
        invalid={}, duplicate_ticks_dropped=0, windows_written=0, dates_written=[],
        duration_s=round(time.perf_counter() - started, 3),
    )  # fmt: skip
