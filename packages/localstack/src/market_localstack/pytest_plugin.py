"""Pytest fixtures for tests that need the real local stack.

Load it from a conftest (``from market_localstack.pytest_plugin import *``) or with
``-p market_localstack.pytest_plugin``. ``local_stack`` reuses a running stack or starts
it (unless ``MARKET_STACK_AUTOSTART=0``); parallel test processes are safe because
``ensure_up`` is serialised by a file lock in the state dir and ``unique_name`` gives
every test its own topics/buckets/databases.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from market_common.settings import MarketSettings, StackSettings

if TYPE_CHECKING:
    from pathlib import Path

    from market_localstack.stack import StackInfo

AUTOSTART_VAR = "MARKET_STACK_AUTOSTART"

__all__ = [
    "pytest_configure",
    "UniqueNames",
    "free_port",
    "private_stack_settings",
    "kafka_bootstrap",
    "local_stack",
    "s3_client",
    "snowflake_conn_factory",
    "unique_name",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs the local stack (Kafka, MinIO, fakesnow) on loopback"
    )


def free_port() -> int:
    """A loopback port nothing listens on right now (for private service instances)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_stack_settings(state_dir: Path) -> MarketSettings:
    """Settings for a throw-away stack on ``state_dir`` and free ports, isolated from the shared one."""
    return MarketSettings(
        stack=StackSettings(
            state_dir=state_dir,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            minio_port=free_port(),
            minio_console_port=free_port(),
            fakesnow_port=free_port(),
        )
    )


@pytest.fixture(scope="session")
def local_stack() -> StackInfo:
    """The running stack (started on demand): settings + endpoints + credentials."""
    from market_common.settings import load_settings
    from market_localstack import stack

    settings = load_settings()
    if os.environ.get(AUTOSTART_VAR, "1") == "0":
        info = stack.status(settings)
        if not info.healthy:
            down = [n for n, s in info.services.items() if not s.healthy]
            pytest.fail(
                f"local stack services {down} are not healthy in {info.state_dir} and "
                f"{AUTOSTART_VAR}=0 forbids starting them: run `market-localstack up`.",
                pytrace=False,
            )
        return info
    return stack.ensure_up(settings)


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: StackInfo) -> str:
    return local_stack.kafka_bootstrap


@pytest.fixture(scope="session")
def s3_client(local_stack: StackInfo) -> Any:
    """boto3 S3 client (path-style) for the stack's MinIO."""
    return local_stack.s3_client()


@pytest.fixture
def snowflake_conn_factory(local_stack: StackInfo) -> Iterator[Callable[..., Any]]:
    """``factory(**connect_overrides)`` → snowflake connector connection, closed after the test."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import snowflake.connector

    opened: list[Any] = []

    def factory(**overrides: Any) -> Any:
        conn = snowflake.connector.connect(**local_stack.snowflake_connect_kwargs(**overrides))
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        # The server may have been restarted by the test: closing is best effort.
        with contextlib.suppress(Exception):
            conn.close()


class UniqueNames:
    """Names unique across tests *and* processes: ``<prefix>-<test slug>-<random>``."""

    def __init__(self, test_name: str) -> None:
        self.slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:20].strip("-")

    def __call__(self, prefix: str = "t") -> str:
        """Lowercase with dashes: valid Kafka topic and S3 bucket name (<= 63 chars)."""
        prefix = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-") or "t"
        return f"{prefix[:12]}-{self.slug}-{uuid.uuid4().hex[:12]}".strip("-")

    def ident(self, prefix: str = "T") -> str:
        """Uppercase with underscores: a valid unquoted Snowflake identifier."""
        return self(prefix).upper().replace("-", "_")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> UniqueNames:
    return UniqueNames(request.node.name)
