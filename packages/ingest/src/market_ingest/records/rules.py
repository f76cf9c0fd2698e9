"""The contract's value rules on canonical frames: a numpy evaluator of the one definition.

:data:`market_common.contract_spec.VALUE_RULES` is evaluated column-wise here, the same
predicates pydantic evaluates per record (``contract_spec.first_failing``), so the two
cannot disagree on a value rule. Only the *verdict* is computed: a failing row goes to the
slow path, where pydantic names the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from market_common import contract_spec
from market_common.contract_spec import (
    OPS,
    BadSymbol,
    Cmp,
    Context,
    NotFinite,
    OutsideUniverse,
    Predicate,
)
from market_common.contracts import DEFAULT_FUTURE_SKEW
from market_ingest.records.common import EARLIEST, TIME_FIELD, Kind


def _symbol_mask(pred: BadSymbol | OutsideUniverse, symbols: pd.Series, ctx: Context) -> np.ndarray:
    # Few distinct symbols: judge each once.
    codes, uniques = pd.factorize(symbols, use_na_sentinel=False)
    bad = np.fromiter(
        (
            not isinstance(u, str) or contract_spec.scalar(pred, {pred.field: u}, ctx)
            for u in uniques
        ),
        dtype=bool,
        count=len(uniques),
    )
    return bad[codes] if len(uniques) else np.zeros(0, dtype=bool)


def _time_limit(field: str, ctx: Context) -> np.datetime64:
    if field == "trade_date":
        return np.datetime64(ctx.latest.date(), "ns")
    return np.datetime64(contract_spec.utc_naive(ctx.latest), "ns")


def _columns(kind: Kind, canon: pd.DataFrame) -> Mapping[str, object]:
    cols: dict[str, object] = {
        name: canon[name].to_numpy() for name in canon.columns if name not in ("symbol", "ts")
    }
    cols["symbol"] = canon["symbol"]
    if kind == "tick":
        cols["ts"] = canon["ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return cols


def _mask(pred: Predicate, cols: Mapping[str, object], ctx: Context) -> np.ndarray:
    value = cols[pred.field]
    if isinstance(pred, Cmp):
        other = cols[pred.other] if isinstance(pred.other, str) else pred.other
        return np.asarray(OPS[pred.op](value, other), dtype=bool)
    if isinstance(pred, NotFinite):
        return ~np.isfinite(np.asarray(value, dtype="float64"))
    if isinstance(pred, BadSymbol | OutsideUniverse):
        assert isinstance(value, pd.Series)
        return _symbol_mask(pred, value, ctx)
    return np.asarray(value, dtype="datetime64[ns]") > _time_limit(pred.field, ctx)


def check(
    kind: Kind,
    canon: pd.DataFrame,
    *,
    now: datetime,
    universe: frozenset[str] | None,
    future_skew: timedelta = DEFAULT_FUTURE_SKEW,
) -> np.ndarray:
    """Vectorised contract rules on a canonical frame; ``True`` = the row passes."""
    ctx = Context(now=now, future_skew=future_skew, universe=universe)
    cols = _columns(kind, canon)
    ok = np.ones(len(canon), dtype=bool)
    for rule in contract_spec.VALUE_RULES[kind]:
        for pred in rule.any_of:
            ok &= ~_mask(pred, cols, ctx)
    # Below the contract's earliest wire year a frame value has no wire form: pydantic decides.
    times = np.asarray(cols[TIME_FIELD[kind]], dtype="datetime64[ns]")
    ok &= times >= EARLIEST.to_datetime64()
    return ok
