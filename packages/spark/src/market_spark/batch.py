"""Historical batch job: ``raw/historical`` → ``processed/historical`` (+ quarantine).

Delivery: the processed table is a Delta table (:mod:`market_spark.lake`), so each run is one
atomic commit; a run killed before it leaves the table as it was. Three modes:

* **incremental** (default): only the trade dates held by raw files that are new or changed
  since the last committed run (:class:`~market_spark.lake.RawInputs`) are recomputed, from
  every raw version of those dates, and replaced in the table;
* **range** (``since``/``until``): those trade dates are recomputed and replaced;
* **full** (``full=True``, or no table/state yet): the table is rebuilt from all raw input.

The result of any sequence of incremental runs equals a full rebuild over the same raw files
(``tests/test_incremental_integration.py``). Rows whose trade_date is null are only seen by
full runs (they have no date to be replaced under).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from pyspark.sql import Observation
from pyspark.sql import functions as F

from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_spark import lake, storage
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


@dataclass(frozen=True)
class _Plan:
    """What a run recomputes: ``dates`` None = everything (full rebuild)."""

    mode: str
    dates: list[date] | None
    replace_where: str | None
    inputs: lake.RawInputs | None  # the listing to store after the commit (None: keep state)


def _plan(
    spark: SparkSession,
    input_uri: str,
    output_uri: str,
    *,
    full: bool,
    since: date | None,
    until: date | None,
    layout: lake.Layout,
) -> _Plan:
    """Decide the mode and the trade dates to recompute (see the module docstring)."""
    if since is not None or until is not None:
        bounds = [
            *([f"trade_date >= DATE'{since.isoformat()}'"] if since else []),
            *([f"trade_date <= DATE'{until.isoformat()}'"] if until else []),
        ]
        return _Plan("range", None, " AND ".join(bounds), None)
    inputs = lake.list_raw_files(spark, input_uri)
    previous = None if full else lake.load_state(spark, output_uri)
    if previous is None or not lake.table_exists(spark, output_uri, layout):
        return _Plan("full", None, None, inputs)
    changed = inputs.changed_since(previous)
    if not changed:
        return _Plan("incremental", [], None, inputs)
    touched = storage.conform(
        spark.read.parquet(*changed), RAW_HISTORICAL, where=f"{len(changed)} changed raw files"
    )
    rows = touched.where(F.col("trade_date").isNotNull()).select("trade_date").distinct()
    dates = sorted(r["trade_date"] for r in rows.collect())
    return _Plan("incremental", dates, lake.dates_predicate(dates) if dates else None, inputs)


def run_batch(
    settings: MarketSettings,
    *,
    spark: SparkSession,
    input_uri: str | None = None,
    output_uri: str | None = None,
    quarantine_uri: str | None = None,
    since: date | None = None,
    until: date | None = None,
    full: bool = False,
    run_id: str | None = None,
    now: datetime | None = None,
    layout: lake.Layout = lake.DEFAULT_LAYOUT,
) -> BatchSummary:
    """Clean, deduplicate and commit the historical bars; return (and store) the summary.

    Incremental unless ``full`` or a ``since``/``until`` range (inclusive trade dates) is
    given; every raw version of a recomputed date is read, so deduplication stays correct.
    ``now`` is the clock that decides which trade dates are in the future. ``layout`` is
    for benchmarks comparing table designs; the product uses the default.

    One pass over the input writes the processed bars and counts every reason on the way;
    only when some rows failed is the input read again to write them to the quarantine.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    run_id = run_id or new_run_id(now)
    default_in, default_out, default_q = default_uris(settings)
    input_uri, output_uri = input_uri or default_in, output_uri or default_out
    quarantine_uri = quarantine_uri or default_q

    plan = _plan(spark, input_uri, output_uri, full=full, since=since, until=until, layout=layout)
    if plan.dates == []:
        summary = _summary(
            plan, run_id, (input_uri, output_uri, quarantine_uri), now, started,
            rows_in=0, rows_out=0, counts={}, partitions=[],
        )  # fmt: skip
        return _finish(spark, summary, plan, output_uri, layout)

    raw = storage.read_parquet(spark, input_uri, RAW_HISTORICAL, years=_years(plan.dates))
    if since is not None:
        raw = raw.where(F.col("trade_date") >= F.lit(since))
    if until is not None:
        raw = raw.where(F.col("trade_date") <= F.lit(until))
    if plan.dates:
        raw = raw.where(F.col("trade_date").isin(*plan.dates))
    classified = historical_quality.transform(raw, now=now)

    inputs = Observation("classified")
    counted = classified.observe(
        inputs,
        F.count(F.lit(1)).alias("rows_in"),
        *[F.count_if(F.col("reason") == r).alias(r) for r in historical_quality.REASONS],
    )
    # One shuffle: by trade_date, so the dedup window needs no other, and its sort
    # (trade_date, symbol, latest first) is the order rows are written in. One task per core:
    # adaptive coalescing would pick a count unrelated to the cores (3 tasks on 2 cores is two
    # waves). Each task writes one file per month it holds (≤ cores files per month).
    tasks = spark.sparkContext.defaultParallelism
    valid = counted.where(F.col("reason").isNull()).repartition(tasks, F.col("trade_date"))
    processed = layout.with_partition(historical_dedup.transform(valid)).select(
        *[F.col(c) for c in (*PROCESSED_HISTORICAL_COLUMNS, layout.partition)]
    )
    outputs = Observation("processed")
    processed = processed.observe(
        outputs,
        F.count(F.lit(1)).alias("rows"),
        # Observation returns arrays as JVM objects: ship the set as one string.
        F.array_join(
            F.array_sort(F.collect_set(F.col("trade_date"))).cast("array<string>"), ","
        ).alias("partitions"),
    )
    lake.write_table(
        processed.sortWithinPartitions(
            F.col(layout.partition), F.col("trade_date"), F.col("symbol")
        ),
        output_uri,
        replace_where=plan.replace_where,
        layout=layout,
    )
    counts = {r: int(inputs.get[r]) for r in historical_quality.REASONS if inputs.get[r]}
    partitions = [p for p in (outputs.get["partitions"] or "").split(",") if p]
    if counts:
        storage.write_partitioned(
            _with_date_partition(classified.where(F.col("reason").isNotNull())),
            quarantine_uri,
            sort=("symbol", "kafka_topic", "kafka_partition", "kafka_offset", "reason"),
        )
    summary = _summary(
        plan, run_id, (input_uri, output_uri, quarantine_uri), now, started,
        rows_in=int(inputs.get["rows_in"]), rows_out=int(outputs.get["rows"]),
        counts=counts, partitions=partitions,
    )  # fmt: skip
    return _finish(spark, summary, plan, output_uri, layout)


