"""Per-symbol 15-minute window metrics with a trailing-hour mean, for streams and batches.

Definitions (UTC, windows aligned to the epoch, ``[start, end)``):

* ``ma_15m`` / ``volatility_15m`` / ``volume_sum_15m`` / ``tick_count``: mean, sample standard
  deviation (null for one tick), volume sum and count of the symbol's valid ticks with
  ``window_start <= ts < window_end``.
* ``window_open`` / ``window_close``: price of the first / last tick ordered by
  (ts, kafka_partition, kafka_offset); ``window_high`` / ``window_low``: max / min price.
* ``ma_1h``: tick-weighted mean price over the trailing hour ending at ``window_end``, i.e.
  every tick with ``window_end - 1h <= ts < window_end`` (the four 15-minute windows ending at
  ``window_end - 45m … window_end``, empty ones contributing nothing) — not a mean of means.

Implementation: two chained event-time aggregations, which Structured Streaming supports in
append mode. Stage 1 emits (sum, count, …) per 15-minute window once the watermark passes its
end; stage 2 groups those by a 1-hour window sliding every 15 minutes over ``window_time`` and
keeps, per sliding window, the 15-minute window that ends with it. In a stream the input
must carry the event-time watermark on ``ts`` (:mod:`market_spark.steps.tick_dedup` sets it
and drops late and duplicate ticks first); on a batch DataFrame the same code yields the same
numbers for the same ticks.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_spark.schemas import PARTITION_COLUMN, WINDOW_COLUMNS

WINDOW = "15 minutes"
TRAILING = "1 hour"

_STAGE1 = (
    "window_start",
    "window_end",
    "sum_price",
    "tick_count",
    "volatility_15m",
    "volume_sum_15m",
    "window_open",
    "window_high",
    "window_low",
    "window_close",
)


def transform(df: DataFrame) -> DataFrame:
    """Valid ticks (symbol, ts, price, volume, kafka_partition, kafka_offset) → window rows.

    Output: :data:`WINDOW_COLUMNS` + ``date`` (``yyyy-MM-dd`` of ``window_start``).
    """
    order = F.struct(F.col("ts"), F.col("kafka_partition"), F.col("kafka_offset"))
    stage1 = (
        df.select(
            F.col("symbol"),
            F.col("ts"),
            F.col("price"),
            F.col("volume"),
            F.col("kafka_partition"),
            F.col("kafka_offset"),
        )
        .groupBy(F.col("symbol"), F.window(F.col("ts"), WINDOW).alias("w"))
        .agg(
            F.sum(F.col("price")).alias("sum_price"),
            F.count(F.lit(1)).alias("tick_count"),
            F.stddev_samp(F.col("price")).alias("volatility_15m"),
            F.sum(F.col("volume")).alias("volume_sum_15m"),
            F.min_by(F.col("price"), order).alias("window_open"),
            F.max(F.col("price")).alias("window_high"),
            F.min(F.col("price")).alias("window_low"),
            F.max_by(F.col("price"), order).alias("window_close"),
        )
        .select(
            F.col("symbol"),
            F.window_time(F.col("w")).alias("event_time"),
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            *[F.col(c) for c in _STAGE1[2:]],
        )
    )
    stage2 = (
        stage1.groupBy(
            F.col("symbol"), F.window(F.col("event_time"), TRAILING, WINDOW).alias("h")
        ).agg(
            F.sum(F.col("sum_price")).alias("sum_price_1h"),
            F.sum(F.col("tick_count")).alias("tick_count_1h"),
            F.max_by(F.struct(*[F.col(c) for c in _STAGE1]), F.col("window_end")).alias("last"),
        )
        # Each sliding hour yields the row of the 15-minute window that closes it, if any.
        .where(F.col("last.window_end") == F.col("h.end"))
    )
    return stage2.select(
        F.col("symbol"),
        F.col("last.window_start").alias("window_start"),
        F.col("last.window_end").alias("window_end"),
        (F.col("last.sum_price") / F.col("last.tick_count")).alias("ma_15m"),
        (F.col("sum_price_1h") / F.col("tick_count_1h")).alias("ma_1h"),
        F.col("last.volatility_15m").alias("volatility_15m"),
        F.col("last.volume_sum_15m").alias("volume_sum_15m"),
        F.col("last.tick_count").alias("tick_count"),
        F.col("last.window_open").alias("window_open"),
        F.col("last.window_high").alias("window_high"),
        F.col("last.window_low").alias("window_low"),
        F.col("last.window_close").alias("window_close"),
        F.date_format(F.col("last.window_start"), "yyyy-MM-dd").alias(PARTITION_COLUMN),
    ).select(*[F.col(c) for c in (*WINDOW_COLUMNS, PARTITION_COLUMN)])
