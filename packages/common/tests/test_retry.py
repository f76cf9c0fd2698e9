from __future__ import annotations

import pytest

from market_common.retry import Backoff, retry


class Refused(ConnectionError):
    """Stands for an error that will not get better (e.g. credentials rejected)."""


def test_give_up_on_propagates_at_once() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def refused() -> None:
        calls.append(1)
        raise Refused("no")

    with pytest.raises(Refused):
        retry(refused, attempts=5, retry_on=(ConnectionError,), give_up_on=(Refused,),
              sleep=sleeps.append)  # fmt: skip
    assert calls == [1] and sleeps == []


def test_errors_outside_retry_on_propagate_at_once() -> None:
    sleeps: list[float] = []

    def bug() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        retry(bug, attempts=5, retry_on=(ConnectionError,), sleep=sleeps.append)
    assert sleeps == []


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    delays = [backoff.next() for _ in range(8)]
    for i, delay in enumerate(delays):
        assert min(0.5 * 2**i, 4.0) <= delay <= min(0.5 * 2**i + 0.5, 4.0), (i, delays)
    # Jitter: many consumers restarting at once do not all wait the same time.
    assert len({round(Backoff(first=0.5).next(), 6) for _ in range(20)}) > 1
    backoff.reset()
    assert backoff.next() <= 1.0
