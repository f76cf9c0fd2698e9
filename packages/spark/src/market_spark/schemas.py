"""Explicit schemas: the raw-zone contract written by ``market_ingest`` and the outputs.

Readers never infer types: :func:`market_spark.storage.conform` casts what is on disk to these,
so an int32/int64 difference between writers is harmless while a missing column is an error.
"""

from __future__ import annotations

from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

_KAFKA_FIELDS = [
    StructField("kafka_topic", StringType()),
    StructField("kafka_partition", IntegerType()),
    StructField("kafka_offset", LongType()),
    StructField("ingested_at", TimestampType()),
]

RAW_HISTORICAL = StructType(
    [
        StructField("symbol", StringType()),
        StructField("trade_date", DateType()),
        StructField("open", DoubleType()),
        StructField("high", DoubleType()),
        StructField("low", DoubleType()),
        StructField("close", DoubleType()),
        StructField("volume", LongType()),
        StructField("source", StringType()),
        StructField("schema_version", IntegerType()),
        *_KAFKA_FIELDS,
    ]
)

RAW_REALTIME = StructType(
    [
        StructField("symbol", StringType()),
        StructField("ts", TimestampType()),
        StructField("price", DoubleType()),
        StructField("volume", LongType()),
        StructField("source", StringType()),
        StructField("schema_version", IntegerType()),
        *_KAFKA_FIELDS,
    ]
)

# The Kafka value of the realtime topic (market_common.contracts.Tick as JSON). ``ts`` is
# read as a string and cast afterwards so a malformed timestamp is a reason, not a null.
TICK_JSON = StructType(
    [
        StructField("schema_version", IntegerType()),
        StructField("symbol", StringType()),
        StructField("ts", StringType()),
        StructField("price", DoubleType()),
        StructField("volume", LongType()),
        StructField("source", StringType()),
        StructField("_corrupt_record", StringType()),
    ]
)

# Typed ticks as every tick step sees them, whichever source they came from.
TICK_COLUMNS = (
    "symbol",
    "ts",
    "price",
    "volume",
    "source",
    "schema_version",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)

PROCESSED_HISTORICAL_COLUMNS = (
    "symbol",
    "trade_date",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "source",
    "ingested_at",
)

WINDOW_COLUMNS = (
    "symbol",
    "window_start",
    "window_end",
    "ma_15m",
    "ma_1h",
    "volatility_15m",
    "volume_sum_15m",
    "tick_count",
    "window_open",
    "window_high",
    "window_low",
    "window_close",
)

# Partition column of every processed and quarantine dataset: ISO date string (yyyy-MM-dd).
PARTITION_COLUMN = "date"
