"""Kafka producers: validated records from a source onto the batch / realtime topics.

Records are keyed by symbol (per-symbol ordering within a partition), JSON values carry
``schema_version``. The Kafka producer comes from :func:`market_common.clients.kafka_producer`:
``acks=all`` with idempotence (supported by kafka-python 3.0.12), compression, linger and
batching. Every record passes :func:`market_ingest.records.validate_frame` first; rejects
go to the DLQ topic as ``DeadLetter`` JSON (stage ``producer``). Delivery failures are
counted through future errbacks after the final flush, and make the result not ``ok``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from market_common.clients import ensure_topics, kafka_producer
from market_common.contracts import SessionClose
from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_ingest.calendar import (
    NYSE,
    get_calendar,
    is_trading_day,
    last_completed_session,
    session_bounds,
    trading_days,
)
from market_ingest.clock import Clock, SimulatedClock, WallClock
from market_ingest.ledger import RunLedger
from market_ingest.records import MAX_RECORD_BYTES, Kind, dead_letter_json, validate_frame
from market_ingest.sources import Source, make_source
from market_ingest.universe import resolve_symbols

log = get_logger(__name__)

Progress = Callable[[int], None]


@dataclass
class ProduceResult:
    """Outcome of one producer run. ``ok`` means every record was acknowledged or DLQ'd."""

    topic: str
    source: str
    kind: str
    records: int = 0  # rows the source yielded
    sent: int = 0  # valid records handed to Kafka
    failed: int = 0  # ... of which Kafka did not acknowledge
    dead_lettered: int = 0
    dlq_failed: int = 0
    slow_rows: int = 0  # rows judged by pydantic instead of the vectorised path
    bytes_sent: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    reasons: Counter[str] = field(default_factory=Counter)
    idempotency_key: str | None = None
    already_produced: bool = False  # the key's ledger entry existed: nothing was sent
    ledger: str | None = None  # URI of the ledger entry read or written
    session_closed_at: str | None = None  # closes_at of the SessionClose sent, if any

    @property
    def acked(self) -> int:
        return self.sent - self.failed

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.dlq_failed == 0 and not self.interrupted

    @property
    def records_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "source": self.source,
            "kind": self.kind,
            "records": self.records,
            "sent": self.sent,
            "acked": self.acked,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "dlq_failed": self.dlq_failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "records_per_s": round(self.records_per_s, 1),
            "interrupted": self.interrupted,
            "top_reasons": dict(self.reasons.most_common(5)),
            "idempotency_key": self.idempotency_key,
            "already_produced": self.already_produced,
            "ledger": self.ledger,
            "session_closed_at": self.session_closed_at,
        }

    @classmethod
    def from_ledger(cls, entry: dict[str, Any], uri: str) -> ProduceResult:
        """The result a ledger entry recorded, marked ``already_produced`` (nothing sent now)."""
        s = entry["summary"]
        return cls(
            topic=s["topic"],
            source=s["source"],
            kind=s["kind"],
            records=s["records"],
            sent=s["sent"],
            failed=s["failed"],
            dead_lettered=s["dead_lettered"],
            dlq_failed=s["dlq_failed"],
            elapsed_s=s["elapsed_s"],
            reasons=Counter(s.get("top_reasons", {})),
            idempotency_key=entry["key"],
            already_produced=True,
            ledger=uri,
        )


