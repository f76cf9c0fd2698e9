"""Classify typed ticks: ``reason`` is null for a valid tick, else why it is quarantined.

The codes and their order are the contract's (:data:`market_common.contracts.REASONS`), so
a tick gets the same reason here as in the consumer's dead-letter queue. Wire-level codes
come from :mod:`tick_parse` (``parse_error``); ticks read back from the raw zone have none,
and only the value rules below apply to them. A future timestamp matters more here than
anywhere: one tick from 2099 would push the event-time watermark past every real tick.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_common.contracts import REASON_CODES, SCHEMA_VERSION, ContractPolicy
from market_common.identifiers import SYMBOL_RE
from market_spark.steps.rules import (
    any_of,
    first_failing,
    full_match,
    is_not_finite,
    policy_or_default,
)

REQUIRED = ("schema_version", "symbol", "ts", "price", "volume", "source")
# Every code a tick can be quarantined with (wire-level ones from tick_parse), in order.
REASONS = tuple(
    code
    for code in REASON_CODES
    if code not in {"high_below_low", "price_outside_range", "invalid_window"}
)


def transform(df: DataFrame, *, policy: ContractPolicy | None = None) -> DataFrame:
    """Ticks with a ``parse_error`` column (null when parsed) → the same columns + ``reason``.

    ``policy`` (default: the job's settings) supplies the universe and the future skew.
    """
    policy = policy_or_default(policy)
    c = F.col
    skew_s = int(policy.future_skew.total_seconds())
    universe = sorted(policy.universe) if policy.universe is not None else None
    unknown = ~c("symbol").isin(*universe) if universe is not None else F.lit(False)
    rules = [
        ("parse_error", c("parse_error").isNotNull()),
        ("unsupported_schema_version", c("schema_version") != SCHEMA_VERSION),
        ("missing_field", any_of([c(name).isNull() for name in REQUIRED])),
        ("invalid_symbol", ~full_match(c("symbol"), SYMBOL_RE.pattern)),
        ("unknown_symbol", unknown),
        ("non_finite", is_not_finite(c("price"))),
        ("non_positive_price", c("price") <= 0),
        ("negative_volume", c("volume") < 0),
        (
            "future_timestamp",
            c("ts") > F.current_timestamp() + F.make_dt_interval(secs=F.lit(skew_s)),
        ),
    ]
    reason = first_failing(rules)
    reason = F.when(reason == "parse_error", c("parse_error")).otherwise(reason)
    return df.select(*[c(name) for name in df.columns], reason.alias("reason"))
