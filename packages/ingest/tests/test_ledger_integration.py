"""Run ledger on the local stack: a produce command sends at most once per idempotency key.

An Airflow retry of a produce task that had already succeeded runs the command again; Kafka
cannot tell those records from new ones, so the ledger must stop them before they are sent.
Topic end offsets are the evidence: they move only when records reach the broker.
"""

from __future__ import annotations

import json
import threading
from datetime import date
from typing import Any

import pytest
from typer.testing import CliRunner

from market_common.clients import kafka_consumer
from market_common.settings import MarketSettings, load_settings
from market_ingest.calendar import trading_days
from market_ingest.cli import app
from market_ingest.ledger import RunLedger
from market_ingest.producer import ProduceResult, backfill

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT"]
START, END = date(2024, 10, 1), date(2024, 12, 31)  # 64 trading days: several source frames
BARS = len(trading_days(START, END)) * len(SYMBOLS)


@pytest.fixture
def settings(local_stack: Any, unique_name: Any) -> MarketSettings:
    s = load_settings()
    s.kafka.batch_topic = unique_name("batch")
    s.kafka.realtime_topic = unique_name("rt")
    s.kafka.dlq_topic = unique_name("dlq")
    s.s3.checkpoint_prefix = f"it-ingest/{unique_name('ledger')}/checkpoints"
    return s


def end_offsets(settings: MarketSettings, topic: str) -> dict[int, int]:
    from kafka import TopicPartition

    consumer = kafka_consumer(settings, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def run_backfill(settings: MarketSettings, key: str, **kwargs: Any) -> ProduceResult:
    return backfill(settings, start=START, end=END, symbols=SYMBOLS, idempotency_key=key, **kwargs)


def test_backfill_sends_once_per_key(settings: MarketSettings, s3_client: Any) -> None:
    topic = settings.kafka.batch_topic
    first = run_backfill(settings, "batch_dag/scheduled__2024-12-31/fetch")
    assert first.ok and not first.already_produced
    assert first.sent == first.records == BARS, "every bar sent"
    ends = end_offsets(settings, topic)
    assert sum(ends.values()) == first.sent

    ledger = RunLedger(settings, "backfill", "batch_dag/scheduled__2024-12-31/fetch")
    assert ledger.object_key.startswith(f"{settings.s3.checkpoint_prefix}/ingest-ledger/backfill/")
    assert first.ledger == ledger.uri, "the result names its ledger entry"
    body = s3_client.get_object(Bucket=settings.s3.bucket, Key=ledger.object_key)["Body"].read()
    entry = json.loads(body)
    assert entry["key"] == "batch_dag/scheduled__2024-12-31/fetch"
    assert entry["command"] == "backfill"
    assert entry["arguments"] == {
        "start": "2024-10-01",
        "end": "2024-12-31",
        "symbols": SYMBOLS,
        "source": "synthetic",
        "topic": topic,
    }
    assert entry["summary"]["acked"] == first.sent and entry["produced_at"]

    again = run_backfill(settings, "batch_dag/scheduled__2024-12-31/fetch")
    assert again.ok and again.already_produced, "the retry finds the ledger entry"
    assert end_offsets(settings, topic) == ends, "the retry sent nothing"
    counts = ("topic", "records", "sent", "acked", "failed", "dead_lettered", "idempotency_key")
    assert {k: again.summary()[k] for k in counts} == {
        k: first.summary()[k] for k in counts
    }, "the retry reports the recorded summary"

    other = run_backfill(settings, "batch_dag/scheduled__2025-01-01/fetch")
    assert other.ok and not other.already_produced and other.sent == first.sent
    assert sum(end_offsets(settings, topic).values()) == 2 * first.sent, "another key sends"


def test_interrupted_run_writes_no_ledger_and_its_retry_sends_everything(
    settings: MarketSettings,
) -> None:
    """At least once across a failure: a partial run is not recorded, so the retry re-sends
    (the overlap is for downstream dedup), and only the complete retry is recorded."""
    topic, key = settings.kafka.batch_topic, "batch_dag/manual__1/fetch"
    stop = threading.Event()
    partial = run_backfill(settings, key, stop=stop, progress=lambda _n: stop.set())
    assert partial.interrupted and not partial.ok, "stopped after the first frame"
    assert 0 < partial.sent < BARS
    assert partial.ledger is None and RunLedger(settings, "backfill", key).read() is None
    assert sum(end_offsets(settings, topic).values()) == partial.sent

    retry = run_backfill(settings, key)
    assert retry.ok and not retry.already_produced and retry.sent == BARS
    assert sum(end_offsets(settings, topic).values()) == partial.sent + retry.sent
    assert RunLedger(settings, "backfill", key).read() is not None, "the complete run is recorded"


def test_stream_cli_second_call_prints_the_recorded_summary_and_sends_nothing(
    settings: MarketSettings,
) -> None:
    topic = settings.kafka.realtime_topic
    env = {
        "MARKET_KAFKA__REALTIME_TOPIC": topic,
        "MARKET_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
        "MARKET_S3__CHECKPOINT_PREFIX": settings.s3.checkpoint_prefix,
    }
    args = [
        "stream", "--session-minutes", "5", "--clock", "simulated",
        "--symbols", ",".join(SYMBOLS), "--idempotency-key", "stream_dag/manual__1/collect",
    ]  # fmt: skip
    runner = CliRunner()

    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    once = json.loads(first.stdout.strip().splitlines()[-1])
    assert once["sent"] > 0 and once["already_produced"] is False
    ends = end_offsets(settings, topic)
    assert sum(ends.values()) == once["sent"]

    second = runner.invoke(app, args, env=env)
    assert second.exit_code == 0, second.output
    twice = json.loads(second.stdout.strip().splitlines()[-1])
    assert twice["already_produced"] is True and twice["sent"] == once["sent"]
    assert "already produced" in second.stderr
    assert end_offsets(settings, topic) == ends, "the second call sent nothing"