class RecordProducer:
    """Validates frames of one record kind and sends them; ``close()`` returns the result."""

    def __init__(
        self,
        settings: MarketSettings,
        kind: Kind,
        *,
        source_name: str,
        topic: str | None = None,
        universe: Iterable[str] | None = None,
        producer: Any = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_record_bytes: int = MAX_RECORD_BYTES,
        create_topics: bool = True,
    ) -> None:
        k = settings.kafka
        self.kind = kind
        self.topic = topic or (k.batch_topic if kind == "daily_bar" else k.realtime_topic)
        self.dlq_topic = k.dlq_topic
        self.universe = frozenset(universe) if universe is not None else None
        self.now = now
        self.max_record_bytes = max_record_bytes
        self.source_name = source_name
        if create_topics:
            ensure_topics(settings, [self.topic, self.dlq_topic])
        self._own_producer = producer is None
        self.producer = producer or kafka_producer(settings)
        self.result = ProduceResult(topic=self.topic, source=source_name, kind=kind)
        self._failed = 0
        self._dlq_failed = 0
        self._started = time.perf_counter()
        self._partition_of: dict[str, tuple[bytes, int]] = {}
        self._n_partitions: list[int] | None = None

    def _on_error(self, exc: BaseException) -> None:
        if self._failed < 5:
            log.error("record not acknowledged", extra={"error": str(exc)[:200]})
        self._failed += 1

    def _on_dlq_error(self, exc: BaseException) -> None:
        log.error("dead letter not acknowledged", extra={"error": str(exc)[:200]})
        self._dlq_failed += 1

    def _route(self, symbol: str) -> tuple[bytes, int]:
        """Key bytes and partition: murmur2 like the Java/kafka-python default, cached."""
        cached = self._partition_of.get(symbol)
        if cached is None:
            from kafka.partitioner.default import murmur2

            if self._n_partitions is None:
                parts = self.producer.partitions_for(self.topic)
                self._n_partitions = sorted(parts)
            key = symbol.encode()
            idx = (murmur2(key) & 0x7FFFFFFF) % len(self._n_partitions)
            cached = self._partition_of[symbol] = (key, self._n_partitions[idx])
        return cached

    def _sender(self) -> Callable[[bytes, bytes, int], Any]:
        """``send(key, value, partition) -> future`` for this frame's valid records.

        For a kafka-python ``KafkaProducer`` whose metadata knows the topic, records go
        straight to its record accumulator, which is what ``KafkaProducer.send`` ends in.
        The profile (``market-bench ingest --profile``) showed ``send``'s per-record
        checks (header and type checks, serialisers, partitioner, size estimate, a debug
        ``str(self)``) at ~20% of the producer thread; here they hold per frame: keys and
        values are bytes, partitions come from :meth:`_route`, sizes are bounded by
        validation (a larger record still takes ``send``, which raises its own error).
        Sequence numbers for idempotence are assigned when the sender drains a batch, so
        this path keeps acks=all + idempotence as they are. Anything else (a test double,
        a transactional producer, unknown metadata) uses ``send``.
        """
        producer, topic = self.producer, self.topic

        def send(key: bytes, value: bytes, partition: int) -> Any:
            return producer.send(topic, value=value, key=key, partition=partition)

        from kafka import KafkaProducer, TopicPartition

        accumulator = getattr(producer, "_accumulator", None)
        wake = getattr(getattr(producer, "_sender", None), "wakeup", None)
        txn = getattr(producer, "_transaction_manager", None)
        metadata = getattr(producer, "_metadata", None)
        if (
            not isinstance(producer, KafkaProducer)
            or accumulator is None
            or wake is None
            or (txn is not None and txn.is_transactional())
            or metadata is None
            or metadata.partitions_for_topic(topic) is None
        ):
            return send
        append = accumulator.append
        tps = {p: TopicPartition(topic, p) for p in self._n_partitions or []}
        # Same bound as KafkaProducer._ensure_valid_record_size, with room for the record
        # and batch overhead (varints, headers, the 61-byte batch header).
        limit = producer.config["max_request_size"] - 128

        def fast(key: bytes, value: bytes, partition: int) -> Any:
            tp = tps.get(partition)
            if tp is None or len(value) + len(key) > limit:
                return send(key, value, partition)
            future, batch_is_full, new_batch, _ = append(tp, None, key, value, [])
            if batch_is_full or new_batch:
                wake()
            return future

        return fast

    def send_frame(self, frame: pd.DataFrame) -> None:
        """Validate and send one frame (rows = records); rejects go to the DLQ."""
        if frame.empty:
            return
        if "schema_version" not in frame.columns:
            from market_common.contracts import SCHEMA_VERSION

            frame = frame.assign(schema_version=SCHEMA_VERSION)
        checked = validate_frame(
            self.kind,
            frame,
            now=self.now(),
            universe=self.universe,
            max_bytes=self.max_record_bytes,
        )
        res = self.result
        res.records += len(frame)
        res.slow_rows += checked.slow_rows
        on_error, route = self._on_error, self._route
        symbols = checked.frame["symbol"].tolist()
        if symbols:
            route(symbols[0])  # the partition list, before _sender() maps it
        send = self._sender()
        nbytes = 0
        for symbol, value in zip(symbols, checked.payloads, strict=True):
            key, partition = route(symbol)
            send(key, value, partition).add_errback(on_error)
            nbytes += len(value)
        res.sent += len(checked.payloads)
        res.bytes_sent += nbytes
        for reject in checked.rejects:
            res.reasons[reject.reason.split(":")[0]] += 1
            self.producer.send(
                self.dlq_topic,
                value=dead_letter_json(
                    reject,
                    kind=self.kind,
                    stage="producer",
                    source=self.source_name,
                    topic=self.topic,
                ),
            ).add_errback(self._on_dlq_error)
        res.dead_lettered += len(checked.rejects)

    def send_control(self, record: SessionClose) -> None:
        """Send a control record to every partition, after everything sent so far (Kafka keeps
        a producer's order within a partition), so each partition's reader meets it last."""
        if self._n_partitions is None:
            self._n_partitions = sorted(self.producer.partitions_for(self.topic))
        for partition in self._n_partitions:
            self.producer.send(
                self.topic, value=record.value(), headers=record.headers(), partition=partition
            ).add_errback(self._on_error)
        self.result.session_closed_at = record.value().decode()

    def close(self, *, interrupted: bool = False, timeout_s: float = 120.0) -> ProduceResult:
        """Flush (so every future has resolved), count failures, close our producer."""
        try:
            self.producer.flush(timeout=timeout_s)
        finally:
            if self._own_producer:
                self.producer.close(timeout=timeout_s)
        res = self.result
        res.failed = self._failed
        res.dlq_failed = self._dlq_failed
        res.interrupted = interrupted
        res.elapsed_s = time.perf_counter() - self._started
        return res


