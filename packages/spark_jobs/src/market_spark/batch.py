"""Historical batch job: ``raw/historical`` → ``processed/historical`` (+ quarantine).

Output is partitioned by ``date`` (= trade_date): a daily run adds one trade date for all
symbols, so it rewrites exactly one partition, and loaders pick up one new file per day;
partitioning by symbol would rewrite every symbol's directory every day. With dynamic
partition overwrite a rerun replaces only the partitions it recomputes, and because each
partition is one file sorted by symbol, a rerun writes byte-identical content.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from pyspark.sql import Observation
from pyspark.sql import functions as F

from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_spark import storage
from market_spark.schemas import PARTITION_COLUMN, PROCESSED_HISTORICAL_COLUMNS, RAW_HISTORICAL
from market_spark.steps import historical_dedup, historical_quality
from market_spark.summary import BatchSummary, new_run_id

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)


def default_uris(settings: MarketSettings) -> tuple[str, str, str]:
    """(input, output, quarantine) URIs of the historical job from settings."""
    s3 = settings.s3
    return (
        s3.uri(s3.raw_prefix, "historical"),
        s3.uri(s3.processed_prefix, "historical"),
        s3.uri(s3.quarantine_prefix, "historical"),
    )


def _with_date_partition(df: DataFrame) -> DataFrame:
    # The date itself, not a formatted string: the directory name is the same
    # (``date=2024-01-02``), and rows already sorted by trade_date need no second sort.
    return df.withColumn(PARTITION_COLUMN, F.col("trade_date"))


def run_batch(
    settings: MarketSettings,
    *,
    spark: SparkSession,
    input_uri: str | None = None,
    output_uri: str | None = None,
    quarantine_uri: str | None = None,
    since: date | None = None,
    until: date | None = None,
    run_id: str | None = None,
    now: datetime | None = None,
) -> BatchSummary:
    """Clean, deduplicate and write the historical bars; return (and store) the summary.

    ``since``/``until`` (inclusive trade dates) limit the run to those partitions; every raw
    version of a bar in range is read, so deduplication stays correct. Rows whose trade_date
    is null are only seen by runs without a date range. ``now`` is the clock that decides
    which trade dates are in the future.

    One pass over the input writes the processed bars and counts every reason on the way;
    only when some rows failed is the input read again to write them to the quarantine.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    run_id = run_id or new_run_id(now)
    default_in, default_out, default_q = default_uris(settings)
    input_uri, output_uri = input_uri or default_in, output_uri or default_out
    quarantine_uri = quarantine_uri or default_q

    raw = storage.read_parquet(spark, input_uri, RAW_HISTORICAL)
    if since is not None:
        raw = raw.where(F.col("trade_date") >= F.lit(since))
    if until is not None:
        raw = raw.where(F.col("trade_date") <= F.lit(until))
    classified = historical_quality.transform(raw, now=now)

    inputs = Observation("classified")
    counted = classified.observe(
        inputs,
        F.count(F.lit(1)).alias("rows_in"),
        *[F.count_if(F.col("reason") == r).alias(r) for r in historical_quality.REASONS],
    )
    # One shuffle: by trade_date, so each date is in one task (one file) and the dedup's sort
    # (trade_date, symbol, latest first) is already the order the files are written in. One
    # task per core: adaptive coalescing would pick a count unrelated to the cores (3 tasks on
    # 2 cores is two waves), and each task's work is its dates' files.
    tasks = spark.sparkContext.defaultParallelism
    valid = counted.where(F.col("reason").isNull()).repartition(tasks, F.col("trade_date"))
    processed = _with_date_partition(historical_dedup.transform(valid)).select(
        *[F.col(c) for c in (*PROCESSED_HISTORICAL_COLUMNS, PARTITION_COLUMN)]
    )
    outputs = Observation("processed")
    processed = processed.observe(
        outputs,
        F.count(F.lit(1)).alias("rows"),
        # Observation returns arrays as JVM objects: ship the set as one string.
        F.array_join(
            F.array_sort(F.collect_set(F.col(PARTITION_COLUMN))).cast("array<string>"), ","
        ).alias("partitions"),
    )
    storage.write_partitioned(processed, output_uri, sort=("symbol",), repartition=False)
    counts = {r: int(inputs.get[r]) for r in historical_quality.REASONS if inputs.get[r]}
    rows_in, rows_out = int(inputs.get["rows_in"]), int(outputs.get["rows"])
    partitions = [p for p in (outputs.get["partitions"] or "").split(",") if p]
    if counts:
        storage.write_partitioned(
            _with_date_partition(classified.where(F.col("reason").isNotNull())),
            quarantine_uri,
            sort=("symbol", "kafka_topic", "kafka_partition", "kafka_offset", "reason"),
        )

    summary = BatchSummary(
        run_id=run_id,
        input_uri=input_uri,
        output_uri=output_uri,
        quarantine_uri=quarantine_uri,
        rows_in=rows_in,
        rows_out=rows_out,
        duplicates_removed=rows_in - sum(counts.values()) - rows_out,
        quarantined=dict(sorted(counts.items())),
        partitions_written=partitions,
        started_at=now.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        duration_s=round(time.perf_counter() - started, 3),
    )
    storage.write_text(spark, f"{output_uri.rstrip('/')}/_runs/{run_id}.json", summary.to_json())
    log.info(
        "historical batch done",
        extra={
            "run_id": run_id,
            "rows_in": summary.rows_in,
            "rows_out": summary.rows_out,
            "duplicates_removed": summary.duplicates_removed,
            "quarantined": summary.quarantined,
            "partitions": len(partitions),
        },
    )
    return summary
