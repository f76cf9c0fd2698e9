"""Client factories: the only place that turns settings into connections.

Everything imports its S3, Kafka and Snowflake clients from here, so endpoints,
credentials and tuning live in one spot. Heavy client libraries are imported lazily.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market_common.logging import get_logger
from market_common.retry import retry
from market_common.settings import KafkaSettings, MarketSettings, S3Settings, SnowflakeSettings

if TYPE_CHECKING:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from snowflake.connector import SnowflakeConnection

log = get_logger(__name__)


class SnowflakeAuthError(RuntimeError):
    """Credentials or permissions were rejected: retrying will not help."""


class SnowflakeUnavailableError(RuntimeError):
    """The warehouse (or emulator) could not be reached after all retries."""


def s3_client(settings: S3Settings | MarketSettings) -> Any:
    """boto3 S3 client for the configured endpoint, path-style addressing by default."""
    import boto3
    from botocore.config import Config

    s3 = settings.s3 if isinstance(settings, MarketSettings) else settings
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=s3.access_key_id.get_secret_value() if s3.access_key_id else None,
        aws_secret_access_key=(
            s3.secret_access_key.get_secret_value() if s3.secret_access_key else None
        ),
        config=Config(
            s3={"addressing_style": "path" if s3.path_style else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def _kafka_common(k: KafkaSettings) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap_servers": k.bootstrap_servers.split(","),
        "security_protocol": k.security_protocol,
    }
    if k.sasl_mechanism:
        conf["sasl_mechanism"] = k.sasl_mechanism
        conf["sasl_plain_username"] = k.sasl_username
        conf["sasl_plain_password"] = (
            k.sasl_password.get_secret_value() if k.sasl_password else None
        )
    return conf


def _kafka(settings: KafkaSettings | MarketSettings) -> KafkaSettings:
    return settings.kafka if isinstance(settings, MarketSettings) else settings


def use_gzip_level(level: int) -> None:
    """Make kafka-python deflate gzip record batches at ``level`` (process-wide).

    kafka-python 3.0 has no producer option for it: ``DefaultRecordBatchBuilder`` calls
    ``kafka.codec.gzip_encode(data)``, whose default is level 9. The builder looks the
    function up in its own module, so that name is rebound to one with the level fixed.
    Consumers are unaffected (decompression does not depend on the level).
    """
    from kafka.codec import gzip_encode
    from kafka.record import default_records

    current = default_records.gzip_encode
    if getattr(current, "keywords", {}).get("compresslevel") != level:
        default_records.gzip_encode = functools.partial(gzip_encode, compresslevel=level)


def kafka_producer(settings: KafkaSettings | MarketSettings, **overrides: Any) -> KafkaProducer:
    """Durable, batched producer: acks=all, idempotence, compression, linger.

    gzip batches are deflated at ``gzip_level`` (see :func:`use_gzip_level`).
    """
    from kafka import KafkaProducer

    k = _kafka(settings)
    if k.compression_type == "gzip":
        use_gzip_level(k.gzip_level)
    conf = _kafka_common(k) | {
        "acks": "all" if k.acks == "all" else int(k.acks),
        "enable_idempotence": k.acks == "all",
        "compression_type": k.compression_type,
        "linger_ms": k.linger_ms,
        "batch_size": k.batch_size,
        "max_request_size": k.max_request_size,
        "retries": 2**31 - 1,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": 30_000,
    }
    conf.update(overrides)
    return KafkaProducer(**conf)


def kafka_consumer(
    settings: KafkaSettings | MarketSettings, *topics: str, group_id: str | None, **overrides: Any
) -> KafkaConsumer:
    """Consumer with manual commits: callers commit only after their output is durable."""
    from kafka import KafkaConsumer

    conf = _kafka_common(_kafka(settings)) | {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 5000,
        "fetch_max_bytes": 32 * 1024 * 1024,
        "consumer_timeout_ms": 1000,
    }
    conf.update(overrides)
    return KafkaConsumer(*topics, **conf)


def kafka_admin(settings: KafkaSettings | MarketSettings, **overrides: Any) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    conf = _kafka_common(_kafka(settings)) | {"request_timeout_ms": 30_000}
    conf.update(overrides)
    return KafkaAdminClient(**conf)


def ensure_topics(
    settings: KafkaSettings | MarketSettings, topics: list[str], *, partitions: int | None = None
) -> list[str]:
    """Create missing topics with an explicit partition count; return the ones created.

    Replication comes from settings (``replication_factor``, ``min_insync_replicas``), so a
    topic on a multi-broker cluster refuses acks=all writes it could not replicate.
    """
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    k = _kafka(settings)
    admin = kafka_admin(k)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            # Another process may win the race; an existing topic is all we need.
            with contextlib.suppress(TopicAlreadyExistsError):
                configs = {"min.insync.replicas": str(k.min_insync_replicas)}
                n = partitions or k.partitions
                admin.create_topics(
                    [NewTopic(t, n, k.replication_factor, topic_configs=configs) for t in missing]
                )
        return missing
    finally:
        admin.close()


def _snowflake(settings: SnowflakeSettings | MarketSettings) -> SnowflakeSettings:
    return settings.snowflake if isinstance(settings, MarketSettings) else settings


def snowflake_connect_kwargs(
    settings: SnowflakeSettings | MarketSettings,
    *,
    database: str | None = None,
    schema: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``snowflake.connector.connect`` (password or key-pair).

    The one definition: the product's connections and the test fixtures (the local stack's
    ``snowflake_conn_factory``) both connect with it, so tests see the product's session
    (``TIMEZONE=UTC``: timestamps are written and read in UTC; no out-of-band telemetry).
    """
    sf = _snowflake(settings)
    kw: dict[str, Any] = {
        "account": sf.account,
        "user": sf.user,
        "login_timeout": sf.login_timeout_s,
        "network_timeout": 300,
        "session_parameters": {"TIMEZONE": "UTC", "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }
    if sf.private_key_path:
        kw["private_key"] = _load_private_key(sf.private_key_path, sf.private_key_passphrase)
    elif sf.password is not None:
        kw["password"] = sf.password.get_secret_value()
    for key in ("authenticator", "role", "warehouse", "host", "port", "protocol"):
        value = getattr(sf, key)
        if value is not None:
            kw[key] = value
    if database:
        kw["database"] = database
    if schema:
        kw["schema"] = schema
    return kw


def _load_private_key(path: Path, passphrase: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(
        path.read_bytes(), password=passphrase.get_secret_value().encode() if passphrase else None
    )
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def snowflake_connection(
    settings: SnowflakeSettings | MarketSettings,
    *,
    database: str | None = None,
    schema: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **connect_overrides: Any,
) -> SnowflakeConnection:
    """Connect with retries on transient errors; auth failures raise at once.

    ``connect_overrides`` go to ``snowflake.connector.connect`` as-is (e.g. ``paramstyle``).
    """
    import snowflake.connector
    from snowflake.connector import errors

    sf = _snowflake(settings)
    kwargs = snowflake_connect_kwargs(sf, database=database, schema=schema) | connect_overrides
    rejected = (errors.ForbiddenError, errors.ProgrammingError)
    try:
        return retry(
            lambda: snowflake.connector.connect(**kwargs),
            attempts=sf.connect_retries,
            retry_on=(errors.OperationalError, errors.DatabaseError, OSError),
            give_up_on=rejected,
            sleep=sleep,
            what="snowflake connect",
        )
    except rejected as exc:
        if _is_auth_error(exc):
            raise SnowflakeAuthError(
                f"Snowflake rejected user {sf.user!r} on account {sf.account!r}: {exc.msg}. "
                "Check MARKET_SNOWFLAKE__USER / __PASSWORD (or __PRIVATE_KEY_PATH) and the role's grants."
            ) from exc
        raise
    except (errors.OperationalError, errors.DatabaseError, OSError) as exc:
        where = f"{sf.host}:{sf.port}" if sf.host else f"account {sf.account}"
        raise SnowflakeUnavailableError(
            f"could not connect to Snowflake at {where} after {sf.connect_retries} attempts: {exc}"
        ) from exc


def _is_auth_error(exc: Exception) -> bool:
    errno = getattr(exc, "errno", None)
    # 390100 incorrect username/password, 390144 JWT invalid, 390189 role not allowed, 250001 login failed
    from snowflake.connector.errors import ForbiddenError

    return errno in {390100, 390144, 390189, 390101, 250001} or isinstance(exc, ForbiddenError)
