"""Typed settings for every component, read once from the environment.

All variables share the ``MARKET_`` prefix; nested sections use ``__``
(``MARKET_KAFKA__BOOTSTRAP_SERVERS=broker:9092``). Values are also read from a ``.env``
file in the working directory and from ``<state_dir>/stack.env``, which the local stack
writes with the credentials it generated, so nothing secret is ever committed. Defaults
point at the local stack on 127.0.0.1.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from market_common.identifiers import validate_identifier

ENV_PREFIX = "MARKET_"
DEFAULT_SYMBOLS: tuple[str, ...] = (
    "AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA", "JPM", "JNJ", "V",
)  # fmt: skip


def default_state_dir() -> Path:
    """``$MARKET_STATE_DIR``, else ``.local/`` of the repository containing the cwd."""
    env = os.environ.get(f"{ENV_PREFIX}STATE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pants.toml").is_file():
            return candidate / ".local"
    return Path.home() / ".local" / "share" / "market-platform"


class StackSettings(BaseModel):
    """Where the embedded local stack keeps state and which loopback ports it binds."""

    state_dir: Path = Field(default_factory=default_state_dir)
    host: str = "127.0.0.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    minio_port: int = 9000
    minio_console_port: int = 9001
    fakesnow_port: int = 8085
    # Opt-in services (`market-devstack up --with airflow`): Airflow's metadata database
    # and its API server / UI (8080: the port the platform's docs have always named).
    postgres_port: int = 5433
    airflow_port: int = 8080
    # Scale-out (opt-in, `market-devstack up --kafka-brokers 3 --spark-workers 2`): node i>1
    # of a Kafka cluster listens on kafka_port/kafka_controller_port + kafka_node_port_step*(i-1).
    kafka_brokers: int = Field(default=1, ge=1)
    kafka_node_port_step: int = Field(default=100, ge=2)
    spark_workers: int = Field(default=0, ge=0)
    spark_worker_cores: int = Field(default=1, ge=1)
    spark_worker_memory: str = "1g"
    spark_master_port: int = 7077
    spark_master_ui_port: int = 8090
    spark_history_port: int = 18080


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    batch_topic: str = "stock-market-batch"
    realtime_topic: str = "stock-market-realtime"
    dlq_topic: str = "stock-market-dlq"
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # Acknowledged writes (acks=all) need this many in-sync replicas, else the producer fails.
    min_insync_replicas: int = Field(default=1, ge=1)
    batch_group: str = "market-raw-batch"
    realtime_group: str = "market-raw-realtime"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # Producer tuning: throughput without giving up durability.
    acks: Literal["all", "1", "0"] = "all"
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = "gzip"
    # kafka-python 3.0 deflates gzip batches at level 9; Java clients use zlib's default 6
    # (compression.gzip.level=-1). Profiled on 160-byte JSON bars: level 9 costs 2.4x the
    # CPU of level 6 (12 vs 5 ms per 256 KB batch) for a 2% better ratio (5.44 vs 5.33).
    gzip_level: int = Field(default=6, ge=1, le=9)
    linger_ms: int = 20
    batch_size: int = 256 * 1024
    max_request_size: int = 1024 * 1024


class S3Settings(BaseModel):
    """Object store (MinIO locally, any S3 in production)."""

    endpoint_url: str | None = "http://127.0.0.1:9000"
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    bucket: str = "market-lake"
    path_style: bool = True
    raw_prefix: str = "raw"
    processed_prefix: str = "processed"
    quarantine_prefix: str = "quarantine"
    checkpoint_prefix: str = "checkpoints"

    def uri(self, *parts: str, scheme: str = "s3a") -> str:
        """``s3a://bucket/part/part`` for Spark (``scheme="s3"`` for boto-style URIs)."""
        key = "/".join(p.strip("/") for p in parts if p)
        return f"{scheme}://{self.bucket}/{key}"


class SnowflakeSettings(BaseModel):
    """Snowflake connection; ``account="local"`` means the fakesnow emulator of the stack."""

    account: str = "local"
    user: str = "market"
    password: SecretStr | None = None
    private_key_path: Path | None = None
    private_key_passphrase: SecretStr | None = None
    authenticator: str | None = None
    role: str | None = None
    warehouse: str | None = None
    # Only for the emulator (or a proxy): real Snowflake derives the host from the account.
    host: str | None = None
    port: int | None = None
    protocol: Literal["http", "https"] | None = None
    batch_database: str = "STOCKMARKETBATCH"
    stream_database: str = "STOCKMARKETSTREAM"
    schema_: str = Field(default="PUBLIC", alias="schema")
    batch_table: str = "DAILY_STOCK_METRICS"
    stream_table: str = "REALTIME_STOCK_ANALYTICS"
    audit_table: str = "LOAD_AUDIT"
    login_timeout_s: int = 30
    connect_retries: int = 5

    model_config = {"populate_by_name": True}

    @field_validator(
        "batch_database", "stream_database", "schema_", "batch_table", "stream_table", "audit_table"
    )
    @classmethod
    def _identifier(cls, value: str) -> str:
        return validate_identifier(value)

    @model_validator(mode="after")
    def _emulator_endpoint(self) -> SnowflakeSettings:
        if self.account == "local":
            self.host = self.host or "127.0.0.1"
            self.port = self.port or 8085
            self.protocol = self.protocol or "http"
            if self.password is None:
                # fakesnow accepts any password; this is not a credential.
                self.password = SecretStr("local")
        return self

    @property
    def is_local(self) -> bool:
        return self.account == "local"


