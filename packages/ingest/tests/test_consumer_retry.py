"""Which Kafka errors the raw consumer rides out (its backoff: tests of market_common.retry)."""

from __future__ import annotations

from kafka import errors

from market_ingest.consumer import is_transient


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