def _symbols(settings: MarketSettings, symbols: Sequence[str] | None) -> list[str]:
    return resolve_symbols(symbols if symbols else settings.symbols)


def backfill_window(
    *,
    years: float | None,
    start: date | None,
    end: date | None,
    now: datetime,
    calendar: str = NYSE,
) -> tuple[date, date]:
    """``[start, end]``: ``end`` defaults to the last completed session of ``calendar``,
    ``start`` to ``years`` before it."""
    end = end or last_completed_session(now, calendar=calendar)
    if start is None:
        start = end - timedelta(days=round(365.25 * (years if years is not None else 1.0)))
    if start > end:
        raise ValueError(f"backfill start {start} is after end {end}")
    return start, end


def backfill(
    settings: MarketSettings,
    *,
    years: float | None = None,
    start: date | None = None,
    end: date | None = None,
    symbols: Sequence[str] | None = None,
    source: Source | str | None = None,
    seed: int = 42,
    topic: str | None = None,
    producer: Any = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    idempotency_key: str | None = None,
) -> ProduceResult:
    """Produce daily bars for ``symbols`` (default ``settings.symbols``) to the batch topic.

    ``source`` is a :class:`Source` or a name (default ``settings.source``). Returns when
    the source is exhausted or ``stop`` is set; the result is flushed and counted. With
    ``idempotency_key`` a key whose run already completed sends nothing (see
    :mod:`market_ingest.ledger`).
    """
    syms = _symbols(settings, symbols)
    src = _resolve_source(settings, source, seed)
    calendar = getattr(src, "calendar", NYSE)  # sources written before calendars: NYSE
    first, last = backfill_window(years=years, start=start, end=end, now=now(), calendar=calendar)

    def produce() -> ProduceResult:
        if on_total is not None:
            on_total(len(trading_days(first, last, calendar=calendar)) * len(syms))
        out = RecordProducer(
            settings,
            "daily_bar",
            source_name=src.name,
            topic=topic,
            universe=syms,
            producer=producer,
            now=now,
        )
        log.info(
            "backfill starting",
            extra={"source": src.name, "symbols": len(syms), "start": str(first), "end": str(last)},
        )
        result = _send_all(out, src.daily_bars(syms, first, last), progress=progress, stop=stop)
        log.info("backfill finished", extra=result.summary())
        return result

    arguments = {
        "start": str(first),
        "end": str(last),
        "symbols": syms,
        "source": src.name,
        "topic": topic or settings.kafka.batch_topic,
    }
    return _produce_once(settings, "backfill", idempotency_key, arguments, produce)


def _produce_once(
    settings: MarketSettings,
    command: str,
    key: str | None,
    arguments: dict[str, Any],
    produce: Callable[[], ProduceResult],
) -> ProduceResult:
    """Run ``produce`` unless ``key``'s ledger entry says it already completed.

    The entry is written only for a fully acknowledged run (``ok``): a failed or
    interrupted run leaves none, so its retry sends everything again (at least once).
    """
    if key is None:
        return produce()
    ledger = RunLedger(settings, command, key)
    entry = ledger.read()
    if entry is not None:
        if entry.get("arguments") != arguments:
            log.warning(
                "idempotency key reused with other arguments: still sending nothing",
                extra={"recorded": entry.get("arguments"), "given": arguments},
            )
        log.info(
            "idempotency key already produced: nothing sent",
            extra={"command": command, "key": key, "ledger": ledger.uri},
        )
        return ProduceResult.from_ledger(entry, ledger.uri)
    result = produce()
    result.idempotency_key = key
    if not result.ok:
        log.warning(
            "run not fully acknowledged: no ledger entry, a retry with this key sends again",
            extra={"command": command, "key": key},
        )
    elif ledger.write(arguments, result.summary()):
        result.ledger = ledger.uri
    return result


