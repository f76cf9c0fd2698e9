"""The producer's validation path against the shared contract (pydantic is the oracle)."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from market_common.contracts import SCHEMA_VERSION, InvalidRecordError, validate_payload
from market_common.settings import load_settings
from market_ingest.producer import RecordProducer
from market_ingest.records import (
    MAX_RECORD_BYTES,
    decode_values,
    encode,
    validate_frame,
)
from market_testing.bad_inputs import bar_matrix, bar_record, tick_matrix, tick_record

UNIVERSE = ("AAPL", "MSFT", "BRK.B")


def _bar(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "symbol": "AAPL",
        "trade_date": pd.Timestamp("2024-05-31"),
        "open": 190.5,
        "high": 192.25,
        "low": 189.0,
        "close": 191.75,
        "volume": 1_234_567,
        "source": "test",
    }
    row.update(overrides)
    return row


def _tick(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "symbol": "MSFT",
        "ts": pd.Timestamp("2024-06-03T14:30:01.250Z"),
        "price": 415.5,
        "volume": 300,
        "source": "test",
    }
    row.update(overrides)
    return row


def _oracle(kind: str, row: dict[str, Any], now: datetime) -> str | None:
    """pydantic's verdict on the row's JSON: None if valid, else the reason."""

    raw = json.dumps(_wire(row), default=lambda v: v.isoformat()).encode()
    try:
        validate_payload(kind, raw, now=now, universe=UNIVERSE, max_bytes=MAX_RECORD_BYTES)  # type: ignore[arg-type]
    except InvalidRecordError as exc:
        return exc.reason
    return None


def _wire(row: dict[str, Any]) -> dict[str, Any]:
    """A frame row as the wire carries it (trade dates as ``YYYY-MM-DD``)."""
    day = row.get("trade_date")
    return {**row, "trade_date": day.date()} if isinstance(day, pd.Timestamp) else row


DAILY_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "wrong type": ({"open": "one hundred"}, "wrong_type"),
    "zero price": ({"low": 0.0}, "non_positive_price"),
    "negative price": ({"close": -1.0, "low": -2.0}, "non_positive_price"),
    "high below low": ({"high": 180.0}, "high_below_low"),
    "negative volume": ({"volume": -5}, "negative_volume"),
    "NaN": ({"open": float("nan")}, "non_finite"),
    "inf": ({"high": float("inf")}, "non_finite"),
    "future date": ({"trade_date": pd.Timestamp("2024-06-05")}, "future_timestamp"),
    "unknown symbol": ({"symbol": "ZZZZ"}, "unknown_symbol"),
    "malformed symbol": ({"symbol": "aapl!"}, "invalid_symbol"),
    "wrong schema_version": ({"schema_version": SCHEMA_VERSION + 1}, "unsupported_schema_version"),
    "oversized": ({"source": "x" * (MAX_RECORD_BYTES + 1)}, "oversized"),
    "missing value": ({"source": None}, "missing_field"),
}


def _producer(rec: Any, kind: str, now: datetime) -> RecordProducer:
    return RecordProducer(
        load_settings(),
        kind,  # type: ignore[arg-type]
        source_name="test",
        topic="t-records",
        universe=UNIVERSE,
        producer=rec,
        now=lambda: now,
        create_topics=False,
    )


@pytest.mark.parametrize("case", sorted(DAILY_CASES))
def test_daily_matrix_through_producer(case: str, recording_producer: Any, now: datetime) -> None:
    overrides, keyword = DAILY_CASES[case]
    rows = [_bar(symbol="MSFT"), _bar(**overrides), _bar(symbol="BRK.B")]
    out = _producer(recording_producer, "daily_bar", now)
    out.send_frame(pd.DataFrame(rows))
    result = out.close()

    data = [m for m in recording_producer.sent if m["topic"] == "t-records"]
    dlq = [m for m in recording_producer.sent if m["topic"] == load_settings().kafka.dlq_topic]
    assert [json.loads(m["value"])["symbol"] for m in data] == [
        "MSFT",
        "BRK.B",
    ], "valid neighbours are sent"
    assert len(dlq) == 1 and result.dead_lettered == 1, "exactly the bad row is dead-lettered"
    letter = json.loads(dlq[0]["value"])
    expected_reason = _oracle("daily_bar", rows[1], now)
    assert expected_reason is not None, "the oracle must reject the case too"
    assert letter["reason"] == keyword == expected_reason, "reason is the contract's own code"
    assert letter["stage"] == "producer" and letter["source"] == "test"
    assert letter["topic"] == "t-records"


def test_missing_column_rejects_every_row(recording_producer: Any, now: datetime) -> None:
    frame = pd.DataFrame([_bar(), _bar(symbol="MSFT")]).drop(columns=["close"])
    out = _producer(recording_producer, "daily_bar", now)
    out.send_frame(frame)
    result = out.close()
    reasons = [json.loads(m["value"])["reason"] for m in recording_producer.sent]
    assert result.sent == 0 and len(reasons) == 2
    assert reasons == ["missing_field"] * 2, reasons


TICK_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "future ts": ({"ts": pd.Timestamp("2024-06-03T21:10:00Z")}, "future_timestamp"),
    "NaN price": ({"price": float("nan")}, "non_finite"),
    "negative volume": ({"volume": -1}, "negative_volume"),
    "zero price": ({"price": 0.0}, "non_positive_price"),
    "unknown symbol": ({"symbol": "NOPE"}, "unknown_symbol"),
    "wrong schema_version": ({"schema_version": 0}, "unsupported_schema_version"),
}


@pytest.mark.parametrize("case", sorted(TICK_CASES))
def test_tick_matrix_through_producer(case: str, recording_producer: Any, now: datetime) -> None:
    overrides, keyword = TICK_CASES[case]
    rows = [_tick(), _tick(**overrides)]
    out = _producer(recording_producer, "tick", now)
    out.send_frame(pd.DataFrame(rows))
    result = out.close()
    assert result.sent == 1 and result.dead_lettered == 1
    letter = json.loads(recording_producer.sent[-1]["value"])
    assert letter["reason"] == keyword == _oracle("tick", rows[1], now)


def test_delivery_failures_are_counted(recording_producer_cls: Any, now: datetime) -> None:
    rec = recording_producer_cls(fail_every=4)
    out = _producer(rec, "daily_bar", now)
    out.send_frame(pd.DataFrame([_bar() for _ in range(10)]))
    result = out.close()
    assert result.sent == 10 and result.failed == 10 // 4
    assert result.acked == 10 - 10 // 4 and not result.ok


def test_key_is_symbol_and_partition_is_stable(recording_producer: Any, now: datetime) -> None:
    from kafka.partitioner.default import murmur2

    out = _producer(recording_producer, "daily_bar", now)
    out.send_frame(pd.DataFrame([_bar(symbol=s) for s in UNIVERSE * 3]))
    out.close()
    for msg in recording_producer.sent:
        sym = json.loads(msg["value"])["symbol"]
        assert msg["key"] == sym.encode()
        assert msg["partition"] == (murmur2(sym.encode()) & 0x7FFFFFFF) % 3


# --------------------------------------------------------------------------- equivalence

CORRUPTIONS = [
    lambda r: r,
    lambda r: {**r, "open": -r["open"]},
    lambda r: {**r, "low": 0.0},
    lambda r: {**r, "high": r["low"] - 0.5},
    lambda r: {**r, "open": r["high"] + 0.01},
    lambda r: {**r, "close": r["low"] - 0.01},
    lambda r: {**r, "volume": -1},
    lambda r: {**r, "volume": 0},
    lambda r: {**r, "close": float("nan")},
    lambda r: {**r, "high": float("-inf")},
    lambda r: {**r, "trade_date": pd.Timestamp("2024-06-04")},
    lambda r: {**r, "trade_date": pd.Timestamp("2024-06-03")},
    lambda r: {**r, "symbol": "TSLA"},
    lambda r: {**r, "symbol": "BRK.B"},
    lambda r: {**r, "symbol": "aapl"},
    lambda r: {**r, "schema_version": 2},
    lambda r: {**r, "source": "y" * 4000},
    lambda r: {**r, "open": 5e-324, "low": 5e-324},
]


def _random_rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        lo = rng.uniform(1, 500)
        hi = lo * rng.uniform(1.0, 1.1)
        base = _bar(
            symbol=rng.choice(["AAPL", "MSFT"]),
            trade_date=pd.Timestamp(date(2024, 6, 3) - timedelta(days=rng.randint(0, 3000))),
            low=lo,
            high=hi,
            open=rng.uniform(lo, hi),
            close=rng.uniform(lo, hi),
            volume=rng.randint(0, 10**9),
        )
        rows.append(rng.choice(CORRUPTIONS)(base))
    return rows


def test_vectorised_verdicts_equal_pydantic(now: datetime) -> None:
    rows = _random_rows(1500, seed=7)
    checked = validate_frame("daily_bar", pd.DataFrame(rows), now=now, universe=UNIVERSE)
    expected_bad = {i for i, r in enumerate(rows) if _oracle("daily_bar", r, now) is not None}
    assert {r.index for r in checked.rejects} == expected_bad
    assert set(checked.frame.index) == set(range(len(rows))) - expected_bad
    assert checked.slow_rows == len(expected_bad), "pydantic ran only on failing rows"
    assert 0 < len(expected_bad) < len(rows)


def test_encoded_payloads_round_trip(now: datetime) -> None:
    rows = [r for r in _random_rows(300, seed=3) if _oracle("daily_bar", r, now) is None]
    checked = validate_frame("daily_bar", pd.DataFrame(rows), now=now, universe=UNIVERSE)
    assert len(checked.payloads) == len(rows)
    for row, payload in zip(rows, checked.payloads, strict=True):
        model = validate_payload("daily_bar", payload, now=now, universe=UNIVERSE)
        assert model.model_dump() == _wire(row)


def _wire_variants(rows: list[dict[str, Any]]) -> list[bytes]:
    out: list[bytes] = []
    for row in rows:
        text = json.dumps(_wire(row), default=lambda v: v.isoformat())
        out.append(text.encode())
    good = json.loads(out[0])
    out += [
        b'{"symbol": "AAPL", "trade_da',  # truncated
        b"[1, 2, 3]",
        b"null",
        b"",
        json.dumps({**good, "extra": 1}).encode(),
        json.dumps({**good, "open": "190.5"}).encode(),  # lax pydantic would accept
        json.dumps({**good, "volume": 10.0}).encode(),  # whole float volume: wrong_type
        json.dumps({**good, "open": True}).encode(),
        json.dumps({**good, "trade_date": "1690-05-31"}).encode(),
        json.dumps({**good, "symbol": "AAPL", "symbol ": "MSFT"}).encode(),
        b'{"schema_version":1,"symbol":"AAPL","symbol":"MSFT"}',
        json.dumps({**good, "volume": 10.5}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "source"}).encode(),  # required
        json.dumps({k: v for k, v in good.items() if k != "high"}).encode(),
        json.dumps({**good, "low": None}).encode(),
        json.dumps(good, indent=2).encode(),  # newlines inside a valid value
        json.dumps({**good, "trade_date": "2024-02-30"}).encode(),
        json.dumps({**good, "trade_date": "2024-05-31T00:00:00"}).encode(),
        json.dumps({**good, "trade_date": "0000-01-01"}).encode(),
        json.dumps({**good, "trade_date": "2024-13-01"}).encode(),
        json.dumps({**good, "trade_date": 20240531}).encode(),
        b'{"schema_version":1,"symbol":"AAPL","trade_date":"2024-05-31","open":NaN}',
        b"\xff\xfe not utf-8",
    ]
    return out


def test_consumer_decode_verdicts_equal_pydantic(now: datetime) -> None:
    rows = [r for r in _random_rows(400, seed=11)]
    values = _wire_variants(rows)
    random.Random(5).shuffle(values)
    decoded = decode_values("daily_bar", values, now=now, universe=UNIVERSE)
    expected: dict[int, str] = {}
    for i, v in enumerate(values):
        try:
            validate_payload("daily_bar", v, now=now, universe=UNIVERSE, max_bytes=MAX_RECORD_BYTES)
        except InvalidRecordError as exc:
            expected[i] = exc.reason
    expected_bad = set(expected)
    assert {r.index: r.reason for r in decoded.rejects} == expected
    assert set(decoded.frame.index) == set(range(len(values))) - expected_bad
    for r in decoded.rejects:
        assert r.payload == values[r.index], "the DLQ gets the untouched bytes"


def test_ticks_encode_and_decode_agree(now: datetime) -> None:
    frame = pd.DataFrame(
        [
            _tick(ts=pd.Timestamp("2024-06-03T14:30:00Z") + pd.Timedelta(seconds=i), price=100 + i)
            for i in range(50)
        ]
    )
    checked = validate_frame("tick", frame, now=now, universe=UNIVERSE)
    decoded = decode_values("tick", checked.payloads, now=now)
    assert not decoded.rejects
    pd.testing.assert_frame_equal(
        decoded.frame.reset_index(drop=True), checked.frame.reset_index(drop=True)
    )


def test_encode_empty_is_empty() -> None:
    assert encode("daily_bar", pd.DataFrame(columns=list(_bar()))) == []


@pytest.mark.parametrize("kind", ["tick", "daily_bar"])
def test_bad_input_matrix_same_codes_in_contract_and_fast_path(kind: str, now: datetime) -> None:
    """The shared matrix interleaved with valid records: the consumer's vectorised decode
    and the contract give every bad value the planted code and accept every valid one."""
    if kind == "tick":
        start = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)
        cases = tick_matrix("MSFT", start, now=now)
        valid = [tick_record(UNIVERSE[i % 3], start + timedelta(seconds=i)) for i in range(300)]
    else:
        cases = bar_matrix("AAPL", date(2024, 5, 31), now=now)
        valid = [
            bar_record(UNIVERSE[i % 3], date(2023, 1, 2) + timedelta(days=i)) for i in range(300)
        ]
    values = [json.dumps(v).encode() for v in valid]
    planted: dict[int, str] = {}
    assert len(cases) * 5 < len(valid), "every case lands between valid values"
    for j, case in enumerate(cases):  # one bad value every few good ones
        values.insert(j * 5 + 3, case.payload)
        planted[j * 5 + 3] = case.reason
    policy = {"now": now, "universe": UNIVERSE, "max_bytes": MAX_RECORD_BYTES}
    decoded = decode_values(kind, values, **policy)  # type: ignore[arg-type]
    contract: dict[int, str] = {}
    for i, v in enumerate(values):
        try:
            validate_payload(kind, v, **policy)  # type: ignore[arg-type]
        except InvalidRecordError as exc:
            contract[i] = exc.reason
    assert contract == planted, "the contract gives each planted case its code"
    assert {r.index: r.reason for r in decoded.rejects} == planted, "fast path agrees"
    assert len(decoded.frame) == len(valid)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda v: b"\xef\xbb\xbf" + v,  # byte-order mark
        lambda v: v.replace(b'"test"', b'"\xff\xfe"'),  # invalid UTF-8 inside a string
    ],
)
def test_encoding_errors_among_valid_values_are_malformed(spoil: Any, now: datetime) -> None:
    """One bad value among many valid ones (the arrow fast path parses the whole batch)."""
    good = json.dumps(tick_record("MSFT", datetime(2024, 6, 3, 14, tzinfo=UTC))).encode()
    good = good.replace(b'"matrix"', b'"test"')
    decoded = decode_values("tick", [good] * 40 + [spoil(good)] + [good] * 40, now=now)
    assert [(r.index, r.reason) for r in decoded.rejects] == [(40, "malformed_json")]
    assert len(decoded.frame) == 80
