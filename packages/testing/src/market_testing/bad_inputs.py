"""The bad-input matrix: wire payloads of every kind of bad input, with the expected code.

One list for every layer that judges wire input (the contract, the ingest fast path, the
Spark streaming validation, the end-to-end test), so they are all held to the same cases
and cannot drift apart. Most cases spoil one thing of an otherwise valid record; the
``combo_*`` cases spoil several at once and expect the code that ranks first in
:data:`market_common.contract_spec.REASONS`; ``finding_*`` cases replay the inputs of
issue #12 (a lone ``null``, concatenated objects, sums that overflow).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from market_common.contracts import DEFAULT_MAX_MESSAGE_BYTES, SCHEMA_VERSION


@dataclass(frozen=True)
class BadInput:
    """One planted payload: a unique ``name``, the raw bytes and the expected reason code."""

    name: str
    payload: bytes
    reason: str


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), allow_nan=True).encode()


def tick_record(
    symbol: str, ts: datetime, *, price: float = 101.25, volume: int = 100
) -> dict[str, Any]:
    """A valid tick as the producer writes it (``ts`` in UTC with ``Z``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "symbol": symbol,
        "ts": ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "price": price,
        "volume": volume,
        "source": "matrix",
    }


def bar_record(symbol: str, day: date, *, base: float = 100.0) -> dict[str, Any]:
    """A valid daily bar."""
    return {
        "schema_version": SCHEMA_VERSION,
        "symbol": symbol,
        "trade_date": day.isoformat(),
        "open": base,
        "high": base + 2.0,
        "low": base - 1.0,
        "close": base + 1.0,
        "volume": 1_000,
        "source": "matrix",
    }


