"""Fault tests of ingestion: a broker restart and an object-store outage lose and duplicate nothing.

The service that is broken runs privately (its own state dir and ports, see
``market_testing.pytest_plugin.PrivateStack``); the other one is the shared stack's, under
names unique to the test. Each test asserts counts and a checksum of the record keys.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market_common.clients import kafka_consumer
from market_common.clients import s3_client as make_s3_client
from market_common.settings import MarketSettings
from market_ingest.calendar import trading_days
from market_ingest.consumer import ConsumeResult, RawZoneConsumer
from market_ingest.producer import ProduceResult, backfill
from market_ingest.sources.synthetic import SyntheticSource
from market_ingest.universe import benchmark_universe
from market_testing.pytest_plugin import PrivateStack, UniqueNames

pytestmark = pytest.mark.integration

SEED = 11
END = date(2024, 12, 31)
WAIT_S = 90.0  # bound on waits for the pipeline to catch up (never asserted as a speed)


def key_checksum(keys: Sequence[tuple[Any, ...]]) -> str:
    """Order-independent digest of record keys (duplicates change it)."""
    return hashlib.sha256(repr(sorted(keys)).encode()).hexdigest()


def expected_keys(symbols: list[str], start: date) -> list[tuple[str, date]]:
    frame = SyntheticSource(seed=SEED).daily_frame(symbols, start, END)
    return list(zip(frame["symbol"], frame["trade_date"].dt.date, strict=True))


def raw_table(s3: Any, settings: MarketSettings) -> pa.Table:
    """Every row of the test's raw/historical objects."""
    prefix = f"{settings.s3.raw_prefix}/historical/"
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.s3.bucket, Prefix=prefix
        )
        for o in page.get("Contents", [])
    ]
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=settings.s3.bucket, Key=k)["Body"].read()))
        for k in sorted(keys)
    ]
    return pa.concat_tables(tables) if tables else pa.table({"symbol": pa.array([], pa.string())})


def assert_raw_exactly(s3: Any, settings: MarketSettings, expected: list[tuple[str, date]]) -> None:
    """Raw holds each expected record once: count, key checksum and one row per offset."""
    table = raw_table(s3, settings)
    keys = list(
        zip(table.column("symbol").to_pylist(), table.column("trade_date").to_pylist(), strict=True)
    )
    offsets = set(
        zip(
            table.column("kafka_partition").to_pylist(),
            table.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )
    assert table.num_rows == len(expected), "raw row count equals the records produced"
    assert len(offsets) == table.num_rows, "no Kafka offset is in raw twice"
    assert key_checksum(keys) == key_checksum(expected), "raw keys are exactly the produced keys"


def topic_message_count(settings: MarketSettings, topic: str) -> int:
    consumer = kafka_consumer(settings, group_id=None)
    try:
        from kafka import TopicPartition

        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        starts = consumer.beginning_offsets(parts)
        return sum(ends[tp] - starts[tp] for tp in parts)
    finally:
        consumer.close()


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout_s: float = WAIT_S,
    state: Callable[[], object] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"gave up after {timeout_s:.0f}s waiting for {what}; state: {state()}")


def committed_offsets(settings: MarketSettings, topic: str, group: str) -> dict[int, int]:
    """The group's committed offset per partition as the broker stores them (0 if none)."""
    from kafka import TopicPartition

    # A plain group member that never subscribes reads the offsets without joining.
    reader = kafka_consumer(settings, group_id=group, request_timeout_ms=5000)
    try:
        parts = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        return {tp.partition: reader.committed(tp) or 0 for tp in parts}
    finally:
        reader.close(autocommit=False)


def group_caught_up(settings: MarketSettings, topic: str, group: str) -> bool:
    """The group's committed offsets reached every partition's end offset."""
    from kafka import TopicPartition

    try:
        committed = committed_offsets(settings, topic, group)
        reader = kafka_consumer(settings, group_id=None, request_timeout_ms=5000)
        try:
            ends = reader.end_offsets([TopicPartition(topic, p) for p in committed])
        finally:
            reader.close()
    except Exception:  # the broker may still be coming back: not caught up yet
        return False
    # A partition that never received a record has nothing to commit (end offset 0).
    return bool(ends) and all(committed[tp.partition] == end for tp, end in ends.items())


