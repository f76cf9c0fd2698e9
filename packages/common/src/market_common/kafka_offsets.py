"""Where a topic's partitions stand, and how far a consumer group is behind them.

Read from the broker (partition begin/end offsets, the group's committed offsets), never
from a consumer's own bookkeeping, so the figures are what any other client would see:
``market-ingest consume`` sizes its progress bar with the lag it starts from, and
``market-pipeline inspect`` shows it per topic. A group that never committed on a
partition is behind by everything the partition still holds (it starts from the
beginning, as the platform's consumers do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from market_common.clients import kafka_admin, kafka_consumer
from market_common.settings import KafkaSettings, MarketSettings


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition: its retained range ``[begin, end)`` and a group's committed offset."""

    partition: int
    begin: int
    end: int
    committed: int | None = None

    @property
    def messages(self) -> int:
        return self.end - self.begin

    @property
    def lag(self) -> int:
        """Messages the group has not committed past (all retained ones if it never did)."""
        start = self.begin if self.committed is None else max(self.committed, self.begin)
        return max(self.end - start, 0)


def topic_offsets(
    settings: KafkaSettings | MarketSettings,
    topic: str,
    *,
    group: str | None = None,
    consumer: Any = None,
    admin: Any = None,
) -> list[PartitionOffsets]:
    """Per partition of ``topic`` (``[]`` when it does not exist), with ``group``'s commits."""
    from kafka import TopicPartition

    own_consumer, own_admin = consumer is None, admin is None and group is not None
    consumer = consumer or kafka_consumer(settings, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic) if topic in consumer.topics() else None
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends, begins = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
        committed: dict[int, int] = {}
        if group is not None:
            admin = admin or kafka_admin(settings)
            offsets = admin.list_group_offsets({group: tps}).get(group, {})
            committed = {
                tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0
            }
        return [
            PartitionOffsets(
                tp.partition, int(begins[tp]), int(ends[tp]), committed.get(tp.partition)
            )
            for tp in tps
        ]
    finally:
        if own_consumer:
            consumer.close()
        if own_admin and admin is not None:
            admin.close()


def group_lag(settings: KafkaSettings | MarketSettings, topic: str, group: str) -> int:
    """Messages of ``topic`` that ``group`` has not committed yet (0 for a missing topic)."""
    return sum(p.lag for p in topic_offsets(settings, topic, group=group))