def _years(dates: list[date] | None) -> list[int] | None:
    return sorted({d.year for d in dates}) if dates else None


def _summary(
    plan: _Plan,
    run_id: str,
    uris: tuple[str, str, str],
    now: datetime,
    started: float,
    *,
    rows_in: int,
    rows_out: int,
    counts: dict[str, int],
    partitions: list[str],
) -> BatchSummary:
    return BatchSummary(
        run_id=run_id,
        input_uri=uris[0],
        output_uri=uris[1],
        quarantine_uri=uris[2],
        rows_in=rows_in,
        rows_out=rows_out,
        duplicates_removed=rows_in - sum(counts.values()) - rows_out,
        quarantined=dict(sorted(counts.items())),
        partitions_written=partitions,
        started_at=now.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        duration_s=round(time.perf_counter() - started, 3),
        mode=plan.mode,
    )


def _finish(
    spark: SparkSession, summary: BatchSummary, plan: _Plan, output_uri: str, layout: lake.Layout
) -> BatchSummary:
    """Vacuum, then record the processed raw inputs (after the commit), then the summary."""
    if summary.partitions_written or plan.mode == "full":
        lake.vacuum(spark, output_uri, layout)
    if plan.inputs is not None:
        lake.save_state(spark, output_uri, plan.inputs)
    storage.write_text(
        spark, f"{output_uri.rstrip('/')}/_runs/{summary.run_id}.json", summary.to_json()
    )
    log.info(
        "historical batch done",
        extra={
            "run_id": summary.run_id,
            "mode": summary.mode,
            "rows_in": summary.rows_in,
            "rows_out": summary.rows_out,
            "duplicates_removed": summary.duplicates_removed,
            "quarantined": summary.quarantined,
            "partitions": len(summary.partitions_written),
        },
    )
    return summary
