"""Signals become a stop flag; handlers are restored afterwards."""

from __future__ import annotations

import os
import signal

from market_ingest.shutdown import stop_on_signals


def test_sigterm_sets_the_stop_flag_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2.0), "SIGTERM must set the stop flag, not kill the process"
    assert signal.getsignal(signal.SIGTERM) is before
