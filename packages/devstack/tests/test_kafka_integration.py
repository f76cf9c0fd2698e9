"""Round trips through the real KRaft broker with kafka-python."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from market_devstack.kafka import kafka_java_command
from market_testing.pytest_plugin import UniqueNames

pytestmark = pytest.mark.integration

RECORDS = 1_000


@pytest.fixture
def topic(kafka_bootstrap: str, unique_name: UniqueNames) -> Iterator[str]:
    name = unique_name("topic")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="devstack-tests")
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


def test_produce_consume_1000_keyed_records(kafka_bootstrap: str, topic: str) -> None:
    expected = {f"key-{i:04d}".encode(): f"value-{i}".encode() for i in range(RECORDS)}
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", compression_type="gzip", linger_ms=5
    )
    for key, value in expected.items():
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20_000,
    )
    received: list[tuple[bytes, bytes]] = []
    try:
        for message in consumer:
            received.append((message.key, message.value))
            if len(received) >= RECORDS:
                break
    finally:
        consumer.close()

    assert len(received) == RECORDS
    assert dict(received) == expected


def test_producer_performance_runs_from_broker_jars(kafka_bootstrap: str, topic: str) -> None:
    argv = kafka_java_command(
        "org.apache.kafka.tools.ProducerPerformance",
        [
            "--topic", topic, "--num-records", "2000", "--record-size", "100",
            "--throughput", "-1", "--producer-props", f"bootstrap.servers={kafka_bootstrap}",
            "acks=all",
        ],
        heap="256m",
    )  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2000 records sent" in proc.stdout
