"""Which Kafka errors the raw consumer rides out, and the backoff between attempts."""

from __future__ import annotations

from kafka import errors

from market_ingest.consumer import Backoff, is_transient


def test_transient_kafka_errors_are_retried_and_others_are_not() -> None:
    retried = [
        errors.KafkaConnectionError("111 ECONNREFUSED"),
        errors.KafkaTimeoutError(),
        errors.NotCoordinatorError(),
        errors.CommitFailedError(),
        errors.RebalanceInProgressError(),
    ]
    fatal = [errors.TopicAuthorizationFailedError(), errors.IllegalStateError(), ValueError("x")]
    assert all(is_transient(e) for e in retried), "outages and rebalances are waited out"
    assert not any(is_transient(e) for e in fatal), "permission and programming errors stop"


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
