"""Property tests of the pure decoding functions: any batch of values, one verdict each.

For every generated batch, :func:`decode_values` (arrow + numpy fast path) must judge
every value exactly as :func:`validate_payload` (pydantic) judges it alone: accepted rows
at their own positions with the same values, every other value rejected with the same
reason, nothing crashing. Plus regression tests named after the findings of issue #12.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from wire_strategies import UNIVERSE, batches, dumps, records

from market_common.contracts import InvalidRecordError, validate_payload
from market_ingest.records import MAX_RECORD_BYTES, decode_values
from market_testing.bad_inputs import bar_record

NOW = datetime(2024, 6, 3, 21, 0, tzinfo=UTC)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verdicts(kind: str, values: list[bytes]) -> dict[int, Any]:
    """pydantic's verdict per value: the model, or the reason code."""
    out: dict[int, Any] = {}
    for i, value in enumerate(values):
        try:
            out[i] = validate_payload(
                kind, value, now=NOW, universe=UNIVERSE, max_bytes=MAX_RECORD_BYTES  # type: ignore[arg-type]
            )
        except InvalidRecordError as exc:
            out[i] = exc.reason
    return out


def _assert_same_verdicts(kind: str, values: list[bytes]) -> None:
    expected = _verdicts(kind, values)
    decoded = decode_values(kind, values, now=NOW, universe=UNIVERSE)  # type: ignore[arg-type]
    got_rejects = {r.index: r.reason for r in decoded.rejects}
    accepted = list(decoded.frame.index)
    assert len(accepted) == len(set(accepted)), "a value gave more than one row"
    assert set(accepted).isdisjoint(got_rejects), "a value was both accepted and rejected"
    assert set(accepted) | set(got_rejects) == set(range(len(values))), "a value vanished"
    assert got_rejects == {i: v for i, v in expected.items() if isinstance(v, str)}
    for i in accepted:
        model = expected[i]
        row = decoded.frame.loc[i]
        assert row["symbol"] == model.symbol and row["volume"] == model.volume, i
        if kind == "daily_bar":
            assert row["close"] == model.close and row["trade_date"].date() == model.trade_date
        else:
            assert row["price"] == model.price and row["ts"] == pd.Timestamp(model.ts)
    for r in decoded.rejects:
        assert r.payload == values[r.index], "the DLQ gets the untouched bytes"


@PROPERTY
@given(batches("daily_bar", NOW))
def test_bar_batches_judged_value_by_value(values: list[bytes]) -> None:
    _assert_same_verdicts("daily_bar", values)


@PROPERTY
@given(batches("tick", NOW))
def test_tick_batches_judged_value_by_value(values: list[bytes]) -> None:
    _assert_same_verdicts("tick", values)


@settings(max_examples=50, deadline=None)
@given(records("daily_bar", NOW))
def test_valid_bars_are_accepted_by_both(record: dict[str, Any]) -> None:
    # Generated bars are valid without a universe, unless dated after NOW.
    values = [dumps(record)]
    decoded = decode_values("daily_bar", values, now=NOW, universe=None)
    if record["trade_date"] > NOW.date().isoformat():
        assert [r.reason for r in decoded.rejects] == ["future_timestamp"]
    else:
        assert list(decoded.frame.index) == [0], decoded.rejects


# --------------------------------------------------------------------------- findings


GOOD = dumps(bar_record("AAPL", datetime(2024, 6, 3).date()))


def test_finding_json_null_alone_does_not_crash_the_fast_path() -> None:
    # Was a SIGSEGV inside arrow's JSON reader: a lone null is now never shown to arrow.
    decoded = decode_values("daily_bar", [b"null"], now=NOW)
    assert [(r.index, r.reason) for r in decoded.rejects] == [(0, "malformed_json")]
    assert decoded.frame.empty


@pytest.mark.parametrize("first", [b"null", b"[]", b"0", b'"x"', b" ", b"\xef\xbb\xbf{}"])
def test_finding_non_object_first_in_batch_does_not_crash(first: bytes) -> None:
    decoded = decode_values("daily_bar", [first, GOOD], now=NOW)
    assert list(decoded.frame.index) == [1]
    assert [(r.index, r.reason) for r in decoded.rejects] == [(0, "malformed_json")]


def test_finding_empty_and_concatenated_values_do_not_shift_rows() -> None:
    # A valid bar, an empty value, two bars concatenated, a valid bar: used to give 4 rows.
    values = [GOOD, b"", GOOD + GOOD, GOOD]
    decoded = decode_values("daily_bar", values, now=NOW)
    assert list(decoded.frame.index) == [0, 3]
    assert [(r.index, r.reason) for r in decoded.rejects] == [
        (1, "malformed_json"),
        (2, "malformed_json"),
    ]


PATHOLOGICAL = {
    "deeply_nested_array": b"[" * 100_000 + b"]" * 100_000,
    "deeply_nested_object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "ten_megabytes": b'{"source":"' + b"x" * 10_000_000 + b'"}',
    "huge_integer": b'{"volume":' + b"9" * 5_000 + b"}",
    "invalid_utf8": b'{"symbol":"\xff\xfe"}',
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_values_get_one_verdict(name: str) -> None:
    value = PATHOLOGICAL[name]
    values = [GOOD, value, GOOD]
    decoded = decode_values("daily_bar", values, now=NOW, max_bytes=20_000_000)
    assert list(decoded.frame.index) == [0, 2], name
    assert [r.index for r in decoded.rejects] == [1], name
    with pytest.raises(InvalidRecordError):
        validate_payload("daily_bar", value, now=NOW, max_bytes=20_000_000)


def test_finding_volume_int64_max_is_out_of_bounds() -> None:
    # 2^63-1 fitted the old contract and overflowed Spark's ANSI sum on every rerun.
    value = dumps(bar_record("AAPL", NOW.date()) | {"volume": 2**63 - 1})
    decoded = decode_values("daily_bar", [value], now=NOW)
    assert [r.reason for r in decoded.rejects] == ["out_of_bounds"]


def test_finding_price_1e308_is_out_of_bounds() -> None:
    # 1e308 was finite and positive, and aggregated to inf.
    record = bar_record("AAPL", NOW.date()) | {"high": 1e308, "close": 1e308}
    decoded = decode_values("daily_bar", [dumps(record)], now=NOW)
    assert [r.reason for r in decoded.rejects] == ["out_of_bounds"]