class SparkSettings(BaseModel):
    master: str = "local[*]"
    app_name: str = "market-spark"
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    shuffle_partitions: int = 4
    # Connector coordinates pinned to Spark 4.0.1 / Scala 2.13 / Hadoop 3.4.1; Delta Lake
    # 4.0.1 (the pip delta-spark's jar, which brings delta-storage) for the processed tables.
    packages: tuple[str, ...] = (
        "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.1",
        "org.apache.hadoop:hadoop-aws:3.4.1",
        "io.delta:delta-spark_2.13:4.0.1",
    )
    ivy_dir: Path | None = None
    extra_conf: dict[str, str] = Field(default_factory=dict)


class DbtSettings(BaseModel):
    """dbt's project and target; ``snowflake_*`` give dbt its own service user and role.

    dbt/profiles.yml reads ``MARKET_DBT__SNOWFLAKE_USER`` / ``_ROLE`` / ``_PRIVATE_KEY_PATH``
    before the shared ``MARKET_SNOWFLAKE__*`` values, so one environment (an Airflow worker
    running both the loaders and dbt) can hold the loader's and the transformer's
    identities side by side (infra/snowflake/roles.sql: one role per job).
    """

    project_dir: Path | None = None
    profiles_dir: Path | None = None
    target: str = "local"
    snowflake_user: str | None = None
    snowflake_role: str | None = None
    snowflake_private_key_path: Path | None = None


def split_symbols(value: object) -> object:
    """``"aapl, MSFT"`` (an environment value) → ``["AAPL", "MSFT"]``; lists pass through."""
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return [s.strip().upper() for s in value.split(",") if s.strip()]
    return value


class ContractSettings(BaseModel):
    """Limits of the record contract for wire input (see ``market_common.contracts``).

    ``universe`` unset: any well-formed ticker is accepted (backfills of ad-hoc or
    benchmark universes keep working). Set (``MARKET_CONTRACTS__UNIVERSE=AAPL,MSFT``):
    other symbols are rejected as ``unknown_symbol``. ``market-pipeline run`` sets it to
    the symbols it runs for.
    """

    max_message_bytes: int = Field(default=2048, ge=256)
    max_future_skew_s: float = Field(default=300.0, ge=0)
    universe: list[str] | None = None

    @field_validator("universe", mode="before")
    @classmethod
    def _split_universe(cls, value: object) -> object:
        return split_symbols(value)


class MarketSettings(BaseSettings):
    """The one settings object; build it with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
    )

    env: Literal["local", "dev", "prod"] = "local"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"
    # Comma-separated in the environment (MARKET_SYMBOLS=AAPL,MSFT), a list in code.
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    source: Literal["synthetic", "yfinance", "replay", "alphavantage"] = "synthetic"
    # Trading calendar of replayed data (exchange_calendars code: XNYS, 24/5 for FX, 24/7 for
    # crypto); unset: XNYS. The synthetic and yfinance sources always trade NYSE days.
    calendar: str | None = None
    stack: StackSettings = Field(default_factory=StackSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    snowflake: SnowflakeSettings = Field(default_factory=SnowflakeSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    dbt: DbtSettings = Field(default_factory=DbtSettings)
    contracts: ContractSettings = Field(default_factory=ContractSettings)

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        return split_symbols(value)

    @model_validator(mode="before")
    @classmethod
    def _clients_follow_the_stack(cls, data: object) -> object:
        """Unset client endpoints point at the local stack's ports, not at fixed defaults.

        A second stack on other ports (``MARKET_STACK__KAFKA_PORT=19092``, a test's or a
        benchmark's private stack) would otherwise start on its ports while every client
        silently kept talking to the first stack on 9092/9000/8085. Endpoints that are set
        (a real cluster, S3, Snowflake) are never touched; only the raw input is filled, so
        a section passed as a model object is left as it is.
        """
        if not isinstance(data, dict):
            return data
        stack = data.get("stack")
        if isinstance(stack, StackSettings):
            stack = stack.model_dump()
        if not isinstance(stack, dict):
            stack = {}
        defaults = StackSettings.model_fields
        host = stack.get("host") or defaults["host"].default

        def port(name: str) -> Any:
            return stack.get(name) or defaults[name].default

        filled = dict(data)
        snowflake = filled.get("snowflake", {})
        emulated = not isinstance(snowflake, dict) or snowflake.get("account", "local") == "local"
        for section, key, value in (
            ("kafka", "bootstrap_servers", f"{host}:{port('kafka_port')}"),
            ("s3", "endpoint_url", f"http://{host}:{port('minio_port')}"),
            ("snowflake", "port", port("fakesnow_port") if emulated else None),
        ):
            current = filled.get(section, {})
            if isinstance(current, dict) and key not in current and value is not None:
                filled[section] = {**current, key: value}
        return filled


def load_settings(**overrides: Any) -> MarketSettings:
    """Read settings from env, ``.env`` and the stack's ``stack.env`` (env wins)."""
    state_dir = default_state_dir()
    env_files = [p for p in (Path(".env"), state_dir / "stack.env") if p.is_file()]
    return MarketSettings(_env_file=env_files or None, **overrides)  # type: ignore[call-arg]


@lru_cache(maxsize=1)
def get_settings() -> MarketSettings:
    """Process-wide settings; tests build their own with :func:`load_settings`."""
    return load_settings()
