"""Classify typed ticks: ``reason`` is null for a valid tick, else why it is quarantined.

The codes, rules and their order are the contract's (:mod:`market_common.contract_spec`), so
a tick gets the same reason here as in the consumer's dead-letter queue. Wire-level codes
come from :mod:`tick_parse` (``parse_error``); ticks read back from the raw zone have none,
and only the value rules below apply to them. A future timestamp matters more here than
anywhere: one tick from 2099 would push the event-time watermark past every real tick.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_common import contract_spec
from market_common.contracts import ContractPolicy
from market_spark.steps.rules import contract_rules, first_failing, policy_or_default

REQUIRED = tuple(f.name for f in contract_spec.FIELDS["tick"])
# Every code a tick can be quarantined with (wire-level ones from tick_parse), in order.
REASONS = tuple(r.code for r in contract_spec.REASONS if "tick" in r.kinds)


def transform(
    df: DataFrame, *, policy: ContractPolicy | None = None, now: datetime | None = None
) -> DataFrame:
    """Ticks with a ``parse_error`` column (null when parsed) → the same columns + ``reason``.

    ``policy`` (default: the job's settings) supplies the universe and the future skew. The
    value rules are the contract's (:func:`~market_spark.steps.rules.contract_rules`).
    Future ticks are judged against ``now``, by default each micro-batch's
    ``current_timestamp()`` (a fixed ``now`` lets tests compare engines on one clock).
    """
    policy = policy_or_default(policy)
    c = F.col
    rules = [("parse_error", c("parse_error").isNotNull())]
    rules += contract_rules("tick", policy, required=REQUIRED, now=now)
    reason = first_failing(rules)
    reason = F.when(reason == "parse_error", c("parse_error")).otherwise(reason)
    if "closes_at" in df.columns:  # a control record (tick_parse) is not judged as a tick
        reason = F.when(c("closes_at").isNull(), reason)
    return df.select(*[c(name) for name in df.columns], reason.alias("reason"))
