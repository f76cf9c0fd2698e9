"""Turning ordered validation rules into one ``reason`` column, and rule helpers."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from market_common.contracts import ContractPolicy


def first_failing(rules: Sequence[tuple[str, Column]]) -> Column:
    """The name of the first rule whose condition is true, else null (the row is valid).

    Rules are checked in order, so a row missing its key is reported as ``null_key`` rather
    than under whichever later check its nulls happen to trip.
    """
    reason: Column = F.lit(None).cast("string")
    for name, condition in reversed(rules):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return reason


def is_not_finite(col: Column) -> Column:
    """NaN or ±infinity (Spark orders NaN above every number, so ``> 0`` lets it through)."""
    return F.isnan(col) | (F.abs(col) == F.lit(float("inf")))


def any_of(conditions: Iterable[Column]) -> Column:
    """Logical OR of several conditions."""
    return functools.reduce(operator.or_, conditions)


def full_match(col: Column, pattern: str) -> Column:
    """Python's ``re.fullmatch`` semantics for a Java regex.

    ``rlike`` searches, and Java's ``$`` also matches before a final line break, so
    ``"AAPL\\n"`` would pass ``^…$`` in Spark while Python rejects it: anchor with ``\\z``.
    """
    body = pattern.removeprefix("^").removesuffix("$")
    return col.rlike(f"^(?:{body})\\z")


def policy_or_default(policy: ContractPolicy | None) -> ContractPolicy:
    """The given policy, else the one of the job's settings (``MARKET_CONTRACTS__*``)."""
    if policy is not None:
        return policy
    from market_common.settings import get_settings

    return ContractPolicy.from_settings(get_settings())
