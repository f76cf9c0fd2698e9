"""Canonical dtypes for record frames, and which rows the vectorised path cannot judge."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from market_ingest.records.common import (
    DATE_RE,
    FIELDS,
    INT_FIELDS,
    STR_FIELDS,
    TS_RE,
    Kind,
)


def empty_frame(kind: Kind, index: pd.Index | None = None) -> pd.DataFrame:
    """Placeholder rows (zeros, empty strings) with the canonical dtypes of ``kind``."""
    index = index if index is not None else pd.RangeIndex(0)
    n = len(index)
    cols: dict[str, Any] = {}
    for name in FIELDS[kind]:
        if name in INT_FIELDS:
            cols[name] = np.zeros(n, dtype="int64")
        elif name in STR_FIELDS:
            cols[name] = np.full(n, "", dtype=object)
        elif name == "trade_date":
            cols[name] = np.zeros(n, dtype="datetime64[ns]")
        elif name == "ts":
            cols[name] = pd.DatetimeIndex(np.zeros(n, dtype="datetime64[ns]"), tz="UTC")
        else:
            cols[name] = np.zeros(n, dtype="float64")
    return pd.DataFrame(cols, index=index)


def _is_str_array(values: pd.Series) -> np.ndarray:
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return np.ones(len(values), dtype=bool)
    return np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))


def _canon_int(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    n = len(s)
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(np.zeros(n, dtype="int64"), index=s.index), np.ones(n, dtype=bool)
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("int64"), np.zeros(n, dtype=bool)
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isfinite(v) & (v == np.trunc(v)) & (np.abs(v) < 2**53)
        return pd.Series(np.where(ok, v, 0).astype("int64"), index=s.index), ~ok
    ok = np.fromiter(
        (isinstance(v, int) and not isinstance(v, bool) for v in s), dtype=bool, count=n
    )
    out = np.zeros(n, dtype="int64")
    if ok.any():
        vals = s[ok].to_numpy()
        big = np.fromiter((abs(v) >= 2**63 for v in vals), dtype=bool, count=len(vals))
        ok_idx = np.flatnonzero(ok)
        ok[ok_idx[big]] = False
        out[ok] = s[ok].to_numpy().astype("int64")
    return pd.Series(out, index=s.index), ~ok


def _canon_float(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    n = len(s)
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(np.zeros(n), index=s.index), np.ones(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        # Ints beyond 2**53 would be rounded by the cast; let pydantic judge them.
        slow = (
            np.abs(v) >= 2**53
            if pd.api.types.is_integer_dtype(s.dtype)
            else np.zeros(n, dtype=bool)
        )
        return pd.Series(v, index=s.index), slow
    ok = np.fromiter(
        (isinstance(v, float | int) and not isinstance(v, bool) for v in s), dtype=bool, count=n
    )
    out = np.zeros(n)
    if ok.any():
        out[ok] = s[ok].to_numpy().astype("float64")
    return pd.Series(out, index=s.index), ~ok


def _canon_str(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    obj = s.astype(object) if s.dtype != object else s
    ok = _is_str_array(obj)
    return obj.where(ok, ""), ~ok


def _canon_date(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    n = len(s)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return pd.Series(np.full(n, np.datetime64("1970-01-01", "ns")), index=s.index), np.ones(
            n, dtype=bool
        )
    if pd.api.types.is_datetime64_dtype(s.dtype):
        d = s.astype("datetime64[ns]")
    else:
        is_date = np.fromiter(
            (type(v) is date or type(v) is pd.Timestamp and v.tzinfo is None for v in s),
            dtype=bool,
            count=n,
        )
        text = s.where(~is_date, None)
        text_ok = _is_str_array(text) & ~is_date
        parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
        if text_ok.any():
            t = text[text_ok].astype(str)
            good = t.str.fullmatch(DATE_RE)
            parsed[t.index[good]] = pd.to_datetime(t[good], format="%Y-%m-%d", errors="coerce")
        if is_date.any():
            parsed[is_date] = pd.to_datetime(s[is_date], errors="coerce")
        d = parsed
    v = d.to_numpy()
    ok = ~np.isnat(v) & (v == v.astype("datetime64[D]"))
    return pd.Series(np.where(ok, v, np.datetime64(0, "ns")), index=s.index), ~ok


def _canon_ts(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        d = s.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(s.dtype):
        d = s.dt.tz_localize("UTC")  # pydantic reads naive datetimes as UTC as well
    else:
        text_ok = _is_str_array(s)
        d = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
        if text_ok.any():
            t = s[text_ok]
            good = t.str.fullmatch(TS_RE).fillna(False).astype(bool)
            if good.any():
                d[t.index[good]] = pd.to_datetime(
                    t[good], utc=True, format="ISO8601", errors="coerce"
                )
    v = d.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    ok = v.notna().to_numpy()
    v = v.where(ok, pd.Timestamp(0, tz="UTC"))
    return v, ~ok


def canonicalise(kind: Kind, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Return ``(canonical_frame, slow_mask)``: rows in ``slow_mask`` need pydantic."""
    n = len(df)
    wanted = FIELDS[kind]
    if set(df.columns) != set(wanted) or df.columns.duplicated().any():
        # Missing columns (defaults, "Field required") or extra ones ("not permitted"):
        # pydantic decides each row.
        return empty_frame(kind, df.index), np.ones(n, dtype=bool)
    slow = np.zeros(n, dtype=bool)
    out: dict[str, pd.Series] = {}
    for name in wanted:
        s = df[name]
        if name in INT_FIELDS:
            col, bad = _canon_int(s)
        elif name in STR_FIELDS:
            col, bad = _canon_str(s)
        elif name == "trade_date":
            col, bad = _canon_date(s)
        elif name == "ts":
            col, bad = _canon_ts(s)
        else:
            col, bad = _canon_float(s)
        out[name] = col
        slow |= bad
    return pd.DataFrame(out, index=df.index), slow
