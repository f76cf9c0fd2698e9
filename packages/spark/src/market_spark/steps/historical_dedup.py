"""One bar per (symbol, trade_date): the latest *published* version wins.

Kafka delivery is at-least-once and re-ingestion is allowed, so the same bar may arrive many
times. The highest Kafka offset wins (then partition, then ``ingested_at``): the offset is
when the record was published, so a correction beats the original it corrects even when
the original is re-consumed later (a group reset gives it a newer ``ingested_at``, never a
newer offset). Bars are keyed by symbol, so every version of one bar shares a partition and
their offsets are comparable. The order is deterministic: a rerun is byte-for-byte identical.

A window ``row_number`` rather than a ``max_by`` aggregation: its sort, (trade_date, symbol,
latest first), is also the order the batch job writes rows in, so when the input is already
hash-partitioned by trade_date (``run_batch`` does that) dedup, ordering and the one-file-per-
date write share one shuffle and one sort.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from market_spark.schemas import PROCESSED_HISTORICAL_COLUMNS

KEY = ("trade_date", "symbol")
# Descending: the first row of each key is the latest delivery.
LATEST_FIRST = ("kafka_offset", "kafka_partition", "ingested_at")


def transform(df: DataFrame) -> DataFrame:
    """Valid raw bars → :data:`PROCESSED_HISTORICAL_COLUMNS`, unique on (symbol, trade_date)."""
    latest = Window.partitionBy(*[F.col(k) for k in KEY]).orderBy(
        *[F.col(c).desc_nulls_last() for c in LATEST_FIRST]
    )
    return (
        df.withColumn("_rank", F.row_number().over(latest))
        .where(F.col("_rank") == 1)
        .select(*[F.col(c) for c in PROCESSED_HISTORICAL_COLUMNS])
    )
