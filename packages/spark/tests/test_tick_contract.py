"""The streaming job's validation against the record contract, on a local session.

The contract (``validate_payload``) is the oracle: every value of the shared bad-input
matrix, plus edge cases where JSON parsers usually differ, must get the same reason code
from ``tick_parse`` + ``tick_quality`` as from the contract, and valid ticks the same values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import SparkSession

from market_common.contracts import ContractPolicy, InvalidRecordError, Tick, validate_payload
from market_spark.steps import tick_parse, tick_quality
from market_testing.bad_inputs import tick_matrix, tick_record

pytestmark = pytest.mark.spark
POLICY = ContractPolicy(universe=frozenset({"AAPL", "MSFT", "BRK.B"}))
START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def _edge_cases() -> list[bytes]:
    good = tick_record("AAPL", START)
    text = json.dumps(good).encode()
    return [
        json.dumps({**good, "symbol": "AAPL\n"}).encode(),  # Java's $ would accept it
        json.dumps({**good, "volume": float("nan")}).encode(),  # NaN where an int belongs
        json.dumps({**good, "symbol": "ZZZZ", "price": float("nan")}).encode(),  # precedence
        json.dumps({**good, "schema_version": 2, "exchange": "X"}).encode(),
        json.dumps({**good, "schema_version": 2**40}).encode(),
        json.dumps({**good, "volume": 2**63}).encode(),
        json.dumps({**good, "price": 12}).encode(),  # an integer is a number
        json.dumps({**good, "price": 1e-400}).encode(),  # underflows to 0
        json.dumps({**good, "ts": "2024-01-02T14:30:00+05:30"}).encode(),
        json.dumps({**good, "ts": "2024-01-02T14:30:00"}).encode(),  # naive = UTC
        json.dumps({**good, "ts": "2024-01-02 14:30:00"}).encode(),
        json.dumps({**good, "ts": "1650-01-02T14:30:00Z"}).encode(),
        json.dumps({**good, "source": {"a": 1}}).encode(),
        json.dumps(good, indent=2).encode(),
        b"null",
        b'"a string"',
        b"\xef\xbb\xbf" + text,  # UTF-8 BOM
        None,  # a tombstone
    ]


def _contract_reason(value: bytes | None) -> str | None:
    try:
        validate_payload(
            "tick",
            value if value is not None else b"",
            universe=POLICY.universe,
            max_bytes=POLICY.max_message_bytes,
            future_skew=POLICY.future_skew,
        )
    except InvalidRecordError as exc:
        return exc.reason
    return None


def test_tick_matrix_gets_the_contracts_codes(spark: SparkSession) -> None:
    now = datetime.now(UTC)
    valid = [
        json.dumps(tick_record(s, START + timedelta(seconds=i), price=100 + i)).encode()
        for i, s in enumerate(["AAPL", "MSFT", "BRK.B"] * 4)
    ]
    planted = [c.payload for c in tick_matrix("MSFT", START, now=now)] + _edge_cases()
    values: list[bytes | None] = []
    for i, bad in enumerate(planted):  # interleave: valid, bad, valid, bad, ...
        values += [valid[i % len(valid)], bad]
    df = spark.createDataFrame(
        [(None, v, "t", 0, i, START) for i, v in enumerate(values)],
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    classified = tick_quality.transform(tick_parse.transform(df, policy=POLICY), policy=POLICY)
    rows = classified.orderBy("kafka_offset").collect()

    expected = [_contract_reason(v) for v in values]
    assert None in expected and len(set(expected)) > 12, "the matrix covers many codes"
    got = [r["reason"] for r in rows]
    mismatches = {
        (values[i] or b"")[:90]: (got[i], expected[i])
        for i in range(len(values))
        if got[i] != expected[i]
    }
    assert not mismatches, f"(spark, contract) differ: {mismatches}"
    assert set(got) - {None} <= set(tick_quality.REASONS)

    # Valid ticks carry the contract's values.
    for row, value in zip(rows, values, strict=True):
        if row["reason"] is None:
            assert value is not None
            tick = validate_payload("tick", value, universe=POLICY.universe)
            assert isinstance(tick, Tick)
            assert (row["symbol"], row["price"], row["volume"], row["source"]) == (
                tick.symbol, tick.price, tick.volume, tick.source,
            )  # fmt: skip
            assert row["ts"] == tick.ts.replace(tzinfo=None), "session time zone is UTC"
            assert row["schema_version"] == 1


def test_raw_zone_ticks_get_value_rules_only(spark: SparkSession) -> None:
    """Ticks read back from the raw zone have no wire columns: value rules still apply."""
    rows = [
        ("AAPL", START, 10.0, 5, "s", 1),
        ("ZZZZ", START, 10.0, 5, "s", 1),
        ("AAPL", START, float("nan"), 5, "s", 1),
        ("AAPL", START, 10.0, 5, None, 1),
        ("AAPL", START + timedelta(days=9999), 10.0, 5, "s", 1),
    ]
    df = spark.createDataFrame(
        rows,
        "symbol string, ts timestamp, price double, volume long, source string, schema_version int",
    ).withColumn("parse_error", tick_parse.F.lit(None).cast("string"))
    got = [r["reason"] for r in tick_quality.transform(df, policy=POLICY).collect()]
    assert got == [None, "unknown_symbol", "non_finite", "missing_field", "future_timestamp"]
