"""Regression tests for the consumer findings of issue #12, on the local stack.

Each test replays one finding the way a user met it (messages on a fresh topic, the real
consumer, MinIO and the DLQ topic) and asserts what must hold instead.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from stack_helpers import dead_letters, produce, raw_offsets

from market_common.clients import kafka_admin, kafka_consumer
from market_common.settings import MarketSettings, load_settings
from market_ingest.consumer import ConsumeResult, consume
from market_testing.bad_inputs import bar_record

pytestmark = pytest.mark.integration

DAY = date(2024, 6, 3)


def bar(i: int) -> bytes:
    """A distinct valid bar per ``i`` (one trade date per i, so no two are duplicates)."""
    day = date.fromordinal(DAY.toordinal() - i)
    return json.dumps(bar_record("AAPL", day, base=100.0 + i), separators=(",", ":")).encode()


@pytest.fixture
def settings(local_stack: Any, unique_name: Any) -> MarketSettings:
    s = load_settings()
    s.kafka.batch_topic = unique_name("batch")
    s.kafka.dlq_topic = unique_name("dlq")
    s.kafka.batch_group = unique_name("gb")
    s.s3.raw_prefix = f"it-findings/{unique_name('raw')}/raw"
    s.kafka.partitions = 1  # offsets in these tests are the messages' positions
    return s


def run(settings: MarketSettings, **options: Any) -> ConsumeResult:
    return consume(settings, "batch", until_caught_up=True, max_seconds=120, **options)


def test_finding_json_null_alone_on_a_fresh_topic_is_dead_lettered(
    settings: MarketSettings, s3_client: Any
) -> None:
    # Was: SIGSEGV (exit 139) in the fast JSON path, again on every restart.
    produce(settings, [b"null"])
    result = run(settings)
    assert result.ok and result.stopped_by == "caught_up", result
    assert result.committed == {0: 1}
    assert raw_offsets(s3_client, settings) == []
    assert [(d["offset"], d["reason"]) for d in dead_letters(settings)] == [(0, "malformed_json")]


def test_finding_empty_and_concatenated_values_keep_rows_at_their_offsets(
    settings: MarketSettings, s3_client: Any
) -> None:
    # Was: 4 rows in raw, no dead letter, rows attributed to the wrong offsets.
    produce(settings, [bar(0), b"", bar(1) + bar(2), bar(3)])
    result = run(settings)
    assert result.ok and result.dead_lettered == 2, result
    assert raw_offsets(s3_client, settings) == [0, 3]
    letters = dead_letters(settings)
    assert [(d["offset"], d["reason"]) for d in letters] == [
        (1, "malformed_json"),
        (2, "malformed_json"),
    ]


def test_finding_failed_dlq_send_is_retried_never_committed_past(
    settings: MarketSettings, s3_client: Any
) -> None:
    # A DLQ topic that refuses our dead letters (a real broker-side rejection: the topic's
    # max.message.bytes is below a dead letter's size).
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    admin = kafka_admin(settings)
    try:
        admin.create_topics(
            [NewTopic(settings.kafka.dlq_topic, 1, 1, topic_configs={"max.message.bytes": "64"})]
        )
        produce(settings, [bar(0), b"not json", bar(1), bar(2)])
        first = run(settings)
        assert not first.ok and first.dlq_failed == 1 and first.dlq_resends >= 1, first
        # The valid rows are in raw, but the commit stops at the undelivered dead letter.
        assert first.committed.get(0, 0) <= 1
        assert raw_offsets(s3_client, settings) == [0, 2, 3]

        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    settings.kafka.dlq_topic,
                    configs={"max.message.bytes": "1048588"},
                )
            ]
        )
    finally:
        admin.close()
    second = run(settings)
    assert second.ok and second.committed == {0: 4}, second
    assert [(d["offset"], d["reason"]) for d in dead_letters(settings)] == [(1, "malformed_json")]
    assert raw_offsets(s3_client, settings) == [0, 2, 3], "rows rewritten, not added"


def test_finding_window_rows_change_between_runs_keeps_each_row_once(
    settings: MarketSettings, s3_client: Any
) -> None:
    # Was: a new --window-rows wrote new keys beside the old ones: rows twice in raw.
    produce(settings, [bar(i) for i in range(50)])
    assert run(settings, window_rows=20).committed == {0: 50}
    produce(settings, [bar(i) for i in range(50, 80)])
    second = run(settings, window_rows=7)
    assert second.ok and second.committed == {0: 80}, second
    assert raw_offsets(s3_client, settings) == list(range(80))


def _reset_group(settings: MarketSettings, offset: int | None) -> None:
    """What ``kafka-consumer-groups --reset-offsets`` does: commit ``offset`` (None = the
    earliest) with empty metadata, so the window size the offsets were committed with is
    forgotten."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    c = kafka_consumer(settings, group_id=settings.kafka.batch_group)
    try:
        tp = TopicPartition(settings.kafka.batch_topic, 0)
        c.assign([tp])
        if offset is None:
            c.seek_to_beginning(tp)
            offset = c.position(tp)
        c.commit({tp: OffsetAndMetadata(offset, "", -1)})
    finally:
        c.close(autocommit=False)


def test_finding_group_reset_with_changed_window_rows_keeps_each_row_once(
    settings: MarketSettings, s3_client: Any
) -> None:
    # Was: a reset drops the commit metadata, so the next run's --window-rows named new keys
    # beside the objects of the old size: every re-read row twice in raw. Bars 9 days apart
    # span several year= partitions, so windows straddle object directories.
    produce(settings, [bar(9 * i) for i in range(60)])
    assert run(settings, window_rows=20).committed == {0: 60}
    # (reset to, next run's window size): to the start; into the middle of old windows of
    # two other sizes (rewind to 18 splits [14, 20] of size 7 and [0, 19] of size 20); past
    # everything with one more size, then new records.
    for reset_to, window_rows in ((None, 7), (23, 9), (None, 50), (41, 13)):
        _reset_group(settings, reset_to)
        result = run(settings, window_rows=window_rows)
        assert result.ok and result.committed == {0: 60}, (reset_to, window_rows, result)
        assert raw_offsets(s3_client, settings) == list(range(60)), (reset_to, window_rows)
    produce(settings, [bar(9 * i + 1) for i in range(60, 75)])
    assert run(settings, window_rows=11).committed == {0: 75}
    assert raw_offsets(s3_client, settings) == list(range(75))
