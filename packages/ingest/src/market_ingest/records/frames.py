"""Producer side: validate a frame of records exactly as the contract would."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from market_common.contracts import DEFAULT_FUTURE_SKEW, InvalidRecordError, validate_payload
from market_common.runtime import utc_now
from market_ingest.records.canonical import canonicalise
from market_ingest.records.common import FIELDS, MAX_RECORD_BYTES, Kind, Reject, Validated
from market_ingest.records.encoding import encode, model_row, row_json
from market_ingest.records.rules import check


def validate_frame(
    kind: Kind,
    df: pd.DataFrame,
    *,
    now: datetime | None = None,
    universe: Iterable[str] | None = None,
    max_bytes: int = MAX_RECORD_BYTES,
    future_skew: timedelta = DEFAULT_FUTURE_SKEW,
    encode_payloads: bool = True,
) -> Validated:
    """Validate a frame of records (one row per record) exactly as the contract would.

    Returns the accepted rows in canonical form with their JSON payloads, and a
    :class:`Reject` (pydantic's reason, the original row's JSON) for every other row.
    """
    now = now or utc_now()
    uni = frozenset(universe) if universe is not None else None
    df = df.reset_index(drop=True)
    canon, slow = canonicalise(kind, df)
    ok = ~slow & check(kind, canon, now=now, universe=uni, future_skew=future_skew)
    payloads: list[bytes] = []
    if encode_payloads:
        payloads = encode(kind, canon[ok])
        sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))
        too_big = sizes > max_bytes
        if too_big.any():
            ok_idx = np.flatnonzero(ok)
            ok[ok_idx[too_big]] = False
            payloads = [p for p, big in zip(payloads, too_big, strict=True) if not big]
    return resolve_slow(
        kind,
        canon,
        ok,
        payloads,
        lambda i: row_json(_wire_row(kind, _row_dict(df, i))),
        now=now,
        universe=uni,
        max_bytes=max_bytes,
        future_skew=future_skew,
        encode_payloads=encode_payloads,
    )


def _row_dict(df: pd.DataFrame, i: int) -> dict[str, Any]:
    return {str(k): v for k, v in df.iloc[i].to_dict().items()}


def _wire_row(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    """Frames hold trade dates as midnight timestamps; the wire form is ``YYYY-MM-DD``."""
    day = row.get("trade_date")
    naive = isinstance(day, datetime) and day.tzinfo is None
    if kind == "daily_bar" and isinstance(day, datetime) and naive and day.time() == time():
        row["trade_date"] = day.date()
    return row


def resolve_slow(
    kind: Kind,
    canon: pd.DataFrame,
    ok: np.ndarray,
    payloads: list[bytes],
    original: Callable[[int], bytes],
    *,
    now: datetime,
    universe: frozenset[str] | None,
    max_bytes: int,
    future_skew: timedelta,
    encode_payloads: bool,
) -> Validated:
    """Let pydantic judge every row the vectorised path did not accept."""
    rejects: list[Reject] = []
    rescued: list[dict[str, Any]] = []
    rescued_idx: list[int] = []
    rescued_payloads: list[bytes] = []
    slow_idx = np.flatnonzero(~ok)
    for i in slow_idx.tolist():
        raw: bytes = original(i)
        try:
            model = validate_payload(
                kind, raw, now=now, universe=universe, max_bytes=max_bytes, future_skew=future_skew
            )
            row = model_row(kind, model)
        except InvalidRecordError as exc:
            rejects.append(Reject(i, exc.reason, raw, exc.detail))
            continue
        rescued.append(row)
        rescued_idx.append(i)
        if encode_payloads:
            rescued_payloads.append(model.to_json())
    accepted = canon[ok]
    if rescued:
        extra = pd.DataFrame(rescued, index=rescued_idx, columns=list(FIELDS[kind]))
        extra = canonicalise(kind, extra)[0]
        accepted = pd.concat([accepted, extra]) if len(accepted) else extra
        payloads = payloads + rescued_payloads
        order = np.argsort(accepted.index.to_numpy(), kind="stable")
        accepted = accepted.iloc[order]
        if encode_payloads:
            payloads = [payloads[j] for j in order.tolist()]
    return Validated(accepted, payloads, rejects, slow_rows=len(slow_idx))
