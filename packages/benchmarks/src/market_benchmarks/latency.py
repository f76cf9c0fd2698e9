"""End-to-end latency: a produced tick → its window's row in ``mart_realtime_signals``.

The streaming job runs as the long-running service (``market-spark stream --trigger
processingTime``) on fresh topic/prefix/database names; a loop stands in for the scheduler,
loading new processed files into the stream table and running the mart as soon as the
previous pass finishes.

What is measured. A 15-minute window's row is final, and only then emitted by the append-mode
file sink, once the watermark passes the window's end; the watermark follows the newest event
time seen. Each round therefore produces the ticks of one window plus one *closing* tick whose
event time is past ``window end + watermark``, and measures from the moment Kafka acknowledged
those ticks to the moment the window's row (one per symbol) is readable in the mart. Ticks use
past event times so rounds do not wait 15 minutes of wall clock for a window to close; on a live
feed the window length plus the watermark delay come on top, by definition of the metric.
Round 0 warms everything up (JIT, dbt seed/views, table creation) and is not counted.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from snowflake.connector.errors import ProgrammingError

from market_benchmarks.pipeline import isolated_settings
from market_common.clients import ensure_topics, kafka_producer, snowflake_connection
from market_common.contracts import Tick
from market_common.identifiers import qualified
from market_common.logging import get_logger
from market_common.runtime import child_env
from market_common.settings import MarketSettings
from market_pipeline.marts import MARTS_SCHEMA, REALTIME_SIGNALS

log = get_logger(__name__)

WINDOW = timedelta(minutes=15)
READY_MARKER = "streaming queries started"


class LatencyBenchError(RuntimeError):
    """The streaming service died or a window never reached the mart within the timeout."""


@dataclass(frozen=True)
class LatencyOptions:
    rounds: int = 3
    symbols: int = 2
    ticks_per_window: int = 10
    trigger_interval: str = "2 seconds"
    watermark_s: int = 60
    round_timeout_s: float = 600.0
    startup_timeout_s: float = 600.0


@dataclass(frozen=True)
class Round:
    window_start: datetime
    acked_s: float  # produce → all acknowledged
    loaded_s: float  # acknowledged → rows in the warehouse table
    mart_s: float  # acknowledged → rows in mart_realtime_signals

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start.isoformat(),
            "produce_ack_s": round(self.acked_s, 2),
            "to_warehouse_s": round(self.loaded_s, 2),
            "to_mart_s": round(self.mart_s, 2),
        }


def window_ticks(
    symbols: list[str], start: datetime, *, per_window: int, watermark_s: int
) -> list[Tick]:
    """Ticks spread over ``[start, start + 15 min)`` and one closing tick past the watermark."""
    step = WINDOW / per_window
    ticks = [
        Tick(symbol=s, ts=start + i * step, price=100.0 + n + i / 10, volume=100 + i)
        for n, s in enumerate(symbols)
        for i in range(per_window)
    ]
    closing = start + WINDOW + timedelta(seconds=watermark_s + 5)
    return [*ticks, Tick(symbol=symbols[0], ts=closing, price=100.0, volume=1)]


class LatencyBench:
    """One streaming service plus the load → mart loop, on names of its own."""

    def __init__(
        self,
        settings: MarketSettings,
        options: LatencyOptions,
        *,
        log_dir: Path,
        python: str = sys.executable,
    ) -> None:
        tag = f"latency-{uuid.uuid4().hex[:8]}"
        self.settings = isolated_settings(settings, tag).model_copy(
            update={"symbols": settings.symbols[: options.symbols]}
        )
        self.options = options
        self.python = python
        self.log_path = log_dir / f"{tag}-stream.log"
        self.process: subprocess.Popen[str] | None = None
        self.dbt_ready = False

    # ------------------------------------------------------------------ the service

    def start_stream(self) -> None:
        o = self.options
        ensure_topics(self.settings, [self.settings.kafka.realtime_topic])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [self.python, "-m", "market_spark", "stream", "--trigger", "processingTime",
                "--interval", o.trigger_interval, "--watermark", f"{o.watermark_s} seconds"]  # fmt: skip
        with self.log_path.open("w") as log_file:
            self.process = subprocess.Popen(
                argv,
                env=child_env(settings=self.settings),
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                text=True,
            )
        deadline = time.monotonic() + o.startup_timeout_s
        while READY_MARKER not in self.log_path.read_text():
            self._check_alive()
            if time.monotonic() > deadline:
                raise LatencyBenchError(f"stream not started after {o.startup_timeout_s:.0f}s")
            time.sleep(0.5)

    def stop_stream(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # stops after the current batch
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = "\n".join(self.log_path.read_text().splitlines()[-15:])
            raise LatencyBenchError(
                f"streaming service exited with {self.process.returncode} ({self.log_path}):\n{tail}"
            )

    # ------------------------------------------------------------------ one round

    def _rows(self, relation: str, column: str, window_start: datetime) -> int:
        conn = snowflake_connection(self.settings)
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(
                    f"select count(distinct symbol) from {relation} where {column} = %s",  # noqa: S608
                    (window_start.replace(tzinfo=None),),
                )
            except ProgrammingError:  # the table appears with the first load / dbt run
                return 0
            row = cursor.fetchone()
            return int(row[0]) if row else 0
        finally:
            conn.close()

    def _run_mart(self) -> None:
        from market_dbt.runner import DbtRunner

        runner = DbtRunner.from_settings(self.settings)
        if self.dbt_ready:
            runner.invoke("run", "--select", REALTIME_SIGNALS)
        else:  # first pass: the ticker seed and the staging view the mart reads
            runner.invoke(
                "build", "--select", f"+{REALTIME_SIGNALS}", "--exclude", "test_type:data"
            )
            self.dbt_ready = True

    def run_round(self, window_start: datetime) -> Round:
        from market_loaders.loader import load_realtime

        o, sf = self.options, self.settings.snowflake
        ticks = window_ticks(
            self.settings.symbols,
            window_start,
            per_window=o.ticks_per_window,
            watermark_s=o.watermark_s,
        )
        producer = kafka_producer(self.settings)
        started = time.monotonic()
        try:
            for tick in ticks:
                producer.send(
                    self.settings.kafka.realtime_topic, tick.to_json(), key=tick.symbol.encode()
                )
            producer.flush()
        finally:
            producer.close()
        acked = time.monotonic()
        table = qualified(sf.stream_database, sf.schema_, sf.stream_table)
        mart = qualified(sf.batch_database, MARTS_SCHEMA, REALTIME_SIGNALS.upper())
        wanted = len(self.settings.symbols)
        loaded_at = None
        deadline = acked + o.round_timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            load_realtime(self.settings)
            if loaded_at is None and self._rows(table, "WINDOW_START", window_start) >= wanted:
                loaded_at = time.monotonic()
            if loaded_at is not None:
                self._run_mart()
                if self._rows(mart, "window_start_at", window_start) >= wanted:
                    done = time.monotonic()
                    return Round(window_start, acked - started, loaded_at - acked, done - acked)
            else:
                time.sleep(0.5)
        raise LatencyBenchError(
            f"window {window_start:%H:%M} not in {mart} after {o.round_timeout_s:.0f}s"
        )


def measure(
    settings: MarketSettings, options: LatencyOptions | None = None, *, log_dir: Path
) -> dict[str, Any]:
    """Warm-up round + ``options.rounds`` measured rounds; medians and every round."""
    options = options or LatencyOptions()
    bench = LatencyBench(settings, options, log_dir=log_dir)
    # Windows two apart, so each round's closing tick lands in a window no round reuses.
    day = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0) - timedelta(days=1)
    rounds: list[Round] = []
    bench.start_stream()
    try:
        for i in range(options.rounds + 1):
            outcome = bench.run_round(day + 2 * i * WINDOW)
            log.info("latency round", extra={"round": i, **outcome.as_dict()})
            if i > 0:
                rounds.append(outcome)
    finally:
        bench.stop_stream()
    return {
        "definition": (
            "Kafka ack of the ticks that complete a 15-minute window → that window's rows "
            "readable in mart_realtime_signals; streaming job with the processingTime trigger "
            f"({options.trigger_interval}), watermark {options.watermark_s} s, loader + "
            "`dbt run` of the mart in a loop. On a live feed the window length and the "
            "watermark delay come on top."
        ),
        "median_s": round(statistics.median(r.mart_s for r in rounds), 2),
        "median_to_warehouse_s": round(statistics.median(r.loaded_s for r in rounds), 2),
        "rounds": [r.as_dict() for r in rounds],
        "symbols": len(bench.settings.symbols),
        "trigger_interval": options.trigger_interval,
        "watermark_s": options.watermark_s,
    }
