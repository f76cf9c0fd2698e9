"""Classify raw daily bars: ``reason`` is null for a valid bar, else why it is quarantined."""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_common.contracts import SCHEMA_VERSION
from market_common.identifiers import SYMBOL_RE
from market_spark.schemas import RAW_HISTORICAL
from market_spark.steps.rules import any_of, first_failing, is_not_finite

PRICES = ("open", "high", "low", "close")

# Stable reason codes, in the order they are checked (the first failing one is reported).
REASONS = (
    "null_key",
    "invalid_symbol",
    "null_value",
    "unsupported_schema_version",
    "non_finite_price",
    "non_positive_price",
    "high_below_low",
    "open_close_outside_range",
    "negative_volume",
    "future_trade_date",
)


def transform(df: DataFrame, *, today: date) -> DataFrame:
    """Raw bars (:data:`RAW_HISTORICAL`) plus ``reason``; ``today`` bounds trade dates."""
    c = F.col
    low, high = c("low"), c("high")
    rules = [
        ("null_key", c("symbol").isNull() | (F.trim(c("symbol")) == "") | c("trade_date").isNull()),
        ("invalid_symbol", ~c("symbol").rlike(SYMBOL_RE.pattern)),
        ("null_value", any_of([c(p).isNull() for p in (*PRICES, "volume")])),
        (
            "unsupported_schema_version",
            c("schema_version").isNull() | (c("schema_version") != SCHEMA_VERSION),
        ),
        ("non_finite_price", any_of([is_not_finite(c(p)) for p in PRICES])),
        ("non_positive_price", F.least(*[c(p) for p in PRICES]) <= 0),
        ("high_below_low", high < low),
        (
            "open_close_outside_range",
            any_of([(c(p) < low) | (c(p) > high) for p in ("open", "close")]),
        ),
        ("negative_volume", c("volume") < 0),
        ("future_trade_date", c("trade_date") > F.lit(today)),
    ]
    return df.select(
        *[c(f.name) for f in RAW_HISTORICAL.fields], first_failing(rules).alias("reason")
    )
