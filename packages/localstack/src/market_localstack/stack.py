"""The stack as a whole: the API the CLI, the pytest plugin and other packages use.

``ensure_up(settings) -> StackInfo`` starts (or reuses) every service and returns settings
carrying this stack's endpoints and generated credentials; ``down`` stops only processes
our pid files name; ``status`` probes without starting anything. Calls on the same
state_dir are serialised with a file lock, so parallel test processes can all call
``ensure_up``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market_localstack.errors import UnknownServiceError
from market_localstack.process import file_lock
from market_localstack.service import start_all

if TYPE_CHECKING:
    from rich.console import Console

    from market_common.settings import MarketSettings
    from market_localstack.service import Service, ServiceStatus

# "spark" (the standalone cluster) is opt-in: it expands to no process unless
# stack.spark_workers > 0, so it is listed last (its history server needs MinIO).
SERVICE_NAMES: tuple[str, ...] = ("kafka", "minio", "snowflake", "spark")
ALIASES = {"fakesnow": "snowflake", "s3": "minio"}


def normalise_services(only: Iterable[str] | str | None) -> list[str]:
    """``"kafka,minio"`` / ``["snowflake"]`` / None → names in start order."""
    if only is None:
        return list(SERVICE_NAMES)
    items = only.split(",") if isinstance(only, str) else list(only)
    wanted = {ALIASES.get(i.strip().lower(), i.strip().lower()) for i in items if i.strip()}
    unknown = wanted - set(SERVICE_NAMES)
    if unknown:
        raise UnknownServiceError(
            f"unknown service(s) {sorted(unknown)}; choose from {', '.join(SERVICE_NAMES)}"
        )
    return [n for n in SERVICE_NAMES if n in wanted]


def make_service(name: str, settings: MarketSettings, console: Console | None = None) -> Service:
    if name == "kafka":
        from market_localstack.kafka import KafkaService

        return KafkaService(settings, console)
    if name == "minio":
        from market_localstack.minio import MinioService

        return MinioService(settings, console)
    if name == "snowflake":
        from market_localstack.snowflake import FakesnowService

        return FakesnowService(settings, console)
    raise UnknownServiceError(f"unknown service {name!r}; choose from {', '.join(SERVICE_NAMES)}")


def make_services(
    name: str, settings: MarketSettings, console: Console | None = None, *, discover: bool = False
) -> list[Service]:
    """The processes behind service ``name``: one, a Kafka cluster's nodes, or the Spark cluster.

    ``discover=True`` (for ``down``) also returns the nodes whose pid files exist in the
    state dir, so a cluster started with ``--kafka-brokers 3``/``--spark-workers 2`` is
    stopped by a plain ``down``.
    """
    stack = settings.stack
    pids = Path(stack.state_dir) / "pids"
    if name == "kafka":
        from market_localstack.kafka import KafkaService

        nodes = set(range(1, stack.kafka_brokers + 1)) if stack.kafka_brokers > 1 else set()
        if discover:
            nodes |= {int(p.stem.split("-")[1]) for p in pids.glob("kafka-*.pid")}
        if stack.kafka_brokers == 1 or discover:
            single: list[Service] = [KafkaService(settings, console)]
        else:
            single = []
        return single + [KafkaService(settings, console, node_id=n) for n in sorted(nodes)]
    if name == "spark":
        from market_localstack.spark_cluster import cluster_services

        if discover and stack.spark_workers == 0:
            workers = len(list(pids.glob("spark-worker-*.pid")))
            wanted = stack.model_copy(update={"spark_workers": workers})
            return cluster_services(settings.model_copy(update={"stack": wanted}), console)
        return cluster_services(settings, console)
    return [make_service(name, settings, console)]


@dataclass(frozen=True)
class StackInfo:
    """Settings pointing at the running stack plus each service's status."""

    settings: MarketSettings
    services: dict[str, ServiceStatus] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return Path(self.settings.stack.state_dir)

    @property
    def kafka_bootstrap(self) -> str:
        """Every broker of the stack, comma-separated (one for the single-node default)."""
        from market_localstack.kafka import cluster_bootstrap

        return cluster_bootstrap(self.settings.stack)

    @property
    def s3_endpoint_url(self) -> str:
        return f"http://{self.settings.stack.host}:{self.settings.stack.minio_port}"

    @property
    def snowflake_url(self) -> str:
        return f"http://{self.settings.stack.host}:{self.settings.stack.fakesnow_port}"

    @property
    def healthy(self) -> bool:
        return bool(self.services) and all(s.healthy for s in self.services.values())

    def snowflake_connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        from market_localstack.snowflake import snowflake_connect_kwargs

        return snowflake_connect_kwargs(self.settings, **overrides)

    def s3_client(self) -> Any:
        from market_localstack.minio import s3_client

        return s3_client(self.settings)


def stack_settings(settings: MarketSettings) -> MarketSettings:
    """``settings`` with Kafka/S3/Snowflake sections pointed at this stack (and its creds)."""
    from market_localstack.kafka import cluster_bootstrap
    from market_localstack.minio import with_credentials

    stack = settings.stack
    updated = with_credentials(settings)
    kafka = updated.kafka.model_copy(update={"bootstrap_servers": cluster_bootstrap(stack)})
    snowflake = updated.snowflake
    if snowflake.is_local:
        snowflake = snowflake.model_copy(
            update={"host": stack.host, "port": stack.fakesnow_port, "protocol": "http"}
        )
    updated = updated.model_copy(update={"kafka": kafka, "snowflake": snowflake})
    if stack.spark_workers > 0:
        from market_localstack.spark_cluster import cluster_spark_settings

        updated = cluster_spark_settings(updated)
    return updated


def _lock_path(settings: MarketSettings) -> Path:
    return Path(settings.stack.state_dir) / "pids" / "stack.lock"


def _default_settings(settings: MarketSettings | None) -> MarketSettings:
    if settings is not None:
        return settings
    from market_common.settings import load_settings

    return load_settings()


def ensure_up(
    settings: MarketSettings | None = None,
    *,
    only: Iterable[str] | str | None = None,
    console: Console | None = None,
) -> StackInfo:
    """Start whatever is not running (reusing what is), wait until healthy."""
    settings = stack_settings(_default_settings(settings))
    Path(settings.stack.state_dir).mkdir(parents=True, exist_ok=True)
    statuses: dict[str, ServiceStatus] = {}
    with file_lock(_lock_path(settings)):
        for name in normalise_services(only):
            # Cluster members are spawned together: a Kafka quorum forms only once a
            # majority of its nodes runs.
            statuses.update(start_all(make_services(name, settings, console)))
    return StackInfo(settings, statuses)


def down(
    settings: MarketSettings | None = None,
    *,
    only: Iterable[str] | str | None = None,
    console: Console | None = None,
) -> dict[str, bool]:
    """Stop the services our pid files name (reverse start order); name → was running."""
    settings = _default_settings(settings)
    stopped: dict[str, bool] = {}
    with file_lock(_lock_path(settings)):
        for name in reversed(normalise_services(only)):
            for service in reversed(make_services(name, settings, console, discover=True)):
                stopped[service.name] = service.stop()
    return stopped


def status(
    settings: MarketSettings | None = None, *, only: Iterable[str] | str | None = None
) -> StackInfo:
    """Probe each service without starting anything."""
    settings = _default_settings(settings)
    if (Path(settings.stack.state_dir) / "stack.env").is_file():
        settings = stack_settings(settings)
    statuses = {
        service.name: service.status()
        for name in normalise_services(only)
        for service in make_services(name, settings)
    }
    return StackInfo(settings, statuses)
