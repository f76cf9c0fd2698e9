from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from market_common.contracts import (
    SCHEMA_VERSION,
    DailyBar,
    DeadLetter,
    InvalidRecordError,
    Tick,
    validate_payload,
)

NOW = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
UNIVERSE = {"AAPL", "MSFT"}


def bar(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "symbol": "AAPL",
        "trade_date": "2024-05-31",
        "open": 190.0,
        "high": 192.5,
        "low": 189.0,
        "close": 191.0,
        "volume": 1_000_000,
        "source": "synthetic",
    }
    base.update(changes)
    return base


def tick(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "symbol": "MSFT",
        "ts": "2024-06-03T14:30:00Z",
        "price": 410.5,
        "volume": 200,
    }
    base.update(changes)
    return base


def test_valid_bar_round_trips_through_json() -> None:
    record = validate_payload("daily_bar", json.dumps(bar()), now=NOW, universe=UNIVERSE)
    assert isinstance(record, DailyBar)
    assert record.trade_date == date(2024, 5, 31)
    again = validate_payload("daily_bar", record.to_json(), now=NOW, universe=UNIVERSE)
    assert again == record


def test_tick_timestamp_is_normalised_to_utc() -> None:
    record = validate_payload("tick", tick(ts="2024-06-03T10:30:00-04:00"), now=NOW)
    assert isinstance(record, Tick)
    assert record.ts == datetime(2024, 6, 3, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "payload", "reason_fragment"),
    [
        ("daily_bar", {k: v for k, v in bar().items() if k != "close"}, "close: Field required"),
        ("daily_bar", bar(volume="lots"), "volume"),
        ("daily_bar", bar(open=0.0, low=0.0), "greater than 0"),
        ("daily_bar", bar(close=-5.0), "close"),
        ("daily_bar", bar(high=188.0), "high 188.0 is below low 189.0"),
        ("daily_bar", bar(close=200.0), "close 200.0 is outside"),
        ("daily_bar", bar(volume=-1), "volume"),
        ("daily_bar", bar(trade_date="2024-06-10"), "in the future"),
        ("daily_bar", bar(symbol="ZZZZ"), "unknown symbol"),
        ("daily_bar", bar(symbol="aapl;drop"), "malformed symbol"),
        ("daily_bar", bar(schema_version=2), "unsupported schema_version 2"),
        ("daily_bar", bar(extra_field=1), "extra_field"),
        ("tick", tick(price=float("nan")), "non-finite"),
        ("tick", tick(price=float("inf")), "non-finite"),
        ("tick", tick(ts=(NOW + timedelta(hours=1)).isoformat()), "in the future"),
        ("tick", tick(price=0), "greater than 0"),
    ],
)
def test_contract_rejects_impossible_values(
    kind: str, payload: dict[str, object], reason_fragment: str
) -> None:
    with pytest.raises(InvalidRecordError) as info:
        validate_payload(kind, json.dumps(payload), now=NOW, universe=UNIVERSE)  # type: ignore[arg-type]
    assert reason_fragment in info.value.reason, info.value.reason


def test_future_tolerance_allows_small_clock_skew() -> None:
    skewed = tick(ts=(NOW + timedelta(minutes=2)).isoformat())
    assert validate_payload("tick", skewed, now=NOW).symbol == "MSFT"


def test_malformed_and_oversized_payloads_have_reasons() -> None:
    with pytest.raises(InvalidRecordError, match="malformed JSON"):
        validate_payload("tick", b"{not json", now=NOW)
    with pytest.raises(InvalidRecordError, match="not an object"):
        validate_payload("tick", b"[1, 2]", now=NOW)
    with pytest.raises(InvalidRecordError, match="oversized message"):
        validate_payload("tick", json.dumps(tick(source="x" * 2000)), now=NOW, max_bytes=1024)


def test_dead_letter_keeps_original_bytes() -> None:
    raw = b'{"symbol": "AAPL", "price": "\xff"}'
    dl = DeadLetter.from_payload(
        reason="malformed JSON",
        stage="consumer",
        source="stock-market-realtime",
        payload=raw,
        topic="stock-market-realtime",
        partition=1,
        offset=42,
    )
    decoded = json.loads(dl.model_dump_json())
    assert decoded["original"] == raw.decode("utf-8", errors="backslashreplace")
    assert (decoded["partition"], decoded["offset"], decoded["stage"]) == (1, 42, "consumer")
