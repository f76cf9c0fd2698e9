from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from market_common.contracts import (
    REASONS,
    SCHEMA_VERSION,
    ContractPolicy,
    DailyBar,
    DeadLetter,
    InvalidRecordError,
    Tick,
    validate_payload,
)
from market_common.settings import load_settings
from market_testing.bad_inputs import bar_matrix, bar_record, tick_matrix, tick_record

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
        "source": "synthetic",
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
    ("kind", "payload", "reason"),
    [
        ("daily_bar", {k: v for k, v in bar().items() if k != "close"}, "missing_field"),
        ("daily_bar", bar(volume="lots"), "wrong_type"),
        ("daily_bar", bar(open=0.0, low=0.0), "non_positive_price"),
        ("daily_bar", bar(close=-5.0), "non_positive_price"),
        ("daily_bar", bar(high=188.0), "high_below_low"),
        ("daily_bar", bar(close=200.0), "price_outside_range"),
        ("daily_bar", bar(volume=-1), "negative_volume"),
        ("daily_bar", bar(trade_date="2024-06-10"), "future_timestamp"),
        ("daily_bar", bar(symbol="ZZZZ"), "unknown_symbol"),
        ("daily_bar", bar(symbol="aapl;drop"), "invalid_symbol"),
        ("daily_bar", bar(schema_version=2), "unsupported_schema_version"),
        ("daily_bar", bar(extra_field=1), "unknown_field"),
        ("tick", tick(price=float("nan")), "non_finite"),
        ("tick", tick(price=float("inf")), "non_finite"),
        ("tick", tick(ts=(NOW + timedelta(hours=1)).isoformat()), "future_timestamp"),
        ("tick", tick(price=0), "non_positive_price"),
        # Lax pydantic would coerce or default all of these.
        ("tick", tick(price="410.5"), "wrong_type"),
        ("tick", tick(price=True), "wrong_type"),
        ("tick", tick(volume=200.0), "wrong_type"),
        ("tick", tick(schema_version=True), "wrong_type"),
        ("tick", {k: v for k, v in tick().items() if k != "schema_version"}, "missing_field"),
        ("tick", {k: v for k, v in tick().items() if k != "source"}, "missing_field"),
        ("tick", tick(volume=None), "missing_field"),
        ("tick", tick(ts=1717425000), "wrong_type"),
        ("tick", tick(ts="2024-06-03 14:30:00"), "invalid_timestamp"),
        ("tick", tick(volume=2**63), "wrong_type"),
    ],
)
def test_contract_rejects_with_a_stable_code(
    kind: str, payload: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidRecordError) as info:
        validate_payload(kind, json.dumps(payload), now=NOW, universe=UNIVERSE)  # type: ignore[arg-type]
    assert info.value.reason == reason, info.value
    assert reason in REASONS


def test_first_failing_code_wins_in_documented_order() -> None:
    """A v2 record may have other fields; its version is what the consumer must know."""
    v2 = {k: v for k, v in tick(schema_version=2, exchange="X").items() if k != "source"}
    with pytest.raises(InvalidRecordError) as info:
        validate_payload("tick", json.dumps(v2), now=NOW)
    assert info.value.reason == "unsupported_schema_version"
    both = tick(symbol="ZZZZ", price=float("nan"))
    with pytest.raises(InvalidRecordError) as info:
        validate_payload("tick", json.dumps(both), now=NOW, universe=UNIVERSE)
    assert info.value.reason == "unknown_symbol", "unknown_symbol precedes non_finite"


def test_future_skew_is_configurable() -> None:
    skewed = tick(ts=(NOW + timedelta(minutes=2)).isoformat())
    assert validate_payload("tick", skewed, now=NOW).symbol == "MSFT"
    with pytest.raises(InvalidRecordError, match="future_timestamp"):
        validate_payload("tick", skewed, now=NOW, future_skew=timedelta(seconds=30))


def test_malformed_and_oversized_payloads_have_reasons() -> None:
    for raw in (b"{not json", b"[1, 2]", b"", b'{"symbol":"A","symbol":"B"}', b"\xff"):
        with pytest.raises(InvalidRecordError, match="malformed_json"):
            validate_payload("tick", raw, now=NOW)
    with pytest.raises(InvalidRecordError, match="oversized"):
        validate_payload("tick", json.dumps(tick(source="x" * 2000)), now=NOW, max_bytes=1024)


@pytest.mark.parametrize("kind", ["tick", "daily_bar"])
def test_bad_input_matrix_gives_its_planted_codes(kind: str) -> None:
    """Every case of the shared matrix is rejected with its code; the base record passes."""
    if kind == "tick":
        cases = tick_matrix("MSFT", datetime(2024, 6, 3, 14, 30, tzinfo=UTC), now=NOW)
        good: dict[str, object] = tick_record("MSFT", datetime(2024, 6, 3, 14, 30, tzinfo=UTC))
    else:
        cases = bar_matrix("AAPL", date(2024, 5, 31), now=NOW)
        good = bar_record("AAPL", date(2024, 5, 31))
    validate_payload(kind, json.dumps(good), now=NOW, universe=UNIVERSE, max_bytes=2048)  # type: ignore[arg-type]
    assert len({c.name for c in cases}) == len(cases)
    got = {}
    for case in cases:
        with pytest.raises(InvalidRecordError) as info:
            validate_payload(kind, case.payload, now=NOW, universe=UNIVERSE, max_bytes=2048)  # type: ignore[arg-type]
        got[case.name] = info.value.reason
    assert got == {c.name: c.reason for c in cases}


def test_policy_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_CONTRACTS__UNIVERSE", "aapl, MSFT")
    monkeypatch.setenv("MARKET_CONTRACTS__MAX_FUTURE_SKEW_S", "60")
    monkeypatch.setenv("MARKET_CONTRACTS__MAX_MESSAGE_BYTES", "4096")
    policy = ContractPolicy.from_settings(load_settings())
    assert policy == ContractPolicy(4096, timedelta(seconds=60), frozenset({"AAPL", "MSFT"}))
    monkeypatch.delenv("MARKET_CONTRACTS__UNIVERSE")
    assert ContractPolicy.from_settings(load_settings()).universe is None, "unset: any ticker"


def test_dead_letter_keeps_original_bytes() -> None:
    raw = b'{"symbol": "AAPL", "price": "\xff"}'
    dl = DeadLetter.from_payload(
        reason="malformed_json",
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