class ConsumerThread:
    """A long-running raw-zone consumer in a thread; ``stop()`` ends it like SIGTERM would."""

    def __init__(self, settings: MarketSettings, **options: Any) -> None:
        self.stop_event = threading.Event()
        self.result: ConsumeResult | None = None
        self.error: BaseException | None = None
        self.consumer = RawZoneConsumer(settings, "batch", stop=self.stop_event, **options)
        self.thread = threading.Thread(target=self._run, name="raw-consumer", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.consumer.run(until_caught_up=False)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> ConsumerThread:
        self.thread.start()
        return self

    def dead(self) -> bool:
        """The thread ended on its own (a crash): ``stop()`` then reports the error."""
        return not self.thread.is_alive()

    def stop(self) -> ConsumeResult:
        self.stop_event.set()
        self.thread.join(timeout=WAIT_S)
        assert not self.thread.is_alive(), "the consumer stopped when asked"
        if self.error is not None:
            trace = "".join(traceback.format_exception(self.error))
            raise AssertionError(f"the consumer did not survive the fault:\n{trace}")
        assert self.result is not None
        return self.result


class PhasedSource:
    """Synthetic bars in small frames with a hook before each frame.

    The hook lets the test break a service at a chosen frame, so some records are sent
    before, some during and some after the outage, whatever the machine's speed.
    """

    name = "synthetic"

    def __init__(self, before_frame: Callable[[int], None]) -> None:
        self.inner = SyntheticSource(seed=SEED, chunk_days=5)
        self.before_frame = before_frame

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> Iterator[pd.DataFrame]:
        for i, frame in enumerate(self.inner.daily_bars(symbols, start, end)):
            self.before_frame(i)
            yield frame

    def ticks(self, *args: Any, **kwargs: Any) -> Iterator[pd.DataFrame]:
        raise NotImplementedError("batch fault tests only")


@pytest.fixture
def names(unique_name: UniqueNames) -> UniqueNames:
    return unique_name


def isolated(settings: MarketSettings, names: UniqueNames) -> MarketSettings:
    s = settings.model_copy(deep=True)
    s.kafka.batch_topic = names("batch")
    s.kafka.dlq_topic = names("dlq")
    s.kafka.batch_group = names("gb")
    s.s3.raw_prefix = f"it-faults/{names('raw')}/raw"
    return s


def test_broker_restart_while_producing_and_consuming_keeps_raw_exact(
    local_stack: Any, private_stack: PrivateStack, s3_client: Any, names: UniqueNames
) -> None:
    """Kafka stops and starts (same data dir) mid-run: every record lands in raw exactly once.

    Proves the idempotent producer re-sends what the broker did not acknowledge without
    duplicating it, and that the consumer rides out the outage (no crash, no lost or
    repeated offsets) and commits only what is in raw.
    """
    kafka = private_stack.up("kafka")
    settings = isolated(local_stack.settings, names)
    settings.kafka.bootstrap_servers = kafka.kafka_bootstrap
    symbols = benchmark_universe(10, seed=5)
    start = trading_days(date(2020, 1, 1), END)[-400].astype(date)
    expected = expected_keys(symbols, start)

    broker_down, broker_back = threading.Event(), threading.Event()
    restart_error: list[BaseException] = []

    def restart() -> None:
        try:
            private_stack.stop("kafka")
            broker_down.set()
            private_stack.start("kafka")
        except BaseException as exc:  # asserted below
            restart_error.append(exc)
        finally:
            broker_down.set()
            broker_back.set()

    def before_frame(i: int) -> None:
        if i == 10:  # after ~10% of the records: take the broker away
            threading.Thread(target=restart, name="kafka-restart", daemon=True).start()
            broker_down.wait(WAIT_S)
        elif i == 40:  # frames 10..39 were sent while the broker was down
            broker_back.wait(WAIT_S)

    consumer = ConsumerThread(settings, window_rows=1_000, flush_seconds=1.0).start()
    produced: ProduceResult = backfill(
        settings, start=start, end=END, symbols=symbols, source=PhasedSource(before_frame)
    )
    assert not restart_error, f"the private broker restarted: {restart_error}"
    assert produced.ok and produced.acked == len(expected), produced.summary()
    assert topic_message_count(settings, settings.kafka.batch_topic) == len(
        expected
    ), "the idempotent producer wrote every record to the topic once"

    wait_until(
        lambda: consumer.dead()
        or group_caught_up(settings, settings.kafka.batch_topic, settings.kafka.batch_group),
        "the consumer to commit the end of every partition",
        state=lambda: consumer.consumer.result,
    )
    result = consumer.stop()
    assert result.dlq_failed == 0 and result.dead_lettered == 0
    assert_raw_exactly(s3_client, settings, expected)


def test_object_store_down_during_flush_commits_nothing_and_loses_nothing(
    local_stack: Any, private_stack: PrivateStack, names: UniqueNames
) -> None:
    """MinIO stops while the consumer writes a window: no commit, backoff, then exactly once.

    The store is stopped from inside the consumer's own ``PutObject`` call, so the outage
    always hits a flush in progress. While it lasts the consumer must stay up, commit no
    offset, and retry; once the store is back, raw holds every record once.
    """
    minio = private_stack.up("minio")
    settings = isolated(local_stack.settings, names)
    settings.s3 = minio.settings.s3.model_copy()
    topic, group = settings.kafka.batch_topic, settings.kafka.batch_group
    symbols = benchmark_universe(10, seed=7)
    start = trading_days(date(2020, 1, 1), END)[-300].astype(date)
    expected = expected_keys(symbols, start)
    produced = backfill(
        settings, start=start, end=END, symbols=symbols, source="synthetic", seed=SEED
    )
    assert produced.ok and produced.acked == len(expected), produced.summary()

    s3 = make_s3_client(settings)
    at_outage: dict[int, int] = {}
    puts = 0

    def stop_store_on_third_put(**_: Any) -> None:
        nonlocal puts
        puts += 1
        if puts == 3:
            at_outage.update(committed_offsets(settings, topic, group))
            private_stack.stop("minio")

    s3.meta.events.register("before-call.s3.PutObject", stop_store_on_third_put)
    consumer = ConsumerThread(
        settings, window_rows=300, poll_records=200, flush_seconds=1.0, s3=s3
    ).start()
    wait_until(
        lambda: consumer.dead() or consumer.consumer.result.write_retries >= 2,
        "two failed flushes while the object store is down",
        state=lambda: consumer.consumer.result,
    )
    assert not consumer.dead(), "the consumer keeps running while the store is down"
    assert (
        committed_offsets(settings, topic, group) == at_outage
    ), "no offset was committed while the object store was down"

    private_stack.start("minio")
    wait_until(
        lambda: consumer.dead() or group_caught_up(settings, topic, group),
        "the consumer to commit the end of every partition after the store returned",
        state=lambda: consumer.consumer.result,
    )
    result = consumer.stop()
    assert result.write_retries >= 2 and not result.write_failed and result.ok
    assert_raw_exactly(make_s3_client(settings), settings, expected)
