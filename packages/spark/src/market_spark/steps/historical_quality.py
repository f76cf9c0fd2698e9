"""Classify raw daily bars: ``reason`` is null for a valid bar, else why it is quarantined.

The rules, codes and their order are the contract's (:mod:`market_common.contract_spec`),
the same the consumer dead-letters with, so a bar written to raw by anything other than the
consumer (a file drop, an older writer) is judged exactly as on the wire. Nulls in raw
columns are ``missing_field``; the future cut-off honours the configured clock skew.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from market_common import contract_spec
from market_common.contracts import ContractPolicy
from market_spark.schemas import RAW_HISTORICAL
from market_spark.steps.rules import contract_rules, first_failing, policy_or_default

REQUIRED = tuple(f.name for f in contract_spec.FIELDS["daily_bar"])
# Every code a raw bar can be quarantined with, in the order they are checked.
REASONS = tuple(
    r.code
    for r in contract_spec.REASONS
    if r.code == "missing_field" or (r.stage == "value" and "daily_bar" in r.kinds)
)


def transform(
    df: DataFrame, *, now: datetime | None = None, policy: ContractPolicy | None = None
) -> DataFrame:
    """Raw bars (:data:`RAW_HISTORICAL`) plus ``reason``.

    ``now`` (default: the wall clock) and ``policy.future_skew`` bound trade dates;
    ``policy`` (default: the job's settings) also supplies the universe.
    """
    policy = policy_or_default(policy)
    rules = contract_rules("daily_bar", policy, required=REQUIRED, now=now or datetime.now(UTC))
    return df.select(
        *[F.col(f.name) for f in RAW_HISTORICAL.fields], first_failing(rules).alias("reason")
    )
