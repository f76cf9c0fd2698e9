"""One bar per (symbol, trade_date): the latest delivery wins.

Kafka delivery is at-least-once and re-ingestion is allowed, so the same bar may arrive many
times. The latest ``ingested_at`` wins, then the highest Kafka offset (then partition), which
makes the choice deterministic and a rerun byte-for-byte identical.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_spark.schemas import PROCESSED_HISTORICAL_COLUMNS

KEY = ("symbol", "trade_date")


def transform(df: DataFrame) -> DataFrame:
    """Valid raw bars → :data:`PROCESSED_HISTORICAL_COLUMNS`, unique on (symbol, trade_date)."""
    values = [c for c in PROCESSED_HISTORICAL_COLUMNS if c not in KEY]
    latest = F.max_by(
        F.struct(*[F.col(c) for c in values]),
        F.struct(F.col("ingested_at"), F.col("kafka_offset"), F.col("kafka_partition")),
    )
    return (
        df.groupBy(*[F.col(k) for k in KEY])
        .agg(latest.alias("latest"))
        .select(*[F.col(k) for k in KEY], *[F.col(f"latest.{c}").alias(c) for c in values])
        .select(*[F.col(c) for c in PROCESSED_HISTORICAL_COLUMNS])
    )
