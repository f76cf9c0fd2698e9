"""Kafka → raw zone consumers (batch topic → ``historical``, realtime topic → ``realtime``).

Delivery guarantee: every valid record on the topic ends up in exactly one raw object
row, under a single consumer per partition, even across crashes, restarts, rebalances
and offset resets; malformed records end up in the DLQ at least once.

How:

* Offsets are split into fixed windows ``[k*W, (k+1)*W - 1]``. A window's rows go to
  objects whose keys name the window (see :mod:`market_ingest.rawzone`), so writing a
  window again *overwrites* its objects instead of adding rows.
* A window is written when complete (a later offset was seen). On a timer
  (``flush_seconds``) and on stop the *incomplete* window is written too, under the same
  keys ("provisional"): a later write of that window is a superset and replaces it.
* Offsets are committed only after ``put_object`` returned for every object of the
  window and the DLQ producer flushed, never before.
* On (re)assignment a partition is rewound from its committed offset ``c`` to the start
  of its window, ``floor(c / W) * W``, so a provisional window is re-read and rewritten
  whole. Malformed records below ``c`` were already dead-lettered and are not sent again.
* Resetting the group to the beginning re-reads everything and rewrites the same keys:
  the raw zone still holds each offset once (the DLQ may then get repeats, which carry
  topic/partition/offset for de-duplication).

Failures of the services around it do not end a long-running consumer:

* Kafka unreachable (broker restart, coordinator moving): polls, commits and offset
  look-ups that fail with a transient error are retried with exponential backoff; a commit
  that fails is simply retried by the next flush (what is in raw stays in raw, and a
  restart would rewrite the same keys).
* Object store unreachable: ``put_object`` is retried a few times, then the consumer
  *pauses* its partitions (so memory stays bounded while heartbeats continue), commits
  nothing, and retries the flush with exponential backoff until the store is back.
  Stopping during the outage exits with ``write_failed`` set and offsets uncommitted.

Limits: two live consumers writing the same partition (a zombie after a rebalance) can
race on a provisional object; readers that need certainty de-duplicate on
``(kafka_topic, kafka_partition, kafka_offset)``, which every row carries. Memory is
bounded by ``window_rows`` rows per assigned partition (plus one poll batch).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from market_common.clients import ensure_topics, kafka_consumer, kafka_producer, retry, s3_client
from market_common.contracts import ContractPolicy
from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_ingest.errors import RawWriteError
from market_ingest.rawzone import (
    STREAM_KIND,
    Stream,
    object_key,
    parquet_bytes,
    split_by_partition,
    to_table,
    window_of,
)
from market_ingest.records import dead_letter_json, decode_values

log = get_logger(__name__)

ConsumerKind = Literal["batch", "realtime"]
STREAM_OF: dict[str, Stream] = {"batch": "historical", "realtime": "realtime"}
DEFAULT_WINDOW_ROWS: dict[str, int] = {"batch": 100_000, "realtime": 50_000}
# Backoff between attempts while Kafka or the object store is unreachable.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0


def is_transient(exc: BaseException) -> bool:
    """A Kafka error that goes away by itself: broker/coordinator unavailable, rebalance."""
    from kafka import errors

    if isinstance(
        exc,
        errors.CommitFailedError
        | errors.RebalanceInProgressError
        | errors.UnknownMemberIdError
        | errors.IllegalGenerationError,
    ):
        return True
    return isinstance(exc, errors.KafkaError) and bool(getattr(exc, "retriable", False))


class Backoff:
    """Exponential delays (``first`` doubling up to ``cap``), reset after a success."""

    def __init__(self, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> None:
        self.first, self.cap = first, cap
        self.delay = 0.0

    def next(self) -> float:
        self.delay = self.first if not self.delay else min(self.delay * 2, self.cap)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


@dataclass
class ConsumeResult:
    """What one consumer run did; ``ok`` is False if anything could not be delivered."""

    kind: str
    topic: str
    group: str
    messages: int = 0
    rows_written: int = 0  # net rows added to the raw zone (rewrites not double-counted)
    dead_lettered: int = 0
    dlq_failed: int = 0
    objects_written: int = 0
    bytes_written: int = 0
    committed: dict[int, int] = field(default_factory=dict)
    stopped_by: str = ""
    kafka_retries: int = 0  # transient Kafka errors ridden out (broker restarts, …)
    write_retries: int = 0  # flushes that failed because the object store was unreachable
    write_failed: bool = False  # stopped while the object store was unreachable
    elapsed_s: float = 0.0
    keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.dlq_failed == 0 and not self.write_failed

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class _Window:
    first: int
    last: int
    tables: list[pa.Table] = field(default_factory=list)
    max_offset: int = -1  # highest offset seen (valid or not)
    dirty: bool = False  # rows/offsets not yet covered by a write
    written_rows: int = 0  # rows already in the raw zone from this window (provisional)

    def table(self) -> pa.Table | None:
        tables = [t for t in self.tables if t.num_rows]
        return pa.concat_tables(tables) if tables else None


@dataclass
class _PartitionState:
    dlq_floor: int  # offsets below this were dead-lettered by an earlier run
    windows: dict[int, _Window] = field(default_factory=dict)
    durable: int | None = None  # next offset whose predecessors are all durable
    committed: int | None = None


class RawZoneConsumer:
    """One consumer-group member writing a topic to the raw zone (see module docstring)."""

    def __init__(
        self,
        settings: MarketSettings,
        kind: ConsumerKind,
        *,
        topic: str | None = None,
        group: str | None = None,
        window_rows: int | None = None,
        flush_seconds: float = 60.0,
        poll_records: int = 20_000,
        max_record_bytes: int | None = None,
        s3: Any = None,
        consumer: Any = None,
        dlq_producer: Any = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.kind = kind
        self.stream: Stream = STREAM_OF[kind]
        self.record_kind = STREAM_KIND[self.stream]
        k = settings.kafka
        self.topic = topic or (k.batch_topic if kind == "batch" else k.realtime_topic)
        self.group = group or (k.batch_group if kind == "batch" else k.realtime_group)
        self.window_rows = window_rows or DEFAULT_WINDOW_ROWS[kind]
        self.flush_seconds = flush_seconds
        self.poll_records = poll_records
        # The contract's limits and universe come from settings (MARKET_CONTRACTS__*).
        self.policy = ContractPolicy.from_settings(settings)
        self.max_record_bytes = max_record_bytes or self.policy.max_message_bytes
        self.now = now
        self.stop = stop or threading.Event()
        self.bucket = settings.s3.bucket
        self.raw_prefix = settings.s3.raw_prefix
        ensure_topics(settings, [self.topic, k.dlq_topic])
        self.s3 = s3 or s3_client(settings)
        self.dlq = dlq_producer or kafka_producer(settings)
        self._own_consumer = consumer is None
        self.consumer = consumer or kafka_consumer(
            settings,
            group_id=self.group,
            # Larger fetches: kafka-python's per-request overhead dominates otherwise.
            max_partition_fetch_bytes=8 * 1024 * 1024,
            max_poll_records=poll_records,
        )
        self.partitions: dict[int, _PartitionState] = {}
        self.result = ConsumeResult(kind=kind, topic=self.topic, group=self.group)
        self._dlq_errors = 0
        self._pending: set[Any] = set()
        self._write_blocked = False  # the last flush could not write: partitions paused

    # ------------------------------------------------------------------ assignment

    def _on_assigned(self, assigned: Any) -> None:
        # Runs on kafka-python's IO thread, where blocking calls are not allowed: only note
        # the partitions; _adopt_assigned() rewinds them from the main loop.
        self._pending.update(assigned)

    def _adopt_assigned(self, adopted: set[int]) -> None:
        """Rewind newly assigned partitions to their window start, adding their ids to
        ``adopted`` as it goes (so a failure half-way still tells which were rewound)."""
        # A partition leaves _pending only once rewound: a failed look-up is retried later.
        for tp in list(self._pending):
            committed = self.consumer.committed(tp)
            if committed is None:
                self.partitions[tp.partition] = _PartitionState(dlq_floor=0)
                self.consumer.seek_to_beginning(tp)
            else:
                start, _ = window_of(committed, self.window_rows)
                self.consumer.seek(tp, start)
                self.partitions[tp.partition] = _PartitionState(
                    dlq_floor=committed, committed=committed
                )
                log.info(
                    "partition assigned",
                    extra={"partition": tp.partition, "committed": committed, "rewind_to": start},
                )
            self._pending.discard(tp)
            adopted.add(tp.partition)

    def _on_revoked(self, revoked: Any) -> None:
        # Uncommitted buffers are dropped: the next owner rewinds to the window start.
        for tp in revoked:
            self.partitions.pop(tp.partition, None)
            self._pending.discard(tp)

    # ------------------------------------------------------------------ processing

    def _handle(self, partition: int, records: list[Any], ingested_at: datetime) -> None:
        state = self.partitions.get(partition)
        if state is None:  # records for a partition we no longer own
            return
        self.result.messages += len(records)
        offsets = np.fromiter((r.offset for r in records), dtype=np.int64, count=len(records))
        window_ids = offsets // self.window_rows
        for wid in np.unique(window_ids).tolist():
            sel = np.flatnonzero(window_ids == wid)
            self._handle_window(
                partition, state, int(wid), [records[i] for i in sel.tolist()], ingested_at
            )

    def _handle_window(
        self,
        partition: int,
        state: _PartitionState,
        wid: int,
        records: list[Any],
        ingested_at: datetime,
    ) -> None:
        first, last = window_of(wid * self.window_rows, self.window_rows)
        window = state.windows.setdefault(wid, _Window(first, last))
        values = [r.value if r.value is not None else b"" for r in records]
        checked = decode_values(
            self.record_kind,
            values,
            now=self.now(),
            max_bytes=self.max_record_bytes,
            universe=self.policy.universe,
            future_skew=self.policy.future_skew,
        )
        for reject in checked.rejects:
            rec = records[reject.index]
            if rec.offset < state.dlq_floor:
                continue
            self.dlq.send(
                self.settings.kafka.dlq_topic,
                key=rec.key,
                value=dead_letter_json(
                    reject,
                    kind=self.record_kind,
                    stage="consumer",
                    source=f"kafka:{self.topic}",
                    topic=rec.topic,
                    partition=rec.partition,
                    offset=rec.offset,
                ),
            ).add_errback(self._dlq_failed)
            self.result.dead_lettered += 1
        idx = checked.frame.index.to_numpy()
        table = to_table(
            self.stream,
            checked.frame,
            topic=self.topic,
            partition=partition,
            offsets=np.fromiter((records[i].offset for i in idx), dtype=np.int64, count=len(idx)),
            timestamps_ms=np.fromiter(
                (records[i].timestamp for i in idx), dtype=np.int64, count=len(idx)
            ),
            ingested_at=ingested_at,
        )
        window.tables.append(table)
        window.max_offset = max(window.max_offset, records[-1].offset)
        window.dirty = True

    def _dlq_failed(self, exc: BaseException) -> None:
        self._dlq_errors += 1
        log.error("dead-letter delivery failed", extra={"error": str(exc)[:200]})

    # ------------------------------------------------------------------ writing

    def _put(self, key: str, body: bytes) -> None:
        # boto3 already retries each request; a short retry here covers a blip, and a
        # longer outage is ridden out by the run loop (paused partitions, backoff).
        try:
            retry(
                lambda: self.s3.put_object(Bucket=self.bucket, Key=key, Body=body),
                attempts=2,
                what="raw put_object",
            )
        except Exception as exc:
            raise RawWriteError(
                f"could not write s3://{self.bucket}/{key}: {exc}. Offsets were not committed; "
                "the flush is retried with backoff (or, after a stop, the consumer resumes "
                "from the last committed window)."
            ) from exc

    def _write_window(self, partition: int, window: _Window) -> None:
        table = window.table()
        if table is None:
            return
        for hive_path, part in split_by_partition(self.stream, table):
            key = object_key(
                self.raw_prefix,
                self.stream,
                hive_path,
                topic=self.topic,
                partition=partition,
                first=window.first,
                last=window.last,
            )
            body = parquet_bytes(part.sort_by("kafka_offset"))
            self._put(key, body)
            self.result.objects_written += 1
            self.result.bytes_written += len(body)
            self.result.keys.append(key)
        # Counted once every object is written (a failed flush is retried whole); rewrites
        # replace earlier provisional objects, so only the new rows count.
        self.result.rows_written += table.num_rows - window.written_rows
        window.written_rows = table.num_rows

    def _flush(self, *, positions: dict[int, int], include_open: bool) -> None:
        """Write complete (and, if ``include_open``, incomplete) windows, then commit."""
        for partition, state in self.partitions.items():
            position = positions.get(partition)
            for wid in sorted(state.windows):
                window = state.windows[wid]
                complete = position is not None and position > window.last
                if not complete and not (include_open and window.dirty):
                    continue
                if window.dirty:
                    self._write_window(partition, window)
                    window.dirty = False
                if complete:
                    state.durable = window.last + 1
                    del state.windows[wid]
                else:
                    state.durable = window.max_offset + 1
        self._commit()

    def _commit(self) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        self.dlq.flush()
        if self._dlq_errors:
            self.result.dlq_failed += self._dlq_errors
            self._dlq_errors = 0
            log.error("not committing: some dead letters were not acknowledged")
            return
        offsets = {}
        for partition, state in self.partitions.items():
            if state.durable is not None and state.durable != state.committed:
                tp = TopicPartition(self.topic, partition)
                offsets[tp] = OffsetAndMetadata(state.durable, "", -1)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Nothing is lost: the rows are in raw and the next flush commits again.
            self.result.kafka_retries += 1
            log.warning("offset commit failed, retried later", extra={"error": str(exc)[:200]})
            return
        for tp, meta in offsets.items():
            self.partitions[tp.partition].committed = meta.offset
            self.result.committed[tp.partition] = meta.offset

    def _positions(self) -> dict[int, int]:
        out = {}
        for tp in self.consumer.assignment():
            if tp.partition in self.partitions:
                out[tp.partition] = self.consumer.position(tp)
        return out

    def _caught_up(self) -> bool:
        if self._write_blocked or self._pending:
            return False
        assignment = self.consumer.assignment()
        if not assignment:
            return False
        ends = self.consumer.end_offsets(list(assignment))
        return all(self.consumer.position(tp) >= end for tp, end in ends.items())

    # ------------------------------------------------------------------ loop

    def run(
        self,
        *,
        until_caught_up: bool = False,
        max_seconds: float | None = None,
        max_messages: int | None = None,
        assignment_timeout_s: float = 60.0,
    ) -> ConsumeResult:
        """Consume until a stop condition; always flushes, commits and closes."""
        from kafka import ConsumerRebalanceListener

        owner = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                owner._on_revoked(revoked)

            def on_partitions_assigned(self, assigned: Any) -> None:
                owner._on_assigned(assigned)

        self.consumer.subscribe([self.topic], listener=Listener())
        started = time.monotonic()
        last_flush = started
        stopped_by = "signal"
        kafka_backoff, write_backoff = Backoff(), Backoff()
        try:
            while not self.stop.is_set():
                timed = time.monotonic() - last_flush >= self.flush_seconds
                try:
                    caught_up = self._step(until_caught_up, timed=timed)
                    kafka_backoff.reset()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    self.result.kafka_retries += 1
                    delay = kafka_backoff.next()
                    log.warning(
                        "kafka unavailable, retrying",
                        extra={"error": str(exc)[:200], "retry_in_s": delay},
                    )
                    self.stop.wait(delay)
                    continue
                if timed:
                    last_flush = time.monotonic()
                if self._write_blocked:
                    self.stop.wait(write_backoff.next())
                    continue
                write_backoff.reset()
                elapsed = time.monotonic() - started
                if max_messages is not None and self.result.messages >= max_messages:
                    stopped_by = "max_messages"
                    break
                if max_seconds is not None and elapsed >= max_seconds:
                    stopped_by = "max_seconds"
                    break
                if caught_up:
                    stopped_by = "caught_up"
                    break
                if not self.consumer.assignment() and elapsed > assignment_timeout_s:
                    stopped_by = "no_assignment"
                    log.error("no partitions assigned", extra={"topic": self.topic})
                    break
            self._final_flush()
        finally:
            self.result.stopped_by = stopped_by
            self.result.elapsed_s = time.monotonic() - started
            self.close()
        return self.result

    def _step(self, until_caught_up: bool, *, timed: bool) -> bool:
        """One poll → buffer → flush of complete windows; True once caught up (if asked)."""
        batch = self.consumer.poll(timeout_ms=500, max_records=self.poll_records)
        ingested_at = self.now()
        fresh: set[int] = set()
        failed: Exception | None = None
        try:
            self._adopt_assigned(fresh)
        except Exception as exc:  # the batch must still be buffered: its offsets are consumed
            if not is_transient(exc):
                raise
            failed = exc
        # Records fetched before a rewind are read again after it.
        for tp, records in batch.items():
            if tp.partition not in fresh and tp not in self._pending:
                self._handle(tp.partition, records, ingested_at)
        if failed is not None:
            raise failed
        self._flush_or_pause(include_open=timed)
        return until_caught_up and not batch and self._caught_up()

    def _flush_or_pause(self, *, include_open: bool) -> None:
        """Flush; while the object store is unreachable pause fetching and commit nothing."""
        try:
            self._flush(positions=self._positions(), include_open=include_open)
        except RawWriteError as exc:
            self.result.write_retries += 1
            if not self._write_blocked:
                self.consumer.pause(*self.consumer.assignment())
                self._write_blocked = True
            log.warning(
                "object store unavailable, offsets not committed; retrying with backoff",
                extra={"error": str(exc)[:300], "failed_flushes": self.result.write_retries},
            )
            return
        if self._write_blocked:
            self.consumer.resume(*self.consumer.paused())
            self._write_blocked = False
            log.info("object store reachable again, resuming")

    def _final_flush(self, attempts: int = 5) -> None:
        """Write everything buffered and commit it, riding out short Kafka outages."""
        backoff = Backoff()
        for attempt in range(1, attempts + 1):
            try:
                self._flush(positions=self._positions(), include_open=True)
                if all(p.durable == p.committed for p in self.partitions.values()):
                    return
                if attempt == attempts:
                    log.warning(
                        "could not commit the last offsets: their rows are in raw and are "
                        "rewritten under the same keys on restart"
                    )
                    return
            except RawWriteError as exc:
                self.result.write_failed = True
                log.error(
                    "stopped while the object store is unreachable: the unwritten rows stay "
                    "uncommitted in Kafka and are read again on restart",
                    extra={"error": str(exc)[:300]},
                )
                return
            except Exception as exc:
                if not is_transient(exc) or attempt == attempts:
                    raise
                self.result.kafka_retries += 1
            time.sleep(backoff.next())

    def close(self) -> None:
        try:
            self.dlq.flush()
        finally:
            if self._own_consumer:
                self.consumer.close(autocommit=False)


def consume(
    settings: MarketSettings,
    kind: ConsumerKind,
    *,
    until_caught_up: bool = True,
    max_seconds: float | None = None,
    max_messages: int | None = None,
    stop: threading.Event | None = None,
    **options: Any,
) -> ConsumeResult:
    """Run one raw-zone consumer (``kind`` = ``batch`` or ``realtime``) to a stop condition.

    ``options`` go to :class:`RawZoneConsumer` (``topic``, ``group``, ``window_rows``,
    ``flush_seconds``, ``poll_records``, injected ``s3``/``consumer``/``dlq_producer``,
    ``now``). ``max_messages`` is checked after each poll batch (up to ``poll_records``).
    """
    runner = RawZoneConsumer(settings, kind, stop=stop, **options)
    return runner.run(
        until_caught_up=until_caught_up, max_seconds=max_seconds, max_messages=max_messages
    )
