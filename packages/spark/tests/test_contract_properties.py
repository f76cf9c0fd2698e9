"""Every engine gives every generated record the same verdict: pydantic, the ingest fast path,
Spark's batch checks (bars) and Spark's stream checks (ticks).

Hypothesis draws a few hundred Kafka values per kind from the strategies the decoding and
consumer property tests use (valid records mixed with arbitrary bytes, arbitrary JSON,
spoiled, concatenated and future records). A Spark job per example would take minutes, so
the values of one run are generated first and judged by Spark in one DataFrame; a mismatch
is reported with the values it concerns (hypothesis does not shrink them).

* Ticks: the Kafka values go through ``tick_parse`` + ``tick_quality``, the stream's checks,
  and every value must get pydantic's reason code (or be valid in both).
* Bars: the batch reads typed rows from the raw zone, never wire bytes, so it judges the
  values that pass the contract's shape stage (valid, or rejected by a value rule): their
  typed rows must get pydantic's code from ``historical_quality``. Values rejected for their
  shape are the fast path's and pydantic's to agree on, and are counted.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from pyspark.sql import SparkSession
from wire_strategies import UNIVERSE, messages, rule_breakers

from market_common import contract_spec
from market_common.contracts import ContractPolicy, InvalidRecordError, validate_payload
from market_ingest.records import MAX_RECORD_BYTES, decode_values
from market_spark.schemas import RAW_HISTORICAL
from market_spark.steps import historical_quality, tick_parse, tick_quality

pytestmark = pytest.mark.spark
NOW = datetime(2024, 6, 3, 21, 0, tzinfo=UTC)
EXAMPLES = 300
POLICY = ContractPolicy(universe=UNIVERSE)
VALUE_CODES = {r.code for r in contract_spec.REASONS if r.stage == "value"}


_FIXED = {
    "daily_bar": {
        "schema_version": 1, "symbol": "AAPL", "trade_date": "2024-05-31", "open": 190.0,
        "high": 192.5, "low": 189.0, "close": 191.0, "volume": 1_000, "source": "fuzz",
    },
    "tick": {
        "schema_version": 1, "symbol": "MSFT", "ts": "2024-06-03T19:59:00.000000Z",
        "price": 410.25, "volume": 10, "source": "fuzz",
    },
}  # fmt: skip


def _generated(kind: str) -> list[bytes]:
    """``EXAMPLES`` values drawn by hypothesis (generation only: nothing to shrink here),
    then one record broken for each value rule, so that every run compares every value rule
    however the random draw went (the draw alone left some out: a flaky coverage check)."""
    values: list[bytes] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(messages(kind, NOW))
    def collect(value: bytes) -> None:
        values.append(value)

    collect()
    return values + rule_breakers(kind, NOW, _FIXED[kind])


def _pydantic(kind: str, value: bytes) -> str | None:
    try:
        validate_payload(
            kind,  # type: ignore[arg-type]
            value,
            now=NOW,
            universe=POLICY.universe,
            max_bytes=MAX_RECORD_BYTES,
            future_skew=POLICY.future_skew,
        )
    except InvalidRecordError as exc:
        return exc.reason
    return None


def _fast_path(kind: str, values: list[bytes]) -> list[str | None]:
    decoded = decode_values(
        kind,  # type: ignore[arg-type]
        values,
        now=NOW,
        universe=POLICY.universe,
        future_skew=POLICY.future_skew,
    )
    reasons: list[str | None] = [None] * len(values)
    for reject in decoded.rejects:
        reasons[reject.index] = reject.reason
    return reasons


def _assert_agree(values: list[bytes], **verdicts: list[str | None]) -> None:
    """Every engine's verdict equals pydantic's, value by value."""
    expected = verdicts.pop("pydantic")
    for engine, got in verdicts.items():
        differ = {
            values[i][:120]: (got[i], expected[i])
            for i in range(len(values))
            if got[i] != expected[i]
        }
        assert not differ, f"({engine}, pydantic) verdicts differ: {differ}"


def _coverage(verdicts: list[str | None]) -> Counter[str | None]:
    seen = Counter(verdicts)
    assert seen[None] >= EXAMPLES // 10, f"too few valid records to compare: {seen}"
    assert len(seen) >= 6, f"too few distinct verdicts to compare: {seen}"
    return seen


def test_every_engine_gives_each_generated_tick_the_same_verdict(spark: SparkSession) -> None:
    values = _generated("tick")
    expected = [_pydantic("tick", v) for v in values]
    _coverage(expected)
    df = spark.createDataFrame(
        [(None, v, "t", 0, i, NOW.replace(tzinfo=None)) for i, v in enumerate(values)],
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    parsed = tick_parse.transform(df, policy=POLICY)
    checked = tick_quality.transform(parsed, policy=POLICY, now=NOW)
    rows = checked.select("kafka_offset", "reason").collect()
    spark_stream: list[str | None] = [None] * len(values)
    for row in rows:
        spark_stream[row["kafka_offset"]] = row["reason"]
    assert len(rows) == len(values), "the stream's checks dropped or added rows"
    _assert_agree(
        values,
        pydantic=expected,
        fast_path=_fast_path("tick", values),
        spark_stream=spark_stream,
    )


def _typed_bar(value: bytes, offset: int) -> dict[str, Any]:
    """The raw-zone row of a bar that passed the contract's shape stage."""
    record = json.loads(value)
    return {
        **{name: record[name] for name in ("symbol", "source", "schema_version", "volume")},
        **{name: float(record[name]) for name in ("open", "high", "low", "close")},
        "trade_date": date.fromisoformat(record["trade_date"]),
        "kafka_topic": "t",
        "kafka_partition": 0,
        "kafka_offset": offset,
        "ingested_at": NOW.replace(tzinfo=None),
    }


def test_every_engine_gives_each_generated_bar_the_same_verdict(spark: SparkSession) -> None:
    values = _generated("daily_bar")
    expected = [_pydantic("daily_bar", v) for v in values]
    seen = _coverage(expected)
    _assert_agree(values, pydantic=expected, fast_path=_fast_path("daily_bar", values))

    typed = [i for i, code in enumerate(expected) if code is None or code in VALUE_CODES]
    # An int32 schema_version column cannot hold 2**40: such rows never reach the raw zone.
    typed = [i for i in typed if abs(json.loads(values[i])["schema_version"]) < 2**31]
    value_verdicts = {expected[i] for i in typed} - {None}
    assert len(value_verdicts) >= 8, f"too few value-rule verdicts: {seen}"
    df = spark.createDataFrame([_typed_bar(values[i], i) for i in typed], RAW_HISTORICAL)
    rows = historical_quality.transform(df, now=NOW, policy=POLICY).collect()
    spark_batch = dict.fromkeys(typed) | {r["kafka_offset"]: r["reason"] for r in rows}
    assert len(rows) == len(typed), "the batch's checks dropped or added rows"
    shown = [values[i] for i in typed]
    _assert_agree(
        shown,
        pydantic=[expected[i] for i in typed],
        spark_batch=[spark_batch[i] for i in typed],
    )
