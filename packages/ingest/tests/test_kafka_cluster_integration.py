"""Ingestion on a three-node KRaft cluster (RF 3, ``min.insync.replicas=2``) with SIGKILL faults.

The cluster is private (its own state dir and loopback ports, started like
``market-devstack up --kafka-brokers 3``); the raw zone is the shared stack's MinIO under
names unique to the test. A node is killed with SIGKILL (no controlled shutdown), the way a
machine dies.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from datetime import date
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from test_faults_integration import (
    END,
    SEED,
    WAIT_S,
    ConsumerThread,
    PhasedSource,
    group_caught_up,
    isolated,
    raw_table,
    topic_message_count,
    wait_until,
)

from market_common.clients import kafka_admin, kafka_consumer, kafka_producer
from market_common.settings import MarketSettings
from market_devstack.cli import scaled_settings
from market_devstack.kafka import KafkaService, cluster_bootstrap
from market_ingest.calendar import trading_days
from market_ingest.producer import RecordProducer, backfill
from market_ingest.sources.synthetic import SyntheticSource
from market_ingest.universe import benchmark_universe
from market_testing.pytest_plugin import PrivateStack, UniqueNames

pytestmark = pytest.mark.integration

BROKERS = 3
VALUE_COLUMNS = ("symbol", "trade_date", "open", "high", "low", "close", "volume")


@pytest.fixture
def cluster(private_stack: PrivateStack) -> PrivateStack:
    """The private stack sized like ``up --kafka-brokers 3``, its Kafka nodes running."""
    private_stack.settings = scaled_settings(
        private_stack.settings, kafka_brokers=BROKERS, spark_workers=None
    )
    private_stack.up("kafka")
    return private_stack


def cluster_settings(local_stack: Any, cluster: PrivateStack, names: UniqueNames) -> MarketSettings:
    """Shared MinIO + the private cluster, with the replication the cluster was started for."""
    settings = isolated(local_stack.settings, names)
    settings.kafka.bootstrap_servers = cluster_bootstrap(cluster.settings.stack)
    settings.kafka.replication_factor = cluster.settings.kafka.replication_factor
    settings.kafka.min_insync_replicas = cluster.settings.kafka.min_insync_replicas
    return settings


def sigkill_node(cluster: PrivateStack, node_id: int) -> None:
    """SIGKILL the node's process group (the JVM): no controlled shutdown, no flush."""
    node = KafkaService(cluster.settings, node_id=node_id)
    record = node.running()
    assert record is not None, f"{node.name} runs before it is killed"
    os.killpg(record.pid, signal.SIGKILL)
    wait_until(lambda: not record.is_alive(), f"{node.name} to die")


def value_checksum(rows: list[tuple[Any, ...]]) -> str:
    """Order-independent digest of whole records (key and every value; duplicates change it)."""
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()


def partition_state(settings: MarketSettings, topic: str) -> list[dict[str, Any]]:
    admin = kafka_admin(settings, request_timeout_ms=5000)
    try:
        return list(admin.describe_topics([topic])[0]["partitions"])
    finally:
        admin.close()


def fully_replicated(settings: MarketSettings, topic: str) -> bool:
    """Every partition has a leader and all BROKERS replicas in sync."""
    try:
        parts = partition_state(settings, topic)
    except Exception:  # a node still joining: not yet
        return False
    return bool(parts) and all(
        p["leader_id"] >= 0 and sorted(p["isr_nodes"]) == list(range(1, BROKERS + 1)) for p in parts
    )