def _resolve_source(settings: MarketSettings, source: Source | str | None, seed: int) -> Source:
    """A :class:`Source` as given, or built from its name (default ``settings.source``)."""
    if isinstance(source, str | None):
        return make_source(source or settings.source, seed=seed)
    return source


def _send_all(
    out: RecordProducer,
    frames: Iterable[Any],
    *,
    progress: Progress | None,
    stop: threading.Event | None,
    finish: Callable[[RecordProducer], None] | None = None,
) -> ProduceResult:
    """Send every frame until done or ``stop`` is set, then (unless stopped) ``finish``;
    always flush and close the producer."""
    interrupted = False
    try:
        for frame in frames:
            out.send_frame(frame)
            if progress is not None:
                progress(len(frame))
            if stop is not None and stop.is_set():
                interrupted = True
                break
        if finish is not None and not interrupted:
            finish(out)
    finally:
        interrupted = interrupted or (stop is not None and stop.is_set())
        result = out.close(interrupted=interrupted)
    return result


def session_close_after(
    last_tick: datetime, *, calendar: str = NYSE, slack: timedelta = timedelta(minutes=2)
) -> SessionClose | None:
    """The :class:`SessionClose` owed after a stream whose last tick is ``last_tick``.

    Owed only when the source reached its session's close (the last tick within ``slack`` of
    it: feeds tick every second to every minute); a stream stopped mid-session owes nothing,
    because that session's later ticks may still come. ``closes_at`` is the close, or just
    past the last tick if that came later.
    """
    if last_tick.tzinfo is None:
        last_tick = last_tick.replace(tzinfo=UTC)
    day = last_tick.astimezone(get_calendar(calendar).tz).date()
    if not is_trading_day(day, calendar=calendar):
        return None
    close = session_bounds(day, calendar=calendar)[1]
    if last_tick < close - slack:
        return None
    return SessionClose(closes_at=max(close.astimezone(UTC), last_tick + timedelta(microseconds=1)))


def stream(
    settings: MarketSettings,
    *,
    session_minutes: int = 390,
    clock: Clock | str = "simulated",
    symbols: Sequence[str] | None = None,
    source: Source | str | None = None,
    seed: int = 42,
    topic: str | None = None,
    producer: Any = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    idempotency_key: str | None = None,
) -> ProduceResult:
    """Produce realtime ticks to the realtime topic for one session.

    ``clock="simulated"`` replays the last completed session as fast as possible;
    ``clock="wall"`` emits in real time from now on. ``idempotency_key``: as for
    :func:`backfill`. A stream that reached its session's close ends with a
    :class:`~market_common.contracts.SessionClose` on every partition, so the streaming job
    emits the session's last window now rather than when the next session starts.
    """
    syms = _symbols(settings, symbols)
    src = _resolve_source(settings, source, seed)
    clock_name = clock if isinstance(clock, str) else type(clock).__name__

    def produce() -> ProduceResult:
        clk = clock
        if isinstance(clk, str):
            clk = WallClock() if clk == "wall" else SimulatedClock(now())
        out = RecordProducer(
            settings,
            "tick",
            source_name=src.name,
            topic=topic,
            universe=syms,
            producer=producer,
            now=now,
        )
        frames = src.ticks(syms, clock=clk, session_minutes=session_minutes, stop=stop)
        last_tick: list[datetime] = []

        def tracked() -> Iterable[Any]:
            for frame in frames:
                if not frame.empty:
                    last_tick[:] = [pd.Timestamp(frame["ts"].max()).to_pydatetime()]
                yield frame

        def close_session(producer: RecordProducer) -> None:
            marker = session_close_after(last_tick[0], calendar=src.calendar) if last_tick else None
            if marker is not None:
                producer.send_control(marker)

        result = _send_all(out, tracked(), progress=progress, stop=stop, finish=close_session)
        log.info("stream finished", extra=result.summary())
        return result

    arguments = {
        "session_minutes": session_minutes,
        "clock": clock_name,
        "symbols": syms,
        "source": src.name,
        "topic": topic or settings.kafka.realtime_topic,
    }
    return _produce_once(settings, "stream", idempotency_key, arguments, produce)
