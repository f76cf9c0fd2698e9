"""Pytest fixtures for tests that need the real local stack.

Load it from a conftest (``from market_testing.pytest_plugin import *``) or with
``-p market_testing.pytest_plugin``. ``local_stack`` reuses a running stack or starts
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

    from market_devstack.stack import StackInfo

AUTOSTART_VAR = "MARKET_STACK_AUTOSTART"

__all__ = [
    "pytest_configure",
    "UniqueNames",
    "free_port",
    "private_stack_settings",
    "PrivateStack",
    "private_stack",
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
            postgres_port=free_port(),
            airflow_port=free_port(),
        )
    )


class PrivateStack:
    """Services of a throw-away stack that a fault test may stop and start at will.

    The shared stack must never be stopped (other tests use it), so fault tests run the
    service they break on its own state dir and ports; data dirs survive ``stop``/``start``
    like a real restart. ``info.settings`` point only the started services here: combine
    them with the shared stack's settings for the rest.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.settings = private_stack_settings(state_dir)
        self.started: set[str] = set()

    def up(self, only: str) -> StackInfo:
        """Start (or reuse) ``only`` (comma-separated names or groups such as ``airflow``)
        and wait until healthy."""
        from market_devstack import stack

        names = stack.normalise_services(only)
        # Before the start: `down` must also stop the services of a start that failed halfway.
        self.started.update(names)
        return stack.ensure_up(self.settings, only=names)

    def stop(self, name: str) -> None:
        """Stop one service (SIGTERM, then SIGKILL) and keep its data dir."""
        from market_devstack import stack

        stack.down(self.settings, only=[name])

    def start(self, name: str) -> StackInfo:
        """Start a stopped service again on the same ports and data dir."""
        return self.up(name)

    def down(self) -> None:
        from market_devstack import stack

        if self.started:
            stack.down(self.settings, only=sorted(self.started))
            self.started.clear()


@pytest.fixture
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    """A :class:`PrivateStack` torn down (every service it started) after the test."""
    private = PrivateStack(tmp_path_factory.mktemp("private-stack"))
    try:
        yield private
    finally:
        private.down()


@pytest.fixture(scope="session")
def local_stack() -> StackInfo:
    """The running stack (started on demand): settings + endpoints + credentials."""
    from market_common.settings import load_settings
    from market_devstack import stack

    settings = load_settings()
    if os.environ.get(AUTOSTART_VAR, "1") == "0":
        info = stack.status(settings)
        if not info.healthy:
            down = [n for n, s in info.services.items() if not s.healthy]
            pytest.fail(
                f"local stack services {down} are not healthy in {info.state_dir} and "
                f"{AUTOSTART_VAR}=0 forbids starting them: run `market-devstack up`.",
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
    """``factory(database=…, schema=…, **connect_overrides)`` → a connection, closed after the test.

    Made by the product's own factory (``market_common.clients.snowflake_connection``, with
    its session parameters and retries), pointed at the stack's fakesnow.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from market_common.clients import snowflake_connection
    from market_devstack.snowflake import emulator_settings

    opened: list[Any] = []

    def factory(**overrides: Any) -> Any:
        conn = snowflake_connection(emulator_settings(local_stack.settings), **overrides)
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

    def step_env(self, prefix: str) -> dict[str, str]:
        """``MARKET_*`` for a DAG's steps: consumer groups, lake prefixes and databases of
        their own, so a test's runs never read or overwrite another test's data."""
        return {
            "MARKET_KAFKA__BATCH_GROUP": self("gb"),
            "MARKET_KAFKA__REALTIME_GROUP": self("gr"),
            "MARKET_S3__RAW_PREFIX": f"{prefix}/raw",
            "MARKET_S3__PROCESSED_PREFIX": f"{prefix}/processed",
            "MARKET_S3__QUARANTINE_PREFIX": f"{prefix}/quarantine",
            "MARKET_S3__CHECKPOINT_PREFIX": f"{prefix}/checkpoints",
            "MARKET_SNOWFLAKE__BATCH_DATABASE": self.ident("BATCH"),
            "MARKET_SNOWFLAKE__STREAM_DATABASE": self.ident("STREAM"),
        }


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> UniqueNames:
    return UniqueNames(request.node.name)