def test_node_sigkill_while_producing_and_consuming_keeps_every_acked_record_once(
    local_stack: Any, cluster: PrivateStack, s3_client: Any, unique_name: UniqueNames
) -> None:
    """A node (leader of a partition) is SIGKILLed mid-run and restarted: raw is exact.

    acks=all with min.insync.replicas=2 means an acknowledged record is on two nodes, so
    losing one loses nothing; the idempotent producer re-sends unacknowledged batches to
    the new leader without duplicates; the consumer rides out the leader change; the killed
    node catches up and rejoins every ISR.
    """
    settings = cluster_settings(local_stack, cluster, unique_name)
    topic = settings.kafka.batch_topic
    symbols = benchmark_universe(10, seed=5)
    start = trading_days(date(2020, 1, 1), END)[-300].astype(date)
    frame = SyntheticSource(seed=SEED).daily_frame(symbols, start, END)
    expected = [
        (r.symbol, r.trade_date.date(), r.open, r.high, r.low, r.close, int(r.volume))
        for r in frame.itertuples(index=False)
    ]
    killed = threading.Event()
    victim: list[int] = []

    def before_frame(i: int) -> None:
        if i == 10:  # ~15% sent: kill the leader of partition 0 under the producer's feet
            parts = partition_state(settings, topic)
            leader = next(p["leader_id"] for p in parts if p["partition_index"] == 0)
            victim.append(leader)
            sigkill_node(cluster, leader)
            killed.set()

    consumer = ConsumerThread(settings, window_rows=1_000, flush_seconds=1.0).start()
    produced = backfill(
        settings, start=start, end=END, symbols=symbols, source=PhasedSource(before_frame)
    )
    assert killed.is_set(), "the node was killed while the producer ran"
    assert produced.ok and produced.acked == len(expected), produced.summary()
    assert topic_message_count(settings, topic) == len(expected), "each record on the topic once"

    cluster.start("kafka")  # restarts only the dead node; the others are reused
    wait_until(
        lambda: fully_replicated(settings, topic),
        f"kafka-{victim[0]} to rejoin every ISR",
        state=lambda: partition_state(settings, topic),
    )
    wait_until(
        lambda: consumer.dead() or group_caught_up(settings, topic, settings.kafka.batch_group),
        "the consumer to commit the end of every partition",
        state=lambda: consumer.consumer.result,
    )
    result = consumer.stop()
    assert result.dlq_failed == 0 and result.dead_lettered == 0

    table = raw_table(s3_client, settings)
    columns = [table.column(c).to_pylist() for c in VALUE_COLUMNS]
    rows = list(zip(*columns, strict=True))
    offsets = set(
        zip(
            table.column("kafka_partition").to_pylist(),
            table.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )
    assert table.num_rows == len(expected), "raw row count equals the records acknowledged"
    assert len(offsets) == table.num_rows, "no Kafka offset is in raw twice"
    assert value_checksum(rows) == value_checksum(expected), "raw keys and values are exact"


def test_fewer_than_min_insync_replicas_alive_fails_the_producer_loudly(
    local_stack: Any, cluster: PrivateStack, unique_name: UniqueNames
) -> None:
    """Two of three nodes SIGKILLed: the producer raises instead of acknowledging anything.

    With one copy left the cluster cannot honour min.insync.replicas=2 (and the controller
    quorum has lost its majority, so the ISR cannot shrink either): acks=all writes are
    never acknowledged and :meth:`RecordProducer.close` raises when its flush times out,
    rather than reporting records held by a single node as safe. After the nodes return,
    every record that *was* acknowledged is still on the topic.
    """
    settings = cluster_settings(local_stack, cluster, unique_name)
    topic = settings.kafka.batch_topic
    symbols = benchmark_universe(4, seed=7)
    days = trading_days(date(2024, 1, 1), END)
    before = backfill(
        settings, start=days[0].astype(date), end=days[39].astype(date), symbols=symbols,
        source="synthetic", seed=SEED,
    )  # fmt: skip
    assert before.ok and before.acked == 40 * len(symbols), before.summary()

    for node in range(2, BROKERS + 1):
        sigkill_node(cluster, node)
    producer = kafka_producer(settings, request_timeout_ms=3_000)
    # The topics exist; the admin client would give up on the first dead node it picks.
    out = RecordProducer(
        settings, "daily_bar", source_name="synthetic", producer=producer, create_topics=False
    )
    frame = SyntheticSource(seed=SEED).daily_frame(
        symbols, days[40].astype(date), days[59].astype(date)
    )
    out.send_frame(frame)
    with pytest.raises(KafkaTimeoutError):
        out.close(timeout_s=15)

    cluster.start("kafka")
    wait_until(
        lambda: fully_replicated(settings, topic),
        "the killed nodes to rejoin",
        timeout_s=WAIT_S,
        state=lambda: partition_state(settings, topic),
    )
    # kafka-python's close() flushes first and cannot abandon pending batches, so it is
    # closed once the cluster is back: the records reported as failed may still arrive
    # (a failure means "not known to be durable"; the caller re-sends, idempotently).
    producer.close(timeout=60)
    on_topic = topic_keys(settings, topic)
    acked = {(s, d.astype(date).isoformat()) for d in days[:40] for s in symbols}
    assert acked <= on_topic, "every acknowledged record is still on the topic"


def topic_keys(settings: MarketSettings, topic: str) -> set[tuple[str, str]]:
    """(symbol, trade_date) of every record on ``topic``, read from the beginning."""
    from kafka import TopicPartition

    consumer = kafka_consumer(settings, group_id=None, consumer_timeout_ms=5_000)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        values = [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()
    return {(v["symbol"], v["trade_date"]) for v in values}
