"""Vectorised contract validation and JSON (de)serialisation of record frames.

Why not ``validate_payload`` per record: building one pydantic model per row costs
~20 µs, which would dominate a million-record backfill. Instead the rules of
:mod:`market_common.contracts` are applied column-wise with numpy, and pydantic is used
only where it has to speak:

1. :func:`canonicalise` brings a frame to canonical dtypes and marks every row whose
   representation the vectorised checker cannot judge on its own (missing/extra columns,
   object columns holding non-strings, ints stored as non-integral floats, non-ISO
   timestamps, ...). Those rows take the *slow path*.
2. :func:`check` applies the contract rules to the canonical rows (schema_version, symbol
   syntax + universe, finite positive prices, non-negative volume, OHLC consistency,
   future-timestamp tolerance) and the serialised size limit.
3. Every row that is on the slow path or failed a check is validated by
   :func:`market_common.contracts.validate_payload` on its JSON bytes: pydantic is the
   authority, produces the DLQ reason and, where it accepts (e.g. a defaulted ``source``),
   the canonical values that are sent.

So the vectorised path can only *accept* a row, never reject one: a row it fails is
re-judged by pydantic. ``tests/test_records.py`` checks on randomised frames that the
vectorised verdict equals pydantic's for every canonical row, and that the bytes sent for
accepted rows parse back (through ``validate_payload``) to the same values.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from market_common.contracts import (
    DATE_PATTERN,
    DEFAULT_FUTURE_SKEW,
    DEFAULT_MAX_MESSAGE_BYTES,
    SCHEMA_VERSION,
    DeadLetter,
    InvalidRecordError,
    validate_payload,
)
from market_common.identifiers import SYMBOL_RE
from market_common.runtime import utc_now

Kind = Literal["daily_bar", "tick"]

# Wire fields per kind, in the order they are serialised.
FIELDS: dict[str, tuple[str, ...]] = {
    "daily_bar": (
        "schema_version", "symbol", "trade_date", "open", "high", "low", "close", "volume", "source",
    ),
    "tick": ("schema_version", "symbol", "ts", "price", "volume", "source"),
}  # fmt: skip
FLOAT_FIELDS: dict[str, tuple[str, ...]] = {
    "daily_bar": ("open", "high", "low", "close"),
    "tick": ("price",),
}
INT_FIELDS = ("schema_version", "volume")
STR_FIELDS = ("symbol", "source")
TIME_FIELD: dict[str, str] = {"daily_bar": "trade_date", "tick": "ts"}

# Largest accepted JSON value by default (settings: contracts.max_message_bytes).
MAX_RECORD_BYTES = DEFAULT_MAX_MESSAGE_BYTES
DLQ_ORIGINAL_LIMIT = 64 * 1024

# The string forms the vectorised path parses itself; anything else is left to pydantic.
_DATE_RE = rf"^{DATE_PATTERN}$"
_TS_RE = rf"^{DATE_PATTERN}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(?:\.[0-9]{{1,6}})?(?:Z|[+-]00:00)$"

_BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark
# The contract's wire forms start in 1700; earlier values in frames need pydantic's verdict.
_EARLIEST = pd.Timestamp("1700-01-01")

ARROW_WIRE_SCHEMA: dict[str, pa.Schema] = {
    "daily_bar": pa.schema(
        [("schema_version", pa.int64()), ("symbol", pa.string()), ("trade_date", pa.string())]
        + [(f, pa.float64()) for f in FLOAT_FIELDS["daily_bar"]]
        + [("volume", pa.int64()), ("source", pa.string())]
    ),
    "tick": pa.schema(
        [
            ("schema_version", pa.int64()),
            ("symbol", pa.string()),
            ("ts", pa.string()),
            ("price", pa.float64()),
            ("volume", pa.int64()),
            ("source", pa.string()),
        ]
    ),
}


@dataclass(frozen=True)
class Reject:
    """One record that failed its contract: position in the input, reason code, original
    payload, and the contract's human-readable detail."""

    index: int
    reason: str
    payload: bytes
    detail: str = ""


@dataclass
class Validated:
    """Outcome of validating a frame: canonical accepted rows plus rejects.

    ``frame`` holds the accepted rows in canonical dtypes (index = positions in the input);
    ``payloads`` their JSON bytes (producer side only, else empty).
    """

    frame: pd.DataFrame
    payloads: list[bytes] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    slow_rows: int = 0


