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
  window and every dead letter below the offset was acknowledged by the DLQ. A dead letter
  whose send failed is re-sent (retry policy of :mod:`market_common.retry`) and the commit
  stops short of it until it is acknowledged, so a DLQ outage delays commits but never
  loses a dead letter. The bookkeeping lives in :mod:`market_ingest.offsets`.
* The window size is stored in the commit metadata; a partition keeps the size it was
  committed with, so runs with different ``window_rows`` write the same keys.
* On (re)assignment a partition is rewound from its committed offset ``c`` to the start
  of its window, ``floor(c / W) * W``, so a provisional window is re-read and rewritten
  whole. Malformed records below ``c`` were already dead-lettered and are not sent again.
* Resetting the group to the beginning re-reads everything and rewrites the same keys:
  the raw zone still holds each offset once (the DLQ may then get repeats, which carry
  topic/partition/offset for de-duplication). A reset drops the commit metadata, so the
  next run may use another ``window_rows``: writing a window then removes its offsets from
  the overlapping objects of the other size (after the new object is written and before
  the commit, so a crash in between leaves repeats that the rewrite removes, never gaps).
* Every value is judged on its own bytes (:func:`market_ingest.records.decode_values`):
  whatever arrives ends as one raw row at its own offset or one dead letter, never a crash.

Failures of the services around it do not end a long-running consumer:

* Kafka unreachable (broker restart, coordinator moving): polls, commits and offset
  look-ups that fail with a transient error are retried with jittered exponential backoff; a commit
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

import functools
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq

from market_common.clients import ensure_topics, kafka_consumer, kafka_producer, s3_client
from market_common.contracts import ContractPolicy, control_kind
from market_common.logging import get_logger
from market_common.retry import Backoff, retry
from market_common.settings import MarketSettings
from market_ingest.errors import DeadLetterUnacknowledgedError, RawWriteError
from market_ingest.offsets import Letter, PartitionBook, Window, window_rows_from
from market_ingest.rawzone import (
    STREAM_KIND,
    Stream,
    objects_prefix,
    parquet_bytes,
    split_by_partition,
    to_table,
    window_in_key,
    window_of,
    without_offsets,
)
from market_ingest.records import dead_letter_json, decode_values

log = get_logger(__name__)

ConsumerKind = Literal["batch", "realtime"]
STREAM_OF: dict[str, Stream] = {"batch": "historical", "realtime": "realtime"}
DEFAULT_WINDOW_ROWS: dict[str, int] = {"batch": 100_000, "realtime": 50_000}
# Backoff (market_common.retry's policy) while Kafka or the object store is unreachable.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# Object listings kept per run (see RawZoneConsumer._objects_below).
LISTED_PREFIXES_MAX = 512


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


