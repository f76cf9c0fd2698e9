"""Compact JSON values for canonical rows, and JSON of arbitrary rows."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from market_ingest.records.common import FIELDS, FLOAT_FIELDS, Kind


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def row_json(row: dict[str, Any]) -> bytes:
    """JSON of an arbitrary row (NaN kept as the ``NaN`` literal so the contract names it)."""
    return json.dumps(row, default=_json_default, allow_nan=True, separators=(",", ":")).encode()


def _source_literals(sources: pd.Series) -> list[str]:
    codes, uniques = pd.factorize(sources)
    lit = [json.dumps(u) for u in uniques]
    return [lit[c] for c in codes]


def encode(kind: Kind, canon: pd.DataFrame) -> list[bytes]:
    """Compact JSON values for canonical, already validated rows.

    Symbols are validated (no characters needing escapes), ``source`` is escaped via
    ``json.dumps`` once per distinct value; floats use ``repr`` (shortest round-trip).
    """
    if canon.empty:
        return []
    sv = canon["schema_version"].tolist()
    sym = canon["symbol"].tolist()
    src = _source_literals(canon["source"])
    vol = canon["volume"].tolist()
    if kind == "daily_bar":
        day = np.datetime_as_string(canon["trade_date"].to_numpy(), unit="D").tolist()
        o, h, lo, c = (canon[f].tolist() for f in FLOAT_FIELDS[kind])
        return [
            f'{{"schema_version":{a},"symbol":"{b}","trade_date":"{d}","open":{e!r},'
            f'"high":{f!r},"low":{g!r},"close":{k!r},"volume":{m},"source":{s}}}'.encode()
            for a, b, d, e, f, g, k, m, s in zip(sv, sym, day, o, h, lo, c, vol, src, strict=True)
        ]
    ts = np.datetime_as_string(
        canon["ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), unit="us"
    ).tolist()
    price = canon["price"].tolist()
    return [
        f'{{"schema_version":{a},"symbol":"{b}","ts":"{t}Z","price":{p!r},'
        f'"volume":{m},"source":{s}}}'.encode()
        for a, b, t, p, m, s in zip(sv, sym, ts, price, vol, src, strict=True)
    ]


def model_row(kind: Kind, model: Any) -> dict[str, Any]:
    """Canonical column values of a validated pydantic record."""
    row = {name: getattr(model, name) for name in FIELDS[kind]}
    if kind == "daily_bar":
        row["trade_date"] = pd.Timestamp(row["trade_date"])
    else:
        row["ts"] = pd.Timestamp(row["ts"]).tz_convert("UTC")
    return row