# --------------------------------------------------------------------------- canonical form


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
            good = t.str.fullmatch(_DATE_RE)
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
            good = t.str.fullmatch(_TS_RE).fillna(False).astype(bool)
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


# --------------------------------------------------------------------------- the rules


def _symbols_ok(symbols: pd.Series, universe: frozenset[str] | None) -> np.ndarray:
    codes, uniques = pd.factorize(symbols, use_na_sentinel=False)
    good = np.fromiter(
        (
            isinstance(u, str)
            and SYMBOL_RE.fullmatch(u) is not None
            and (universe is None or u in universe)
            for u in uniques
        ),
        dtype=bool,
        count=len(uniques),
    )
    return good[codes] if len(uniques) else np.zeros(0, dtype=bool)


def check(
    kind: Kind,
    canon: pd.DataFrame,
    *,
    now: datetime,
    universe: frozenset[str] | None,
    future_skew: timedelta = DEFAULT_FUTURE_SKEW,
) -> np.ndarray:
    """Vectorised contract rules on a canonical frame; ``True`` = the row passes."""
    ok = canon["schema_version"].to_numpy() == SCHEMA_VERSION
    ok &= _symbols_ok(canon["symbol"], universe)
    prices = {f: canon[f].to_numpy(dtype="float64") for f in FLOAT_FIELDS[kind]}
    for v in prices.values():
        ok &= np.isfinite(v) & (v > 0)
    ok &= canon["volume"].to_numpy() >= 0
    if kind == "daily_bar":
        limit = np.datetime64((now + future_skew).date(), "ns")
        ok &= canon["trade_date"].to_numpy() <= limit
        ok &= canon["trade_date"].to_numpy() >= _EARLIEST.to_datetime64()
        o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
        ok &= (h >= lo) & (lo <= o) & (o <= h) & (lo <= c) & (c <= h)
    else:
        limit_ts = pd.Timestamp(now + future_skew).tz_convert("UTC")
        ok &= (canon["ts"] <= limit_ts).to_numpy()
        ok &= (canon["ts"] >= _EARLIEST.tz_localize("UTC")).to_numpy()
    return ok


# --------------------------------------------------------------------------- JSON encoding


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


# --------------------------------------------------------------------------- producer side


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
    return _resolve_slow(
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


def _resolve_slow(
    kind: Kind,
    canon: pd.DataFrame,
    ok: np.ndarray,
    payloads: list[bytes],
    original: Any,
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


# --------------------------------------------------------------------------- consumer side


def _arrow_parse(kind: Kind, values: Sequence[bytes]) -> pa.Table | None:
    joined = b"\n".join(values)
    # A value with its own line break would shift rows; blank ones vanish (count check).
    if joined.count(b"\n") != len(values) - 1 or b"\r" in joined:
        return None
    if _BOM in joined:  # arrow skips byte-order marks; the contract calls them malformed
        return None
    try:
        table = pa_json.read_json(
            io.BytesIO(joined),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 24),
            parse_options=pa_json.ParseOptions(
                explicit_schema=ARROW_WIRE_SCHEMA[kind], unexpected_field_behavior="error"
            ),
        )
        # The JSON reader lets invalid UTF-8 inside strings through (to_pandas would fail).
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(values):
        return None
    return _arrow_dates(table) if kind == "daily_bar" else table


_DATE_MIN, _DATE_MAX = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")


def _arrow_dates(table: pa.Table) -> pa.Table:
    """Parse canonical ``YYYY-MM-DD`` in arrow; anything else (or beyond the ns range)
    becomes null, i.e. goes to the slow path where pydantic judges the original."""
    col = table.column("trade_date")
    parsed = pc.strptime(col, format="%Y-%m-%d", unit="s", error_is_null=True)
    good = pc.and_(
        pc.match_substring_regex(col, _DATE_RE),
        pc.and_(
            pc.greater_equal(parsed, pa.scalar(_DATE_MIN.to_pydatetime(), pa.timestamp("s"))),
            pc.less_equal(parsed, pa.scalar(_DATE_MAX.to_pydatetime(), pa.timestamp("s"))),
        ),
    )
    # strptime rolls impossible dates over (2024-02-30 → 03-01): require a round trip.
    good = pc.and_(good, pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), col))
    parsed = pc.if_else(good, parsed, pa.scalar(None, pa.timestamp("s")))
    return table.set_column(
        table.schema.get_field_index("trade_date"), "trade_date", parsed.cast(pa.timestamp("ns"))
    )


