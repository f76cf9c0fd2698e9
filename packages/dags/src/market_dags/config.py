"""Typed configuration of the DAG factories.

Two layers: :class:`DeploymentSettings` holds what differs between deployments (runner kind,
images, symbols, source, topics, bucket, dbt target, retries, timeouts) and is read from
``MARKET_DAGS__*`` environment variables, nested with ``__``
(``MARKET_DAGS__RUNNER__KIND=kubernetes``); the per-pipeline configs hold what defines a
DAG (id, schedule, tags, step knobs) and default to the values the platform documents.
Building a config never touches the network or the file system beyond reading env vars,
so the thin DAG files stay cheap to parse.
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from market_common.identifiers import is_valid_symbol
from market_common.settings import DEFAULT_SYMBOLS, split_symbols

DAGS_ENV_PREFIX = "MARKET_DAGS__"


class ConfigError(ValueError):
    """The DAG configuration is inconsistent; the message names the setting to fix."""


class RunnerKind(StrEnum):
    """How a pipeline step runs.

    ``in_process`` imports the console script's entry point into the Airflow worker (fast,
    shares its memory and its Python environment); ``subprocess`` launches the console script
    (isolated, same image); ``kubernetes`` / ``docker`` run it in the delivery images.
    """

    IN_PROCESS = "in_process"
    SUBPROCESS = "subprocess"
    KUBERNETES = "kubernetes"
    DOCKER = "docker"

    @property
    def is_container(self) -> bool:
        return self in (RunnerKind.KUBERNETES, RunnerKind.DOCKER)


class RunnerConfig(BaseModel):
    """Runner kind plus what each kind needs (images only matter for containers)."""

    kind: RunnerKind = RunnerKind.SUBPROCESS
    # Where console scripts live; default: beside the interpreter running Airflow.
    bin_dir: Path | None = None
    pipeline_image: str = "market/pipeline:latest"
    spark_image: str = "market/spark:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # Kubernetes only.
    namespace: str = "market"
    service_account_name: str | None = None
    in_cluster: bool = True
    # The Secret holding the secret settings (keys named like the variables,
    # e.g. MARKET_S3__SECRET_ACCESS_KEY); pods reference it, values never enter the DAG.
    secret_name: str = "market-secrets"
    # Docker only.
    docker_url: str = "unix://var/run/docker.sock"
    # The network step containers join (compose: the stack's network, so `kafka:19092` resolves).
    network_mode: str | None = None
    # Key files mounted read-only into step containers: {path in the container: host path}
    # (e.g. the Snowflake private keys MARKET_SNOWFLAKE__PRIVATE_KEY_PATH points at).
    secret_files: dict[str, str] = Field(default_factory=dict)

    def resolved_bin_dir(self) -> Path:
        return self.bin_dir or Path(sys.executable).parent


class TaskDefaults(BaseModel):
    """Retry and timeout policy applied to every task through ``default_args``."""

    owner: str = "data-platform"
    retries: int = Field(default=2, ge=0)
    retry_delay: timedelta = timedelta(minutes=5)
    # Multiplier per retry (0 = constant delay), capped by max_retry_delay.
    retry_exponential_backoff: float = Field(default=2.0, ge=0)
    max_retry_delay: timedelta = timedelta(minutes=30)
    # Upper bound for a step without its own timeout (see steps.py for per-step values).
    execution_timeout: timedelta = timedelta(hours=1)


class AlertsConfig(BaseModel):
    """Where failure alerts go besides the task log; every channel is off until configured.

    Channels are Airflow 3 notifiers fed by Airflow connections, so credentials stay in the
    deployment's connection store (``AIRFLOW_CONN_<ID>`` or the UI), never in DAG code:
    ``smtp_conn_id`` + ``email_to`` → ``SmtpNotifier``; ``slack_webhook_conn_id`` →
    ``SlackWebhookNotifier`` (needs the ``slack`` extra). ``deadline`` adds a DAG-run
    deadline alert (Airflow 3's successor of SLAs) through the same channels.
    """

    smtp_conn_id: str | None = None
    email_to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    email_from: str = "market-airflow@localhost"
    slack_webhook_conn_id: str | None = None
    # A run still unfinished this long after it was queued alerts (None: no deadline alert).
    deadline: timedelta | None = None

    @field_validator("email_to", mode="before")
    @classmethod
    def _split_recipients(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def enabled(self) -> bool:
        return bool((self.smtp_conn_id and self.email_to) or self.slack_webhook_conn_id)


class TopicsConfig(BaseModel):
    """Kafka topics; ``None`` keeps what the steps' own MarketSettings resolve."""

    batch: str | None = None
    realtime: str | None = None
    dlq: str | None = None


class DbtConfig(BaseModel):
    """Where the dbt project is and how cosmos renders it."""

    project_dir: Path | None = None
    profiles_yml: Path | None = None
    target: str = "local"
    profile_name: str = "market"
    project_name: str = "market"
    # Manifest produced by `dbt parse` (deploy step / CI); rendering reads only this file.
    manifest_path: Path | None = None
    executable: Path | None = None
    # Where `market-dbt docs-export` writes the docs JSON (default: beside the manifest).
    docs_out: Path | None = None
    # Where the delivery image keeps the dbt project (container runners only).
    image_project_dir: Path = Path("/opt/market/dbt")
    # `manifest`: cosmos renders one task per model/test from manifest.json (cheap to parse);
    # `dbt_ls`: cosmos runs `dbt ls` while parsing the DAG file (slow, only for debugging);
    # `commands`: one `dbt build --select ...` task per layer, no cosmos.
    render: Literal["manifest", "dbt_ls", "commands"] = "manifest"
    test_behavior: Literal["after_each", "after_all", "none"] = "after_each"
    staging_select: tuple[str, ...] = ("path:models/staging",)
    marts_select: tuple[str, ...] = ("path:models/intermediate", "path:models/marts")
    seeds_select: tuple[str, ...] = ("resource_type:seed",)

    def resolved_project_dir(self) -> Path:
        if self.project_dir is not None:
            return self.project_dir
        found = find_dbt_project()
        if found is None:
            raise ConfigError(
                "dbt project not found: set MARKET_DAGS__DBT__PROJECT_DIR to the folder holding "
                "dbt_project.yml"
            )
        return found

    def resolved_profiles_yml(self) -> Path:
        return self.profiles_yml or self.resolved_project_dir() / "profiles.yml"

    def resolved_manifest_path(self) -> Path:
        return self.manifest_path or self.resolved_project_dir() / "target" / "manifest.json"

    def resolved_docs_out(self) -> Path:
        return self.docs_out or self.resolved_manifest_path().parent / "dbt_docs.json"

    def resolved_executable(self, runner: RunnerConfig) -> Path:
        """Configured dbt, else the one beside the interpreter, else dbt on PATH."""
        if self.executable:
            return self.executable
        beside = runner.resolved_bin_dir() / "dbt"
        on_path = shutil.which("dbt")
        return beside if beside.exists() or on_path is None else Path(on_path)


def find_dbt_project(*starts: Path) -> Path | None:
    """First ``dbt/dbt_project.yml`` above the given folders, this package, or the cwd."""
    roots = [*starts, Path(__file__).resolve().parent, Path.cwd().resolve()]
    for root in roots:
        for candidate in (root, *root.parents):
            if (candidate / "dbt" / "dbt_project.yml").is_file():
                return candidate / "dbt"
    return None


class DeploymentSettings(BaseSettings):
    """What changes between deployments, from ``MARKET_DAGS__*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix=DAGS_ENV_PREFIX, env_nested_delimiter="__", extra="ignore"
    )

    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    task_defaults: TaskDefaults = Field(default_factory=TaskDefaults)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    # Comma-separated in the environment.
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    source: Literal["synthetic", "yfinance", "replay"] = "synthetic"
    topics: TopicsConfig = Field(default_factory=TopicsConfig)
    bucket: str | None = None
    dbt: DbtConfig = Field(default_factory=DbtConfig)
    # Extra environment for every step (e.g. MARKET_* overrides for an isolated test run).
    step_env: dict[str, str] = Field(default_factory=dict)
    # Step-specific execution timeouts, keyed by task id (overrides steps.py defaults).
    step_timeouts: dict[str, timedelta] = Field(default_factory=dict)

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        return split_symbols(value)

    @field_validator("symbols")
    @classmethod
    def _valid_symbols(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not is_valid_symbol(s)]
        if bad:
            raise ConfigError(f"invalid ticker symbol(s) {bad}: use upper-case exchange tickers")
        if not value:
            raise ConfigError("symbols is empty: set MARKET_DAGS__SYMBOLS=AAPL,MSFT,...")
        return value

    def step_environment(self) -> dict[str, str]:
        """MARKET_* variables every step gets, so topics/bucket/dbt target follow this config."""
        env: dict[str, str] = {
            "MARKET_SOURCE": self.source,
            "MARKET_SYMBOLS": ",".join(self.symbols),
            "MARKET_DBT__TARGET": self.dbt.target,
            # Task logs are plain text: no ANSI colours from dbt.
            "DBT_USE_COLORS": "false",
        }
        for name, topic in (
            ("BATCH_TOPIC", self.topics.batch),
            ("REALTIME_TOPIC", self.topics.realtime),
            ("DLQ_TOPIC", self.topics.dlq),
        ):
            if topic:
                env[f"MARKET_KAFKA__{name}"] = topic
        if self.bucket:
            env["MARKET_S3__BUCKET"] = self.bucket
        return env | self.step_env


DEFAULT_START_DATE = datetime(2024, 1, 1, tzinfo=UTC)


class PipelineConfig(BaseModel):
    """Fields every DAG has; subclasses fix the id and schedule."""

    dag_id: str
    schedule: str | None
    start_date: datetime = DEFAULT_START_DATE
    tags: tuple[str, ...] = ("market",)
    dagrun_timeout: timedelta = timedelta(hours=3)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)

    @field_validator("start_date")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ConfigError("start_date must be timezone-aware (UTC): naive dates shift with DST")
        return value


class BatchPipelineConfig(PipelineConfig):
    dag_id: str = "stock_market_batch_pipeline"
    schedule: str | None = "0 2 * * *"  # 02:00 UTC daily, after US markets closed and settled
    tags: tuple[str, ...] = ("market", "batch", "ingest", "spark", "snowflake")
    # Trading days fetched per run, ending at the run's logical date (idempotent re-runs).
    lookback_days: int = Field(default=5, ge=1)
    dbt_dag_id: str = "dbt_transformation_pipeline"
    wait_for_dbt: bool = True
    trigger_poke_interval_s: int = Field(default=10, ge=1)


class StreamingPipelineConfig(PipelineConfig):
    dag_id: str = "stock_streaming_pipeline"
    schedule: str | None = "*/30 * * * *"  # every 30 minutes
    tags: tuple[str, ...] = ("market", "streaming", "ingest", "spark", "snowflake")
    dagrun_timeout: timedelta = timedelta(minutes=29)  # never overlap the next window
    # Length of the simulated trading session produced per run.
    session_minutes: int = Field(default=30, ge=1)
    clock: Literal["simulated", "wall"] = "simulated"


class DbtPipelineConfig(PipelineConfig):
    dag_id: str = "dbt_transformation_pipeline"
    schedule: str | None = "0 6 * * *"  # 06:00 UTC daily; also triggered by the batch DAG
    tags: tuple[str, ...] = ("market", "dbt", "snowflake")
