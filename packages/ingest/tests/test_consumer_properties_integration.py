"""Property test of the real consumer on the local stack: any batch, exact raw and DLQ.

For every generated batch (valid bars mixed with arbitrary bytes, arbitrary JSON, spoiled
and concatenated records) on a fresh topic, one consumer run must end cleanly, raw must
hold exactly the valid records at their own offsets, and the DLQ exactly the others with
pydantic's reason. Few examples (each is a full produce → consume → read-back round trip,
so the file stays within ~2-3 minutes on an idle machine); the long run is ``market-bench fuzz``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from stack_helpers import dead_letters, produce, raw_offsets
from wire_strategies import UNIVERSE, batches

from market_common.contracts import InvalidRecordError, validate_payload
from market_common.settings import MarketSettings, load_settings
from market_ingest.consumer import consume

pytestmark = pytest.mark.integration
NOW = datetime(2024, 6, 3, 21, 0, tzinfo=UTC)


def _fresh_settings() -> MarketSettings:
    tag = uuid.uuid4().hex[:10]
    s = load_settings()
    s.kafka.batch_topic = f"prop-batch-{tag}"
    s.kafka.dlq_topic = f"prop-dlq-{tag}"
    s.kafka.batch_group = f"prop-gb-{tag}"
    s.kafka.partitions = 1
    s.s3.raw_prefix = f"it-props/{tag}/raw"
    s.contracts.universe = sorted(UNIVERSE)
    return s


def _expected(values: list[bytes], s: MarketSettings) -> tuple[list[int], dict[int, str]]:
    valid: list[int] = []
    invalid: dict[int, str] = {}
    for offset, value in enumerate(values):
        try:
            validate_payload("daily_bar", value, now=NOW, universe=UNIVERSE,
                             max_bytes=s.contracts.max_message_bytes)  # fmt: skip
            valid.append(offset)
        except InvalidRecordError as exc:
            invalid[offset] = exc.reason
    return valid, invalid


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(values=batches("daily_bar", NOW, max_size=20))
def test_consumer_writes_exactly_the_valid_records_and_dead_letters_the_rest(
    local_stack: Any, s3_client: Any, values: list[bytes]
) -> None:
    s = _fresh_settings()
    produce(s, values)
    result = consume(s, "batch", until_caught_up=True, max_seconds=120, now=lambda: NOW)
    assert result.ok and result.stopped_by == "caught_up", result
    valid, invalid = _expected(values, s)
    assert raw_offsets(s3_client, s) == valid
    letters = dead_letters(s) if invalid else []
    assert {d["offset"]: d["reason"] for d in letters} == invalid
    assert len(letters) == len(invalid), "each bad record dead-lettered once"