def _common(good: dict[str, Any], price_field: str, max_bytes: int) -> list[BadInput]:
    """Cases that apply to every record kind, derived from one valid record."""

    def without(*names: str) -> dict[str, Any]:
        return {k: v for k, v in good.items() if k not in names}

    text = _json(good)
    pad = max_bytes + 1 - len(_json({**good, "source": ""}))
    cases = [
        ("truncated", text[: len(text) // 2], "malformed_json"),
        ("array", b"[1,2,3]", "malformed_json"),
        ("empty", b"", "malformed_json"),
        ("not_utf8", text.replace(b'"matrix"', b'"\xff\xfe"'), "malformed_json"),
        ("duplicate_key", text[:-1] + b',"volume":5}', "malformed_json"),
        ("missing_price", _json(without(price_field)), "missing_field"),
        ("missing_schema_version", _json(without("schema_version")), "missing_field"),
        ("missing_source", _json(without("source")), "missing_field"),
        ("null_price", _json({**good, price_field: None}), "missing_field"),
        ("unknown_field", _json({**good, "exchange": "XNAS"}), "unknown_field"),
        ("price_as_string", _json({**good, price_field: str(good[price_field])}), "wrong_type"),
        ("price_as_bool", _json({**good, price_field: True}), "wrong_type"),
        ("volume_as_float", _json({**good, "volume": 100.0}), "wrong_type"),
        ("version_as_string", _json({**good, "schema_version": "1"}), "wrong_type"),
        ("symbol_as_number", _json({**good, "symbol": 123}), "wrong_type"),
        ("nan_price", _json({**good, price_field: float("nan")}), "non_finite"),
        ("inf_price", _json({**good, price_field: float("inf")}), "non_finite"),
        ("zero_price", _json({**good, price_field: 0.0}), "non_positive_price"),
        ("negative_volume", _json({**good, "volume": -1}), "negative_volume"),
        ("unknown_symbol", _json({**good, "symbol": "ZZZZ"}), "unknown_symbol"),
        ("invalid_symbol", _json({**good, "symbol": "aapl;drop"}), "invalid_symbol"),
        ("oversized", _json({**good, "source": "x" * pad}), "oversized"),
        ("schema_version_2", _json({**good, "schema_version": SCHEMA_VERSION + 1}),
         "unsupported_schema_version"),
        ("finding_json_null", b"null", "malformed_json"),
        ("finding_concatenated_objects", text + text, "malformed_json"),
        ("finding_volume_int64_max", _json({**good, "volume": 2**63 - 1}), "out_of_bounds"),
        ("finding_price_1e308", _json({**good, price_field: 1e308}), "out_of_bounds"),
        ("volume_beyond_int64", _json({**good, "volume": 2**64}), "wrong_type"),
        ("byte_order_mark", b"\xef\xbb\xbf" + text, "malformed_json"),
        ("leading_whitespace_array", b" [" + text + b"]", "malformed_json"),
        ("combo_version_2_and_missing_price",
         _json({**without(price_field), "schema_version": SCHEMA_VERSION + 1}),
         "unsupported_schema_version"),
        ("combo_missing_price_and_unknown_field",
         _json({**without(price_field), "exchange": "XNAS"}), "missing_field"),
        ("combo_wrong_type_and_invalid_symbol",
         _json({**good, "volume": "7", "symbol": "bad sym"}), "wrong_type"),
        ("combo_invalid_symbol_and_nan_price",
         _json({**good, "symbol": "bad sym", price_field: float("nan")}), "invalid_symbol"),
        ("combo_negative_volume_and_zero_price",
         _json({**good, "volume": -3, price_field: 0.0}), "non_positive_price"),
        ("combo_out_of_bounds_and_unknown_symbol",
         _json({**good, "symbol": "ZZZZ", "volume": 10**13}), "unknown_symbol"),
    ]  # fmt: skip
    return [BadInput(name, payload, reason) for name, payload, reason in cases]


def tick_matrix(
    symbol: str, ts: datetime, *, now: datetime, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> list[BadInput]:
    """Bad ticks around a valid tick of ``symbol`` at ``ts`` (``ZZZZ`` must be unknown)."""
    good = tick_record(symbol, ts)
    future = (now + timedelta(days=2)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    extra = [
        ("negative_inf_price", _json({**good, "price": float("-inf")}), "non_finite"),
        ("negative_price", _json({**good, "price": -1.5}), "non_positive_price"),
        ("ts_not_iso", _json({**good, "ts": "yesterday"}), "invalid_timestamp"),
        ("ts_impossible", _json({**good, "ts": "2024-02-30T10:00:00Z"}), "invalid_timestamp"),
        ("ts_as_number", _json({**good, "ts": 1717425000}), "wrong_type"),
        ("future_ts", _json({**good, "ts": future}), "future_timestamp"),
    ]
    return _common(good, "price", max_bytes) + [BadInput(n, p, r) for n, p, r in extra]


def bar_matrix(
    symbol: str, day: date, *, now: datetime, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> list[BadInput]:
    """Bad daily bars around a valid bar of ``symbol`` on ``day`` (``ZZZZ`` must be unknown)."""
    good = bar_record(symbol, day)
    future = (now + timedelta(days=3)).date().isoformat()
    extra = [
        ("negative_low", _json({**good, "low": -1.0}), "non_positive_price"),
        ("high_below_low", _json({**good, "high": good["low"] - 0.5}), "high_below_low"),
        ("close_above_high", _json({**good, "close": good["high"] + 1}), "price_outside_range"),
        ("date_impossible", _json({**good, "trade_date": "2024-02-30"}), "invalid_timestamp"),
        ("date_as_timestamp", _json({**good, "trade_date": f"{day}T00:00:00"}), "invalid_timestamp"),
        ("future_date", _json({**good, "trade_date": future}), "future_timestamp"),
        ("combo_high_below_low_and_future",
         _json({**good, "high": good["low"] - 0.5, "trade_date": future}), "high_below_low"),
        ("combo_huge_volume_and_close_above_high",
         _json({**good, "volume": 10**13, "close": good["high"] + 1}), "out_of_bounds"),
    ]  # fmt: skip
    return _common(good, "close", max_bytes) + [BadInput(n, p, r) for n, p, r in extra]