@dataclass
class ConsumeResult:
    """What one consumer run did; ``ok`` is False if anything could not be delivered."""

    kind: str
    topic: str
    group: str
    messages: int = 0
    rows_written: int = 0  # net rows added to the raw zone (rewrites not double-counted)
    dead_lettered: int = 0
    dlq_failed: int = 0  # dead letters still unacknowledged at the end (offsets uncommitted)
    dlq_resends: int = 0  # dead letters re-sent after a failed delivery
    objects_written: int = 0
    bytes_written: int = 0
    committed: dict[int, int] = field(default_factory=dict)
    stopped_by: str = ""
    kafka_retries: int = 0  # transient Kafka errors ridden out (broker restarts, …)
    write_retries: int = 0  # flushes that failed because the object store was unreachable
    write_failed: bool = False  # stopped while the object store was unreachable
    superseded_rows_removed: int = 0  # rows of windows of another size rewritten away
    control_records: int = 0  # control records (e.g. SessionClose) read and skipped
    elapsed_s: float = 0.0
    keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.dlq_failed == 0 and not self.write_failed

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.elapsed_s if self.elapsed_s else 0.0


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
        on_progress: Callable[[ConsumeResult], None] | None = None,
    ) -> None:
        self.settings = settings
        # Called with the running result after every poll (a CLI's progress display).
        self.on_progress = on_progress
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
        self.partitions: dict[int, PartitionBook] = {}
        self.result = ConsumeResult(kind=kind, topic=self.topic, group=self.group)
        self._pending: set[Any] = set()
        self._write_blocked = False  # the last flush could not write: partitions paused
        self._listed: dict[str, dict[str, tuple[int, int]]] = {}  # see _objects_below

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
            meta = self.consumer.committed(tp, metadata=True)
            if meta is None:
                self.partitions[tp.partition] = PartitionBook(self.window_rows, dlq_floor=0)
                self.consumer.seek_to_beginning(tp)
            else:
                committed = meta.offset
                rows = window_rows_from(meta.metadata, self.window_rows)
                if rows != self.window_rows:
                    log.warning(
                        "partition keeps the window size it was committed with",
                        extra={"partition": tp.partition, "window_rows": rows,
                               "requested": self.window_rows},
                    )  # fmt: skip
                start, _ = window_of(committed, rows)
                self.consumer.seek(tp, start)
                self.partitions[tp.partition] = PartitionBook(
                    rows, dlq_floor=committed, committed=committed
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
        window_ids = offsets // state.window_rows
        for wid in np.unique(window_ids).tolist():
            sel = np.flatnonzero(window_ids == wid)
            self._handle_window(
                partition, state, int(wid), [records[i] for i in sel.tolist()], ingested_at
            )

    def _handle_window(
        self,
        partition: int,
        state: PartitionBook,
        wid: int,
        records: list[Any],
        ingested_at: datetime,
    ) -> None:
        window = state.window(wid)
        # Control records keep their offsets in the window (committed past like any record)
        # but are not data: neither archived nor dead-lettered.
        last_offset = records[-1].offset
        data = [r for r in records if control_kind(r.headers) is None]
        self.result.control_records += len(records) - len(data)
        records = data
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
            value = dead_letter_json(
                reject,
                kind=self.record_kind,
                stage="consumer",
                source=f"kafka:{self.topic}",
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
            )
            state.unacked[rec.offset] = Letter(rec.key, value, self._send_letter(rec.key, value))
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
        window.max_offset = max(window.max_offset, last_offset)
        window.dirty = True

    def _send_letter(self, key: bytes | None, value: bytes) -> Any:
        return self.dlq.send(self.settings.kafka.dlq_topic, key=key, value=value)

    def _settle_letters(self) -> int:
        """After a DLQ flush: forget acknowledged letters, re-send failed ones; how many
        were re-sent (they stay unacknowledged, so the commit stops short of them)."""
        resent = 0
        for book in self.partitions.values():
            for offset, letter in list(book.unacked.items()):
                if not letter.future.is_done:
                    continue
                if letter.future.succeeded():
                    del book.unacked[offset]
                    continue
                log.warning(
                    "dead-letter delivery failed, re-sending",
                    extra={"offset": offset, "error": str(letter.future.exception)[:200]},
                )
                letter.future = self._send_letter(letter.key, letter.value)
                resent += 1
        self.result.dlq_resends += resent
        return resent

    def _deliver_dead_letters(self) -> None:
        """Flush the DLQ producer until every dead letter is acknowledged, a few attempts
        with backoff; letters still failing stay unacknowledged for the next flush."""

        def attempt() -> None:
            self.dlq.flush()
            resent = self._settle_letters()
            if resent:
                raise DeadLetterUnacknowledgedError(
                    f"{resent} dead letters were not acknowledged by "
                    f"{self.settings.kafka.dlq_topic}; their offsets stay uncommitted"
                )

        try:
            retry(
                attempt,
                attempts=3,
                base_delay=0.2,
                retry_on=(DeadLetterUnacknowledgedError,),
                sleep=self.stop.wait,
                what="dead-letter delivery",
            )
        except DeadLetterUnacknowledgedError as exc:
            log.error(str(exc))

    # ------------------------------------------------------------------ writing

    def _store(self, what: str, key: str, call: Callable[[], Any]) -> Any:
        # boto3 already retries each request; a short retry here covers a blip, and a
        # longer outage is ridden out by the run loop (paused partitions, backoff).
        try:
            return retry(call, attempts=2, what=f"raw {what}")
        except Exception as exc:
            raise RawWriteError(
                f"could not {what} s3://{self.bucket}/{key}: {exc}. Offsets were not "
                "committed; the flush is retried with backoff (or, after a stop, the consumer "
                "resumes from the last committed window)."
            ) from exc

    def _put(self, key: str, body: bytes) -> None:
        self._store(
            "write", key, lambda: self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        )

    def _write_window(self, partition: int, window: Window) -> None:
        table = window.table()
        if table is None:
            return
        removed = 0
        for hive_path, part in split_by_partition(self.stream, table):
            prefix = objects_prefix(
                self.raw_prefix, self.stream, hive_path, topic=self.topic, partition=partition
            )
            key = f"{prefix}{window.first:020d}-{window.last:020d}.parquet"
            body = parquet_bytes(part.sort_by("kafka_offset"))
            self._put(key, body)
            self.result.objects_written += 1
            self.result.bytes_written += len(body)
            self.result.keys.append(key)
            # Only after the new object exists: a crash in between leaves repeats (removed
            # when the uncommitted window is rewritten), never a gap.
            removed += self._remove_superseded(prefix, key, window)
        # Counted once every object is written (a failed flush is retried whole); rewrites
        # replace earlier provisional objects, so only the new rows count.
        self.result.rows_written += table.num_rows - window.written_rows - removed
        self.result.superseded_rows_removed += removed
        window.written_rows = table.num_rows

    def _objects_below(self, prefix: str) -> dict[str, tuple[int, int]]:
        """Objects under ``prefix`` and their offset windows, listed once per run.

        Only this consumer writes its partitions while it owns them (a zombie is the
        documented exception), so the listing stays true as long as it is updated with
        every object written or deleted. A long-running realtime consumer meets a new
        ``hour=`` prefix every hour: past :data:`LISTED_PREFIXES_MAX` the cache starts over
        (one more LIST per prefix, memory bounded).
        """
        known = self._listed.get(prefix)
        if known is None:
            if len(self._listed) >= LISTED_PREFIXES_MAX:
                self._listed.clear()
            paginator = self.s3.get_paginator("list_objects_v2")
            pages = self._store(
                "list", prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))
            )
            known = {}
            for obj in (o for page in pages for o in page.get("Contents", [])):
                span = window_in_key(obj["Key"], prefix)
                if span is not None:
                    known[obj["Key"]] = span
            self._listed[prefix] = known
        return known

    def _remove_superseded(self, prefix: str, key: str, window: Window) -> int:
        """Remove ``window``'s offsets from the objects of other window sizes that overlap
        it (left by runs with another ``window_rows``, see :mod:`market_ingest.rawzone`);
        returns how many rows were removed."""
        known = self._objects_below(prefix)
        known[key] = (window.first, window.last)
        removed = 0
        for other, (first, last) in sorted(known.items()):
            if other == key or last < window.first or first > window.last:
                continue
            table = pq.read_table(io.BytesIO(self._read(other)))
            kept = without_offsets(table, window.first, window.last)
            if kept.num_rows == table.num_rows:
                continue
            if kept.num_rows:
                self._put(other, parquet_bytes(kept))
            else:
                delete = functools.partial(self.s3.delete_object, Bucket=self.bucket, Key=other)
                self._store("delete", other, delete)
                del known[other]
            removed += table.num_rows - kept.num_rows
            log.info(
                "removed rows superseded by a window of another size",
                extra={"object": other, "rows": table.num_rows - kept.num_rows},
            )
        return removed

    def _read(self, key: str) -> bytes:
        def get() -> bytes:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

        return bytes(self._store("read", key, get))

    def _flush(self, *, positions: dict[int, int], include_open: bool) -> None:
        """Write complete (and, if ``include_open``, incomplete) windows, then commit."""
        for partition, book in self.partitions.items():
            due = book.due(positions.get(partition), include_open=include_open)
            for window, complete in list(due):
                if window.dirty:
                    self._write_window(partition, window)
                book.written(window, complete=complete)
        self._commit()

    def _commit(self) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        self._deliver_dead_letters()
        offsets = {}
        for partition, book in self.partitions.items():
            target = book.commit_target()
            if target is not None:
                tp = TopicPartition(self.topic, partition)
                offsets[tp] = OffsetAndMetadata(target, book.metadata(), -1)
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
        kafka_backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
        write_backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
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
                if self.on_progress is not None:
                    self.on_progress(self.result)
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
            self.result.dlq_failed = sum(len(b.unacked) for b in self.partitions.values())
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
        backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
        for attempt in range(1, attempts + 1):
            try:
                self._flush(positions=self._positions(), include_open=True)
                if all(p.commit_target() is None and not p.unacked
                       for p in self.partitions.values()):  # fmt: skip
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
    ``now``, ``on_progress``). ``max_messages`` is checked after each poll batch (up to ``poll_records``).
    """
    runner = RawZoneConsumer(settings, kind, stop=stop, **options)
    return runner.run(
        until_caught_up=until_caught_up, max_seconds=max_seconds, max_messages=max_messages
    )
