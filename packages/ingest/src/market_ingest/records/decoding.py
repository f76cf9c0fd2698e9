"""Consumer side: Kafka values → canonical accepted rows plus rejects, one verdict per value."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from market_common import contract_spec
from market_common.contracts import DEFAULT_FUTURE_SKEW
from market_common.runtime import utc_now
from market_ingest.records.canonical import canonicalise
from market_ingest.records.common import DATE_RE, FIELDS, MAX_RECORD_BYTES, Kind, Validated
from market_ingest.records.frames import resolve_slow
from market_ingest.records.rules import check

_BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark
ARROW_WIRE_SCHEMA: dict[str, pa.Schema] = {
    kind: pa.schema(
        [
            (f.name, pa.int64() if f.wire_type == "int" else
             pa.float64() if f.wire_type == "number" else pa.string())
            for f in fields
        ]
    )
    for kind, fields in contract_spec.FIELDS.items()
}  # fmt: skip


def _arrow_parse(kind: Kind, values: Sequence[bytes]) -> pa.Table | None:
    """Arrow's newline-delimited reader over ``values``, or ``None`` when it cannot be
    trusted to give exactly one row per value (the caller then bisects).

    Precondition (see :func:`decode_values`): every value starts with ``{``. Then each line
    yields at least one row, so ``num_rows == len(values)`` proves each yielded exactly one:
    a value holding two concatenated objects cannot hide behind an empty neighbour.
    """
    joined = b"\n".join(values)
    # A value with its own line break would be split by the reader.
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
        pc.match_substring_regex(col, DATE_RE),
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
    n = len(values)
    # Only values that are small and start with "{" reach arrow (see _arrow_parse); the
    # others (oversized, empty, null, arrays, numbers, leading whitespace or BOM, ...) are
    # parsed as an empty object: all-null, hence slow, hence judged by pydantic on their
    # original bytes. Arrow is never shown a top-level non-object (a leading null crashes it).
    framed = np.fromiter(
        (len(v) <= max_bytes and v[:1] == b"{" for v in values), dtype=bool, count=n
    )
    to_parse = (
        values
        if framed.all()
        else [v if ok else b"{}" for v, ok in zip(values, framed, strict=True)]
    )
    parsed, parse_slow = _parse_frame(kind, to_parse)
    canon, slow = canonicalise(kind, parsed.reset_index(drop=True))
    ok = ~(slow | parse_slow | ~framed) & check(
        kind, canon, now=now, universe=uni, future_skew=future_skew
    )
    return resolve_slow(
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
