"""Turn SIGTERM/SIGINT into a stop flag so loops can flush, commit and close cleanly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from market_common.logging import get_logger

log = get_logger(__name__)


@contextmanager
def stop_on_signals(stop: threading.Event | None = None) -> Iterator[threading.Event]:
    """Set ``stop`` on SIGTERM/SIGINT while the block runs; a second signal exits hard.

    Outside the main thread (e.g. inside an Airflow worker thread) handlers cannot be
    installed; the event is still returned so callers can set it themselves.
    """
    stop = stop or threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # second signal: the user really means it
        log.warning(
            "signal received, finishing cleanly", extra={"signal": signal.Signals(signum).name}
        )
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
