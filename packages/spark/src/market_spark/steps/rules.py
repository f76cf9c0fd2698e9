"""Turning ordered validation rules into one ``reason`` column, and rule helpers."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from datetime import datetime

from pyspark.sql import Column
from pyspark.sql import functions as F

from market_common import contract_spec
from market_common.contract_spec import BadSymbol, Cmp, NotFinite, OutsideUniverse, Predicate
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


_SPARK_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, "!=": operator.ne}


def _predicate(pred: Predicate, policy: ContractPolicy, now: datetime | None) -> Column:
    col = F.col(pred.field)
    if isinstance(pred, Cmp):
        other = F.col(pred.other) if isinstance(pred.other, str) else F.lit(pred.other)
        return _SPARK_OPS[pred.op](col, other)
    if isinstance(pred, NotFinite):
        return is_not_finite(col)
    if isinstance(pred, BadSymbol):
        return ~full_match(col, contract_spec.SYMBOL_RE.pattern)
    if isinstance(pred, OutsideUniverse):
        return ~col.isin(*sorted(policy.universe)) if policy.universe is not None else F.lit(False)
    skew_s = int(policy.future_skew.total_seconds())
    if now is None:  # a streaming query: the clock of each micro-batch
        latest = F.current_timestamp() + F.make_dt_interval(secs=F.lit(skew_s))
    else:
        latest = F.lit(now + policy.future_skew)
    if pred.field == "trade_date":
        return col > (
            F.to_date(latest) if now is None else F.lit((now + policy.future_skew).date())
        )
    return col > latest


def contract_rules(
    kind: str,
    policy: ContractPolicy,
    *,
    required: Sequence[str],
    now: datetime | None = None,
) -> list[tuple[str, Column]]:
    """:data:`market_common.contract_spec.VALUE_RULES` of ``kind`` as ``(code, condition)``
    pairs for :func:`first_failing`: the same predicates pydantic and the ingest fast path
    evaluate, plus ``missing_field`` for null ``required`` columns, in the contract's
    precedence. ``now=None`` judges future timestamps by Spark's ``current_timestamp()``.
    """
    rules = [
        (rule.code, any_of([_predicate(p, policy, now) for p in rule.any_of]))
        for rule in contract_spec.VALUE_RULES[kind]
    ]
    rules.append(("missing_field", any_of([F.col(name).isNull() for name in required])))
    return sorted(rules, key=lambda rule: contract_spec.RANK[rule[0]])
