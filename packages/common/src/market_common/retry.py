"""The one retry policy for transient failures: exponential backoff with jitter (tenacity).

Every client that rides out an outage (S3 puts, Snowflake connects, Yahoo downloads, the
consumer's Kafka and object-store loops) waits by this policy, so the delays are the same
everywhere and many processes retrying after one broker restart do not retry in lock-step:
attempt ``n`` waits ``min(first * 2**(n-1) + U(0, first), cap)`` seconds.

Two forms: :func:`retry` wraps a call (re-raising the last error when attempts run out);
:class:`Backoff` hands out the same delays to loops that wait by themselves (for example
``stop.wait(delay)`` so a stop signal interrupts the wait).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from market_common.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

DEFAULT_FIRST_S = 0.5
DEFAULT_CAP_S = 10.0


def wait_policy(
    first: float = DEFAULT_FIRST_S, cap: float = DEFAULT_CAP_S
) -> tenacity.wait.wait_base:
    """The policy's wait: exponential from ``first`` doubling to ``cap``, jitter ``U(0, first)``."""
    return tenacity.wait_exponential_jitter(multiplier=first, max=cap, exp_base=2, jitter=first)


def retry(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = DEFAULT_FIRST_S,
    max_delay: float = DEFAULT_CAP_S,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    give_up_on: tuple[type[BaseException], ...] = (),
    sleep: Callable[[float], object] = time.sleep,
    what: str = "operation",
) -> T:
    """Call ``fn`` up to ``attempts`` times on ``retry_on`` errors; re-raise the last one.

    Errors outside ``retry_on``, or inside ``give_up_on`` (subclasses that will not get
    better, such as an auth failure), propagate at once.
    """

    def _transient(exc: BaseException) -> bool:
        return isinstance(exc, retry_on) and not isinstance(exc, give_up_on)

    def _log(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            f"{what} failed, retrying",
            extra={
                "attempt": state.attempt_number,
                "of": attempts,
                "error": str(exc)[:200],
                "retry_in_s": round(state.upcoming_sleep, 3),
            },
        )

    def _sleep(seconds: float) -> None:
        # Any waiter will do (time.sleep, threading.Event.wait, ...): its result is ignored.
        sleep(seconds)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait_policy(base_delay, max_delay),
        retry=tenacity.retry_if_exception(_transient),
        sleep=_sleep,
        before_sleep=_log,
        reraise=True,
    )
    return retrying(fn)


class Backoff:
    """The policy's delays for a loop that waits itself; :meth:`reset` after a success."""

    def __init__(self, first: float = DEFAULT_FIRST_S, cap: float = DEFAULT_CAP_S) -> None:
        self._wait = wait_policy(first, cap)
        self.attempt = 0

    def next(self) -> float:
        """The delay before the next attempt (grows until :meth:`reset`)."""
        self.attempt += 1
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = self.attempt
        return float(self._wait(state))

    def reset(self) -> None:
        self.attempt = 0
