"""Classify typed ticks: ``reason`` is null for a valid tick, else why it is quarantined.

The rules mirror :class:`market_common.contracts.Tick`. A future timestamp matters more here
than anywhere: one tick from 2099 would push the event-time watermark past every real tick.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_common.contracts import FUTURE_TOLERANCE, SCHEMA_VERSION
from market_common.identifiers import SYMBOL_RE
from market_spark.steps.rules import any_of, first_failing, is_not_finite

REQUIRED = ("schema_version", "symbol", "ts", "price", "volume")
# Stable reason codes, in the order they are checked.
REASONS = (
    "malformed_json",
    "invalid_timestamp",
    "null_field",
    "unsupported_schema_version",
    "invalid_symbol",
    "non_finite_price",
    "non_positive_price",
    "negative_volume",
    "future_timestamp",
)


def transform(df: DataFrame) -> DataFrame:
    """Ticks with a ``parse_error`` column (null when parsed) → the same columns + ``reason``."""
    c = F.col
    tolerance_s = int(FUTURE_TOLERANCE.total_seconds())
    rules = [
        ("malformed_json", c("parse_error") == "malformed_json"),
        ("invalid_timestamp", c("parse_error") == "invalid_timestamp"),
        ("null_field", any_of([c(name).isNull() for name in REQUIRED])),
        ("unsupported_schema_version", c("schema_version") != SCHEMA_VERSION),
        ("invalid_symbol", ~c("symbol").rlike(SYMBOL_RE.pattern)),
        ("non_finite_price", is_not_finite(c("price"))),
        ("non_positive_price", c("price") <= 0),
        ("negative_volume", c("volume") < 0),
        (
            "future_timestamp",
            c("ts") > F.current_timestamp() + F.make_dt_interval(secs=F.lit(tolerance_s)),
        ),
    ]
    return df.select(*[c(name) for name in df.columns], first_failing(rules).alias("reason"))
