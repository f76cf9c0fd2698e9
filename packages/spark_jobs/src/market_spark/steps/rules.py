"""Turning ordered validation rules into one ``reason`` column."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F


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