def _parse_frame(kind: Kind, values: Sequence[bytes]) -> tuple[pd.DataFrame, np.ndarray]:
    """Parse JSON values column-wise; rows arrow cannot parse come back marked slow.

    A batch arrow rejects is bisected so one bad message does not push thousands of good
    neighbours onto the slow path.
    """
    n = len(values)
    table = _arrow_parse(kind, values) if n else None
    if table is not None:
        frame = table.to_pandas()
        # JSON null means "absent" to arrow; let pydantic report it (default or required).
        slow = np.zeros(n, dtype=bool)
        for name in frame.columns:
            slow |= frame[name].isna().to_numpy()
        return frame, slow
    if n <= 32:
        frame = pd.DataFrame(index=range(n), columns=list(FIELDS[kind]))
        return frame, np.ones(n, dtype=bool)
    mid = n // 2
    left, lslow = _parse_frame(kind, values[:mid])
    right, rslow = _parse_frame(kind, values[mid:])
    right.index = right.index + mid
    with warnings.catch_warnings():
        # All-null fallback halves are expected here; their dtype is settled later.
        warnings.simplefilter("ignore", FutureWarning)
        both = pd.concat([left, right])
    return both, np.concatenate([lslow, rslow])


def decode_values(
    kind: Kind,
    values: Sequence[bytes],
    *,
    now: datetime | None = None,
    universe: Iterable[str] | None = None,
    max_bytes: int = MAX_RECORD_BYTES,
    future_skew: timedelta = DEFAULT_FUTURE_SKEW,
) -> Validated:
    """Parse and validate Kafka values; same verdicts as ``validate_payload`` per value.

    ``frame.index`` holds positions in ``values``; rejects carry the untouched bytes.
    """
    now = now or utc_now()
    uni = frozenset(universe) if universe is not None else None
    small = np.fromiter(map(len, values), dtype=np.int64, count=len(values)) <= max_bytes
    # Oversized values are parsed as an empty object: all-null, hence slow, hence judged
    # (and named "oversized") by pydantic on the original bytes.
    to_parse = (
        values
        if small.all()
        else [v if fits else b"{}" for v, fits in zip(values, small, strict=True)]
    )
    parsed, parse_slow = _parse_frame(kind, to_parse)
    canon, slow = canonicalise(kind, parsed.reset_index(drop=True))
    ok = ~(slow | parse_slow | ~small) & check(
        kind, canon, now=now, universe=uni, future_skew=future_skew
    )
    return _resolve_slow(
        kind,
        canon,
        ok,
        [],
        lambda i: values[i],
        now=now,
        universe=uni,
        max_bytes=max_bytes,
        future_skew=future_skew,
        encode_payloads=False,
    )


# --------------------------------------------------------------------------- DLQ


def dead_letter_json(
    reject: Reject,
    *,
    kind: Kind,
    stage: str,
    source: str,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> bytes:
    """The DLQ value for a reject (``DeadLetter`` JSON: reason code, detail, original).

    Originals above ``DLQ_ORIGINAL_LIMIT`` bytes are truncated (and the detail says so)
    so one runaway message cannot exceed the DLQ's message size limit.
    """
    payload, detail = reject.payload, reject.detail
    if len(payload) > DLQ_ORIGINAL_LIMIT:
        payload = payload[:DLQ_ORIGINAL_LIMIT]
        detail = f"{detail} [original truncated to {DLQ_ORIGINAL_LIMIT} bytes]"
    return (
        DeadLetter.from_payload(
            reason=reject.reason,
            detail=detail or None,
            stage=stage,
            source=source,
            payload=payload,
            kind=kind,
            topic=topic,
            partition=partition,
            offset=offset,
        )
        .model_dump_json()
        .encode()
    )


__all__ = [
    "FIELDS",
    "MAX_RECORD_BYTES",
    "Kind",
    "Reject",
    "Validated",
    "canonicalise",
    "check",
    "dead_letter_json",
    "decode_values",
    "empty_frame",
    "encode",
    "row_json",
    "validate_frame",
]
