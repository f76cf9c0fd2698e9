from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

pytest_plugins = ["market_testing.pytest_plugin"]

FIXED_NOW = datetime(2024, 6, 3, 21, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return FIXED_NOW


class FutureStub:
    """Stands in for kafka-python's FutureRecordMetadata: fails on demand."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def add_errback(self, fn: Any) -> FutureStub:
        if self.error is not None:
            fn(self.error)
        return self


class RecordingProducer:
    """In-memory producer for unit tests of the validation/routing path (no Kafka)."""

    def __init__(self, partitions: int = 3, fail_every: int = 0) -> None:
        self.sent: list[dict[str, Any]] = []
        self.n_partitions = partitions
        self.fail_every = fail_every
        self.flushed = False

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.n_partitions))

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> FutureStub:
        self.sent.append({"topic": topic, "value": value, "key": key, "partition": partition})
        fail = self.fail_every and len(self.sent) % self.fail_every == 0
        return FutureStub(RuntimeError("broker said no") if fail else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed = True

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def recording_producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def recording_producer_cls() -> type[RecordingProducer]:
    return RecordingProducer
