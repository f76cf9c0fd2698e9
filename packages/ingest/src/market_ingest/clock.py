"""Clocks for the realtime feed: simulated (instant, reproducible) or the wall clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """``now()`` and ``sleep_until()``; ``paced`` says whether sleeping takes real time."""

    paced: bool

    def now(self) -> datetime: ...

    def sleep_until(self, when: datetime, stop: threading.Event | None = None) -> None: ...


class SimulatedClock:
    """Jumps to whatever time is asked for: a 390-minute session replays in seconds."""

    paced = False

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def sleep_until(self, when: datetime, stop: threading.Event | None = None) -> None:
        self._now = max(self._now, when.astimezone(UTC))


class WallClock:
    """Real time; sleeping is interruptible through ``stop`` (SIGTERM handling)."""

    paced = True

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, when: datetime, stop: threading.Event | None = None) -> None:
        delay = (when - self.now()).total_seconds()
        if delay <= 0:
            return
        if stop is not None:
            stop.wait(delay)
        else:
            threading.Event().wait(delay)
