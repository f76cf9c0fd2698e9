"""SparkSession construction from :class:`market_common.settings.MarketSettings`.

Everything deployment-specific comes from settings, so the same job runs on ``local[*]``,
``spark://…`` or ``k8s://…`` by changing ``MARKET_SPARK__MASTER`` only. Connector jars are
resolved by Ivy from Maven Central through a generated ivysettings file that lists Central
alone: Spark's default chain also consults ``~/.m2``, where a pom without its jar (left by
any Maven build) makes resolution fail with "download failed".
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from market_common.logging import get_logger
from market_common.runtime import file_lock
from market_common.settings import MarketSettings
from market_spark.errors import PackageResolutionError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger(__name__)

# pyspark 4.0.1 bundles scala-library 2.13.16 and hadoop-client-api 3.4.1, so the connectors
# must be the _2.13 Kafka source and hadoop-aws 3.4.1 (which brings AWS SDK v2 bundle 2.24.6).
KAFKA_CONNECTOR = "org.apache.spark:spark-sql-kafka-0-10_2.13"
# spark-sql-kafka 4.0.1 depends on spark-token-provider-kafka-0-10_2.13:4.0.1, which the package
# registry reachable here does not serve (404), while every 4.0.0 artifact is there. The 4.0.0
# connector is a patch release of the same line and runs on the 4.0.1 runtime (the Kafka
# integration tests exercise it); drop this substitution once 4.0.1 resolves.
PACKAGE_SUBSTITUTIONS: Mapping[str, str] = {
    f"{KAFKA_CONNECTOR}:4.0.1": f"{KAFKA_CONNECTOR}:4.0.0",
}

BUNDLED_EXCLUDES = (
    "org.apache.hadoop:hadoop-client-runtime",
    "org.apache.hadoop:hadoop-client-api",
)

# Options that only mean something when this process launches the JVM.
LAUNCH_TIME_KEYS = frozenset(
    {
        "spark.master",
        "spark.driver.memory",
        "spark.driver.extraJavaOptions",
        "spark.driver.host",
        "spark.driver.bindAddress",
        "spark.jars.packages",
        "spark.jars.excludes",
        "spark.jars.ivy",
        "spark.jars.ivySettings",
    }
)

_IVY_SETTINGS = """<ivysettings>
  <!-- Written by market_spark.session: Maven Central only (ibiblio's default root). -->
  <settings defaultResolver="central"/>
  <resolvers>
    <ibiblio name="central" m2compatible="true"/>
  </resolvers>
</ivysettings>
"""


def effective_packages(packages: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The Maven coordinates actually requested, after :data:`PACKAGE_SUBSTITUTIONS`."""
    return tuple(PACKAGE_SUBSTITUTIONS.get(p, p) for p in packages)


def ivy_dir(settings: MarketSettings) -> Path:
    """Ivy home: ``settings.spark.ivy_dir`` or Spark's own default, so caches are shared."""
    return (settings.spark.ivy_dir or Path.home() / ".ivy2.5.2").expanduser()


def _ivy_settings_file(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "market-ivysettings.xml"
    if not path.is_file() or path.read_text() != _IVY_SETTINGS:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_IVY_SETTINGS)
        tmp.replace(path)
    return path


# S3A tuning for MinIO/S3, each value with its reason. Writes of the historical table go
# through Delta (files written in place, one log PUT to commit: no rename-based committer is
# involved); the stream's file sink also writes in place and commits through _spark_metadata.
S3A_TUNING: Mapping[str, str] = {
    # Fail fast against a stopped MinIO instead of retrying for minutes.
    "fs.s3a.attempts.maximum": "3",
    "fs.s3a.retry.limit": "3",
    # Upload buffering: part files are KB..MB; buffering them off-heap skips a round trip
    # through local disk ("disk" is the default) and bounded active blocks cap that memory.
    "fs.s3a.fast.upload.buffer": "bytebuffer",
    "fs.s3a.fast.upload.active.blocks": "4",
    "fs.s3a.multipart.size": "64M",
    # Connection pool: two cores run two tasks, each with a reader and an uploader plus
    # Delta's log listing; 32 sockets keep all of them busy without queueing, and the pool
    # must exceed the thread pool below so a thread never waits for a socket.
    "fs.s3a.connection.maximum": "32",
    "fs.s3a.threads.max": "16",
    # Committer: the classic FileOutputCommitter's task/job renames are copies on S3. The
    # outputs that still use it (quarantine and recompute Parquet) are small; "magic" needs
    # spark-hadoop-cloud's commit protocol, which cannot do dynamic partition overwrite.
    "fs.s3a.committer.name": "file",
    "mapreduce.fileoutputcommitter.algorithm.version": "1",
    # Parquet reads are footer + column-chunk seeks: ranged GETs, not one sequential stream.
    "fs.s3a.experimental.input.fadvise": "random",
}

# Hadoop's key names for the S3A secrets: set only in the running JVM's configuration
# (never as --conf, which pyspark puts on spark-submit's and the JVM's command line,
# readable by every local user in /proc/<pid>/cmdline).
S3A_SECRET_KEYS = ("fs.s3a.access.key", "fs.s3a.secret.key")


def s3a_conf(settings: MarketSettings) -> dict[str, str]:
    """Hadoop ``fs.s3a.*`` options without secrets (and without the ``spark.hadoop.`` prefix).

    The credentials are not in here: :func:`s3a_secrets` gives them, and
    :func:`build_session` sets them on the live Hadoop configuration after the JVM started.
    """
    s3 = settings.s3
    conf = {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.path.style.access": str(s3.path_style).lower(),
        "fs.s3a.endpoint.region": s3.region,
        **S3A_TUNING,
    }
    if s3.endpoint_url:
        conf["fs.s3a.endpoint"] = s3.endpoint_url
        conf["fs.s3a.connection.ssl.enabled"] = str(s3.endpoint_url.startswith("https")).lower()
    if s3.access_key_id and s3.secret_access_key:
        conf["fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )
    return conf


def s3a_secrets(settings: MarketSettings) -> dict[str, str]:
    """The S3A access/secret key pair from settings (empty without static credentials)."""
    s3 = settings.s3
    if not (s3.access_key_id and s3.secret_access_key):
        return {}
    return dict(
        zip(
            S3A_SECRET_KEYS,
            (s3.access_key_id.get_secret_value(), s3.secret_access_key.get_secret_value()),
            strict=True,
        )
    )


def session_conf(
    settings: MarketSettings, *, app_name: str | None = None, ui_enabled: bool = True
) -> dict[str, str]:
    """Every Spark option :func:`build_session` sets, as one inspectable mapping."""
    sp = settings.spark
    home = ivy_dir(settings)
    conf: dict[str, str] = {
        "spark.master": sp.master,
        "spark.app.name": app_name or sp.app_name,
        "spark.driver.memory": sp.driver_memory,
        "spark.executor.memory": sp.executor_memory,
        "spark.sql.shuffle.partitions": str(sp.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # pyarrow/pandas write TIMESTAMP(NANOS), which Spark otherwise refuses to read;
        # storage.conform turns the epoch nanos back into timestamps.
        "spark.sql.legacy.parquet.nanosAsLong": "true",
        "spark.ui.enabled": str(ui_enabled).lower(),
        # Nobody may kill jobs or stages from the UI: it has no authentication here.
        "spark.ui.killEnabled": "false",
        # Delta Lake: the historical table commits through its _delta_log (no renames).
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Loaders read a table's data files whole (listed by its log): a deletion vector
        # would hide rows they cannot see, so replaced rows are rewritten, never masked.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
        "spark.ui.showConsoleProgress": "false",
        # run summaries read all progress of an availableNow run, not only the last 100.
        "spark.sql.streaming.numRecentProgressUpdates": "10000",
        "spark.jars.ivy": str(home),
        "spark.jars.ivySettings": str(_ivy_settings_file(home)),
    }
    packages = effective_packages(sp.packages)
    if packages:
        conf["spark.jars.packages"] = ",".join(packages)
        # The Kafka connector's pom pulls the Hadoop client jars pyspark already bundles.
        conf["spark.jars.excludes"] = ",".join(BUNDLED_EXCLUDES)
    if sp.master.startswith("local"):
        # Keep the driver, and with it the Spark UI (it binds to spark.driver.bindAddress),
        # on loopback: the VM's outward interface is not ours to use.
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    conf.update({f"spark.hadoop.{k}": v for k, v in s3a_conf(settings).items()})
    conf.update(sp.extra_conf)
    return conf


def build_session(
    settings: MarketSettings,
    *,
    app_name: str | None = None,
    ui_enabled: bool = True,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Create (or join, under ``spark-submit``) the SparkSession configured from settings.

    Under ``spark-submit`` the JVM already exists, so ``--packages`` must be given on its
    command line; session-level options (S3A, time zone, overwrite mode) are still applied.
    Raises :class:`PackageResolutionError` when the JVM cannot start.
    """
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    conf = session_conf(settings, app_name=app_name, ui_enabled=ui_enabled)
    conf.update(extra_conf or {})
    external_jvm = "PYSPARK_GATEWAY_PORT" in os.environ
    wanted_packages = conf.get("spark.jars.packages", "")
    if external_jvm:
        # spark-submit already launched the driver: its --master/--packages/... win.
        conf = {k: v for k, v in conf.items() if k not in LAUNCH_TIME_KEYS}
    if settings.spark.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        with _ivy_resolution_lock(conf):
            _open_event_log_filesystem(settings, conf)
            spark = builder.getOrCreate()
    except PySparkRuntimeError as exc:
        if "JAVA_GATEWAY_EXITED" not in str(exc):
            raise
        raise PackageResolutionError(
            "the Spark JVM exited during start-up; usually resolving spark.jars.packages "
            f"{conf.get('spark.jars.packages')!r} from Maven Central failed (see the Ivy "
            "':: problems summary ::' above on stderr). Check that Maven Central is reachable "
            f"or pre-populate the Ivy cache {conf['spark.jars.ivy']}; also check JAVA_HOME "
            "points to Java 17."
        ) from exc
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    # Secrets go into the live configuration only (no command line, no SparkConf); jobs ship
    # this configuration to their tasks, so executors on a cluster get them too.
    for key, value in (s3a_conf(settings) | s3a_secrets(settings)).items():
        hadoop_conf.set(key, value)
    if external_jvm:
        _warn_missing_packages(spark, wanted_packages)
    spark.sparkContext.setLogLevel("WARN")
    return spark


@contextmanager
def _ivy_resolution_lock(conf: Mapping[str, str]) -> Iterator[None]:
    """Held while a driver JVM starts, i.e. resolves ``spark.jars.packages`` into the Ivy home.

    Ivy writes its cache and the retrieved ``jars/`` without locks: two drivers resolving at
    once on a cold cache (two DAG runs on one worker, parallel tests) read each other's
    half-written jars ("invalid sha1", ``ClassNotFoundException`` of the AWS SDK). With a warm
    cache the wait is the other driver's start-up. Under ``spark-submit`` there is nothing
    to resolve here (the launch-time keys were dropped).
    """
    if "spark.jars.packages" not in conf or "spark.jars.ivy" not in conf:
        yield
        return
    with file_lock(Path(conf["spark.jars.ivy"]) / ".market-resolve.lock"):
        yield


def _open_event_log_filesystem(settings: MarketSettings, conf: Mapping[str, str]) -> None:
    """Open an ``s3a://`` event log's file system in the JVM, with the S3A keys, first.

    The SparkContext opens its event log while it starts, before :func:`build_session` can
    put the keys on its Hadoop configuration; the keys are never in the SparkConf (see
    :data:`S3A_SECRET_KEYS`), so a cluster job with its event log in the lake would fail
    with "No AWS credentials". Hadoop caches file systems per scheme, bucket and user: the
    instance opened here with the keys is the one the event logger (and every later read or
    write of that bucket in this JVM) gets. Nothing to do without static keys, where S3A
    finds credentials itself (environment, instance profile).
    """
    log_dir = conf.get("spark.eventLog.dir", "")
    secrets = s3a_secrets(settings)
    if conf.get("spark.eventLog.enabled") != "true" or not log_dir.startswith("s3a://"):
        return
    if not secrets:
        return
    from pyspark import SparkConf, SparkContext

    # Launch the JVM now with the session's launch-time options (master, memory, packages);
    # getOrCreate then reuses this gateway.
    SparkContext._ensure_initialized(conf=SparkConf(loadDefaults=False).setAll(list(conf.items())))
    jvm = SparkContext._jvm
    assert jvm is not None
    hadoop_conf = jvm.org.apache.hadoop.conf.Configuration()
    for key, value in (s3a_conf(settings) | secrets).items():
        hadoop_conf.set(key, value)
    jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI(log_dir), hadoop_conf)


def _warn_missing_packages(spark: SparkSession, wanted: str) -> None:
    have = spark.sparkContext.getConf().get("spark.jars.packages", "") or ""
    missing = [p for p in wanted.split(",") if p and p not in have]
    if missing:
        log.warning(
            "running under spark-submit without these packages; pass them with --packages",
            extra={"missing_packages": ",".join(missing)},
        )
