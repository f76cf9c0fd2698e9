"""Hypothesis strategies for Kafka values: valid records mixed with anything at all.

A generated value is one of: a valid bar/tick, arbitrary bytes, an arbitrary JSON value,
a valid record with one field replaced by an arbitrary JSON value (or removed, or an extra
field added), two values concatenated, a valid record behind a byte-order mark or
whitespace, or a valid record with huge numbers. The verdict is never computed here: tests
compare engines with each other.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

SYMBOLS = ("AAPL", "MSFT", "BRK.B", "ZZZZ")
UNIVERSE = frozenset({"AAPL", "MSFT", "BRK.B"})


def dumps(value: Any) -> bytes:
    """Compact JSON, NaN/Infinity literals allowed (the contract names them)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


@st.composite
def bars(draw: st.DrawFn, now: datetime) -> dict[str, Any]:
    """A daily bar, valid unless its symbol is outside :data:`UNIVERSE` or its date future."""
    low = draw(st.floats(min_value=0.5, max_value=5_000.0))
    high = low + draw(st.floats(min_value=0.0, max_value=500.0))
    frac = st.floats(min_value=0.0, max_value=1.0)
    # A few days past ``now``: the engines must agree on future_timestamp too.
    day = draw(st.dates(min_value=date(1990, 1, 1), max_value=now.date() + timedelta(days=3)))
    return {
        "schema_version": 1,
        "symbol": draw(st.sampled_from(SYMBOLS)),
        "trade_date": day.isoformat(),
        "open": low + draw(frac) * (high - low),
        "high": high,
        "low": low,
        "close": low + draw(frac) * (high - low),
        "volume": draw(st.integers(min_value=0, max_value=10**12)),
        "source": draw(st.sampled_from(["yahoo", "synthetic", "fuzz"])),
    }


@st.composite
def ticks(draw: st.DrawFn, now: datetime) -> dict[str, Any]:
    """A tick, valid unless its symbol is outside :data:`UNIVERSE` or its time future."""
    # Up to two hours past ``now`` (the default skew is minutes): future ticks included.
    seconds = draw(st.integers(min_value=-2 * 3_600, max_value=30 * 86_400))
    ts = (now - timedelta(seconds=seconds)).astimezone(UTC)
    return {
        "schema_version": 1,
        "symbol": draw(st.sampled_from(SYMBOLS)),
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "price": draw(st.floats(min_value=0.01, max_value=9_000.0)),
        "volume": draw(st.integers(min_value=0, max_value=10**6)),
        "source": "fuzz",
    }


def records(kind: str, now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    return bars(now) if kind == "daily_bar" else ticks(now)


@st.composite
def spoiled(draw: st.DrawFn, kind: str, now: datetime) -> bytes:
    """A valid record with one thing changed."""
    record = draw(records(kind, now))
    name = draw(st.sampled_from(sorted(record)))
    how = draw(st.sampled_from(["replace", "drop", "extra", "huge", "rule"]))
    if how == "rule":
        return draw(st.sampled_from(rule_breakers(kind, now, record)))
    if how == "replace":
        record[name] = draw(json_values)
    elif how == "drop":
        del record[name]
    elif how == "extra":
        record[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    else:
        record[name] = draw(
            st.sampled_from([2**63 - 1, 2**63, -(2**63), 10**13, 1e308, -1e308, 5e-324, 1e-5])
        )
    return dumps(record)


def rule_breakers(kind: str, now: datetime, record: dict[str, Any]) -> list[bytes]:
    """``record`` broken in each way a value rule looks for, one value per way.

    Arbitrary JSON seldom lands on a value rule (a future date is a few days in 34 years;
    high below low needs two fields to move together), so these are drawn directly, and the
    verdict tests add them for a fixed record so that every run compares the value rules.
    """
    prices = ("open", "high", "low", "close") if kind == "daily_bar" else ("price",)
    later = now + timedelta(days=2)
    when = (
        {"trade_date": later.date().isoformat()}
        if kind == "daily_bar"
        else {"ts": later.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    )
    changes: list[dict[str, Any]] = [
        {"schema_version": 2},
        {"symbol": "not a ticker"},
        {"symbol": "ZZZZ"},
        {"volume": -1},
        {"volume": 2**63 - 1},
        when,
        *({name: 0.0} for name in prices),
        *({name: -3.5} for name in prices),
        *({name: 1e308} for name in prices),
        {prices[0]: float("nan")},
    ]
    if kind == "daily_bar":
        low, high = record["low"], record["high"]
        changes += [
            {"high": low - 1.0, "low": high + 1.0},
            {"open": high + 1.0},
            {"close": max(low / 2, 1e-3)},
        ]
    return [dumps({**record, **change}) for change in changes]


def messages(kind: str, now: datetime) -> st.SearchStrategy[bytes]:
    """One Kafka value: valid, spoiled or arbitrary (see the module docstring)."""
    valid = records(kind, now).map(dumps)
    single = st.one_of(
        valid,
        valid,
        spoiled(kind, now),
        st.binary(max_size=200),
        json_values.map(dumps),
        valid.map(lambda v: b"\xef\xbb\xbf" + v),
        valid.map(lambda v: b" " + v),
        valid.map(lambda v: v + b"\n"),
        st.sampled_from([b"", b"null", b"{}", b"[]", b"0", b'"x"', b"{}null", b"{} 1"]),
    )
    return st.one_of(single, st.tuples(single, single).map(lambda p: p[0] + p[1]))


def batches(kind: str, now: datetime, *, max_size: int = 40) -> st.SearchStrategy[list[bytes]]:
    """A poll batch: a list of messages (valid ones are common, so most batches mix)."""
    return st.lists(messages(kind, now), min_size=1, max_size=max_size)
