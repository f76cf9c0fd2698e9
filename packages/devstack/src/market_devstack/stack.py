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

from market_common.runtime import file_lock
from market_devstack.credentials import ensure_private_dir
from market_devstack.errors import UnknownServiceError
from market_devstack.service import start_all

if TYPE_CHECKING:
    from rich.console import Console

    from market_common.settings import MarketSettings
    from market_devstack.service import Service, ServiceStatus

# "spark" (the standalone cluster) is opt-in: it expands to no process unless
# stack.spark_workers > 0, so it is listed last (its history server needs MinIO).
SERVICE_NAMES: tuple[str, ...] = ("kafka", "minio", "snowflake", "spark")
# Opt-in groups (`up --with airflow`), in start order; `down` and `logs` cover them too.
OPTIONAL_GROUPS: dict[str, tuple[str, ...]] = {
    "airflow": (
        "postgres",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ),
}
OPTIONAL_NAMES: tuple[str, ...] = tuple(n for g in OPTIONAL_GROUPS.values() for n in g)
ALL_NAMES: tuple[str, ...] = SERVICE_NAMES + OPTIONAL_NAMES
# Services that need what starts before them but not each other: prepared (the API server's
# prepare migrates the DB), then spawned together and awaited in order. Each Airflow process
# spends ~30 s of a busy 2-core machine importing Airflow; one after another, that was 2 min
# of every start.
STARTED_TOGETHER = frozenset(
    {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
)
ALIASES = {"fakesnow": "snowflake", "s3": "minio"}


def _split(items: Iterable[str] | str) -> list[str]:
    values = items.split(",") if isinstance(items, str) else list(items)
    return [ALIASES.get(i.strip().lower(), i.strip().lower()) for i in values if i.strip()]


def normalise_services(
    only: Iterable[str] | str | None,
    *,
    with_: Iterable[str] | str | None = None,
    default: tuple[str, ...] = SERVICE_NAMES,
) -> list[str]:
    """``"kafka,minio"`` / ``["snowflake"]`` / None (``default``) plus ``with_`` groups →
    names in start order. A group name (``airflow``) in ``only`` means all of its services."""
    groups = _split(with_) if with_ is not None else []
    unknown_groups = set(groups) - set(OPTIONAL_GROUPS)
    if unknown_groups:
        raise UnknownServiceError(
            f"unknown --with group(s) {sorted(unknown_groups)}; choose from "
            f"{', '.join(OPTIONAL_GROUPS)}"
        )
    wanted = set(default) if only is None else set()
    for name in [*(_split(only) if only is not None else []), *groups]:
        wanted.update(OPTIONAL_GROUPS.get(name, (name,)))
    unknown = wanted - set(ALL_NAMES)
    if unknown:
        raise UnknownServiceError(
            f"unknown service(s) {sorted(unknown)}; choose from {', '.join(ALL_NAMES)} or "
            f"the group(s) {', '.join(OPTIONAL_GROUPS)}"
        )
    return [n for n in ALL_NAMES if n in wanted]


def _start_waves(names: list[str]) -> list[list[str]]:
    """``names`` (in start order) as consecutive groups started by one ``start_all``."""
    waves: list[list[str]] = []
    for name in names:
        if waves and name in STARTED_TOGETHER and waves[-1][-1] in STARTED_TOGETHER:
            waves[-1].append(name)
        else:
            waves.append([name])
    return waves


def started_optional(settings: MarketSettings) -> tuple[str, ...]:
    """Opt-in services that have a pid file: `status` reports them (healthy or not)."""
    pids = Path(settings.stack.state_dir) / "pids"
    return tuple(n for n in OPTIONAL_NAMES if (pids / f"{n}.pid").is_file())


def make_service(name: str, settings: MarketSettings, console: Console | None = None) -> Service:
    if name == "kafka":
        from market_devstack.kafka import KafkaService

        return KafkaService(settings, console)
    if name == "minio":
        from market_devstack.minio import MinioService

        return MinioService(settings, console)
    if name == "snowflake":
        from market_devstack.snowflake import FakesnowService

        return FakesnowService(settings, console)
    if name == "postgres":
        from market_devstack.postgres import PostgresService

        return PostgresService(settings, console)
    if name in OPTIONAL_NAMES:
        from market_devstack.airflow import AIRFLOW_SERVICES

        return AIRFLOW_SERVICES[name](settings, console)
    raise UnknownServiceError(f"unknown service {name!r}; choose from {', '.join(ALL_NAMES)}")


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
        from market_devstack.kafka import KafkaService

        nodes = set(range(1, stack.kafka_brokers + 1)) if stack.kafka_brokers > 1 else set()
        if discover:
            nodes |= {int(p.stem.split("-")[1]) for p in pids.glob("kafka-*.pid")}
        if stack.kafka_brokers == 1 or discover:
            single: list[Service] = [KafkaService(settings, console)]
        else:
            single = []
        return single + [KafkaService(settings, console, node_id=n) for n in sorted(nodes)]
    if name == "spark":
        from market_devstack.spark_cluster import cluster_services

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
        from market_devstack.kafka import cluster_bootstrap

        return cluster_bootstrap(self.settings.stack)

    @property
    def s3_endpoint_url(self) -> str:
        return f"http://{self.settings.stack.host}:{self.settings.stack.minio_port}"

    @property
    def snowflake_url(self) -> str:
        return f"http://{self.settings.stack.host}:{self.settings.stack.fakesnow_port}"

    @property
    def airflow_url(self) -> str:
        """The Airflow UI / REST API (only running after ``up --with airflow``)."""
        return f"http://{self.settings.stack.host}:{self.settings.stack.airflow_port}"

    @property
    def healthy(self) -> bool:
        return bool(self.services) and all(s.healthy for s in self.services.values())

    def snowflake_connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The product's connect kwargs (market_common.clients) for this stack's fakesnow."""
        from market_common.clients import snowflake_connect_kwargs
        from market_devstack.snowflake import emulator_settings

        return snowflake_connect_kwargs(emulator_settings(self.settings)) | overrides

    def s3_client(self) -> Any:
        from market_devstack.minio import s3_client

        return s3_client(self.settings)


def stack_settings(settings: MarketSettings) -> MarketSettings:
    """``settings`` with Kafka/S3/Snowflake sections pointed at this stack (and its creds)."""
    from market_devstack.kafka import cluster_bootstrap
    from market_devstack.minio import with_credentials

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
        from market_devstack.spark_cluster import cluster_spark_settings

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
    with_: Iterable[str] | str | None = None,
    console: Console | None = None,
) -> StackInfo:
    """Start whatever is not running (reusing what is), wait until healthy.

    ``with_`` adds opt-in groups (``"airflow"``: PostgreSQL + Airflow's four processes).
    """
    settings = stack_settings(_default_settings(settings))
    # 0700: the state dir holds stack.env (credentials) and every service's data.
    ensure_private_dir(Path(settings.stack.state_dir))
    statuses: dict[str, ServiceStatus] = {}
    with file_lock(_lock_path(settings)):
        for wave in _start_waves(normalise_services(only, with_=with_)):
            # Cluster members are spawned together: a Kafka quorum forms only once a
            # majority of its nodes runs.
            services = [s for name in wave for s in make_services(name, settings, console)]
            statuses.update(start_all(services))
    # Again after the start: starting MinIO may have moved its clients to the pipeline
    # user (an older stack.env whose S3 credentials were the root account).
    return StackInfo(stack_settings(settings), statuses)


def down(
    settings: MarketSettings | None = None,
    *,
    only: Iterable[str] | str | None = None,
    console: Console | None = None,
) -> dict[str, bool]:
    """Stop the services our pid files name (reverse start order); name → was running.

    Without ``only`` every service is covered, the opt-in ones (Airflow, PostgreSQL) too.
    """
    settings = _default_settings(settings)
    stopped: dict[str, bool] = {}
    with file_lock(_lock_path(settings)):
        for name in reversed(normalise_services(only, default=ALL_NAMES)):
            for service in reversed(make_services(name, settings, console, discover=True)):
                stopped[service.name] = service.stop()
    return stopped


def status(
    settings: MarketSettings | None = None, *, only: Iterable[str] | str | None = None
) -> StackInfo:
    """Probe each service without starting anything (opt-in ones once they were started)."""
    settings = _default_settings(settings)
    if (Path(settings.stack.state_dir) / "stack.env").is_file():
        settings = stack_settings(settings)
    names = normalise_services(only, default=SERVICE_NAMES + started_optional(settings))
    statuses = {
        service.name: service.status()
        for name in names
        for service in make_services(name, settings)
    }
    return StackInfo(settings, statuses)
