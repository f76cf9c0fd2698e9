"""Kafka records of the realtime topic → typed ticks (nothing is dropped here).

A value that is not a JSON object of the tick contract keeps its raw text and gets a
``parse_error`` so the quality step can quarantine it with a reason.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_common.contracts import Tick
from market_spark.schemas import TICK_COLUMNS, TICK_JSON

# The contract defaults a missing source; so does the parser.
DEFAULT_SOURCE = str(Tick.model_fields["source"].default)
PARSED_COLUMNS = (*TICK_COLUMNS, "kafka_timestamp", "raw_value", "parse_error")


def transform(df: DataFrame) -> DataFrame:
    """Kafka source rows (value, topic, partition, offset, timestamp) → :data:`PARSED_COLUMNS`."""
    raw = F.col("value").cast("string")
    parsed = F.from_json(
        raw,
        TICK_JSON,
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"},
    )
    ts_text = F.col("tick.ts")
    ts = F.try_to_timestamp(ts_text)
    parse_error = (
        F.when(F.col("raw_value").isNull() | F.col("tick").isNull(), F.lit("malformed_json"))
        .when(F.col("tick._corrupt_record").isNotNull(), F.lit("malformed_json"))
        .when(ts_text.isNotNull() & ts.isNull(), F.lit("invalid_timestamp"))
    )
    return (
        df.select(
            F.col("topic"),
            F.col("partition"),
            F.col("offset"),
            F.col("timestamp"),
            raw.alias("raw_value"),
            parsed.alias("tick"),
        )
        .select(
            F.col("tick.symbol").alias("symbol"),
            ts.alias("ts"),
            F.col("tick.price").alias("price"),
            F.col("tick.volume").alias("volume"),
            F.coalesce(F.col("tick.source"), F.lit(DEFAULT_SOURCE)).alias("source"),
            F.col("tick.schema_version").alias("schema_version"),
            F.col("topic").alias("kafka_topic"),
            F.col("partition").cast("int").alias("kafka_partition"),
            F.col("offset").cast("long").alias("kafka_offset"),
            F.col("timestamp").alias("kafka_timestamp"),
            F.col("raw_value"),
            parse_error.alias("parse_error"),
        )
        .select(*[F.col(c) for c in PARSED_COLUMNS])
    )
