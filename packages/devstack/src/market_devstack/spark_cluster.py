"""Spark standalone cluster (opt-in): a master, N workers and the history server.

``market-devstack up --spark-workers 2`` (or ``MARKET_STACK__SPARK_WORKERS=2``) runs,
from the installed pyspark distribution's ``bin/spark-class``:

* ``spark-master``: ``org.apache.spark.deploy.master.Master`` on
  ``spark://<host>:<spark_master_port>``, web UI on ``spark_master_ui_port``;
* ``spark-worker-<i>``: ``org.apache.spark.deploy.worker.Worker`` with
  ``spark_worker_cores`` cores and ``spark_worker_memory`` each (modest by default: 1 / 1g),
  UI on ``spark_master_ui_port + i``;
* ``spark-history``: ``org.apache.spark.deploy.history.HistoryServer`` reading the event
  logs every job writes to ``s3a://<bucket>/spark-events/`` (the lake), UI on
  ``spark_history_port``. It needs ``hadoop-aws`` + the AWS SDK bundle on its classpath
  (resolved once with Maven, like the Kafka jars) and the MinIO credentials, which go into a
  ``0600`` properties file, not onto the command line.

Jobs reach the cluster through settings alone (:func:`cluster_spark_settings`): the master
URL, executor size, driver address on loopback and the event log. The connector jars
(``spark.jars.packages``) are resolved by the driver and fetched by every executor from it;
the S3A options travel in the Spark conf as ``spark.hadoop.*``.

Failure modes: a worker that dies takes its executor with it; the master notices (heartbeat)
and the driver re-runs the lost tasks, and re-computes lost shuffle output, on the
survivors. The master and history server are single processes (no ZooKeeper recovery):
losing the master stops scheduling of new applications.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market_devstack.errors import PrerequisiteMissingError
from market_devstack.service import Service
from market_devstack.tools import cache_root, resolve_maven_jars

if TYPE_CHECKING:
    from market_common.settings import MarketSettings, StackSettings

# pyspark 4.0.1 bundles hadoop-client 3.4.1: hadoop-aws must match it exactly (it brings the
# AWS SDK v2 bundle it was built against).
HADOOP_AWS = ("org.apache.hadoop", "hadoop-aws", "3.4.1")
EVENT_LOG_PREFIX = "spark-events"
DAEMON_MEMORY = "512m"

AWS_SDK_BUNDLE = ("software.amazon.awssdk", "bundle", "2.24.6")  # what hadoop-aws 3.4.1 names

# Exactly the two jars, nothing transitive: pyspark's jars/ hold the Hadoop client and
# slf4j 2; a second (1.x) slf4j-api from hadoop-aws's poms would silence the daemon's log.
_HISTORY_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.market-platform</groupId>
  <artifactId>spark-history-libs</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>{dependencies}
  </dependencies>
</project>
"""
_DEPENDENCY = """
    <dependency>
      <groupId>{0}</groupId><artifactId>{1}</artifactId><version>{2}</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>"""


def spark_home() -> Path:
    """The pyspark distribution (``bin/spark-class``, ``jars/``) of this Python environment."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise PrerequisiteMissingError(
            "pyspark", "install the Spark jobs package (`uv sync --all-extras`)"
        )
    return Path(spec.origin).parent


def master_url(stack: StackSettings) -> str:
    return f"spark://{stack.host}:{stack.spark_master_port}"


def event_log_uri(settings: MarketSettings) -> str:
    """Where every application's event log goes and the history server reads: the lake."""
    return settings.s3.uri(EVENT_LOG_PREFIX)


def cluster_spark_settings(settings: MarketSettings) -> MarketSettings:
    """``settings`` whose Spark section submits to this stack's standalone cluster.

    Only settings change (the jobs do not): master URL, one-core executors as large as a
    worker, the driver on loopback (executors connect back to it), event logs in the lake.
    Keys already in ``spark.extra_conf`` win.
    """
    stack = settings.stack
    spark = settings.spark
    conf = {
        "spark.driver.host": stack.host,
        "spark.driver.bindAddress": stack.host,
        "spark.executor.cores": str(stack.spark_worker_cores),
        "spark.cores.max": str(stack.spark_workers * stack.spark_worker_cores),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_log_uri(settings),
    }
    updated = spark.model_copy(
        update={
            "master": master_url(stack),
            "executor_memory": stack.spark_worker_memory,
            "extra_conf": conf | dict(spark.extra_conf),
        }
    )
    return settings.model_copy(update={"spark": updated})


def spark_env(settings: MarketSettings) -> dict[str, str]:
    """``MARKET_SPARK__*`` variables that give a child process ``settings.spark``.

    What a user exports to submit a job to a cluster (e.g. the result of
    :func:`cluster_spark_settings`); :func:`market_common.runtime.settings_env` leaves the
    Spark section out, and its ``extra_conf`` mapping travels as JSON.
    """
    sp = settings.spark
    return {
        "MARKET_SPARK__MASTER": sp.master,
        "MARKET_SPARK__DRIVER_MEMORY": sp.driver_memory,
        "MARKET_SPARK__EXECUTOR_MEMORY": sp.executor_memory,
        "MARKET_SPARK__SHUFFLE_PARTITIONS": str(sp.shuffle_partitions),
        "MARKET_SPARK__EXTRA_CONF": json.dumps(sp.extra_conf, sort_keys=True),
    }


def _get_json(url: str, timeout_s: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback http
        return json.load(response)


class _SparkDaemon(Service):
    """A ``spark-class <main class>`` daemon with a small heap and loopback-only binding."""

    main_class: str
    # A JVM start plus registration; generous because the machine may be busy.
    startup_timeout_s = 180.0

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "SPARK_HOME": str(spark_home()),
                "SPARK_LOCAL_IP": self.stack.host,
                "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
                "SPARK_LOG_DIR": str(self.state_dir / "logs"),
                # Executors run PySpark workers with the driver's interpreter path; daemons
                # launched from this environment see the same one.
                "PYSPARK_PYTHON": env.get("PYSPARK_PYTHON", sys.executable),
            }
        )
        return env

    def spark_class(self, *args: str) -> list[str]:
        return [str(spark_home() / "bin" / "spark-class"), self.main_class, *args]

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def master_state(self) -> dict[str, Any]:
        return dict(_get_json(f"http://{self.stack.host}:{self.stack.spark_master_ui_port}/json/"))


class SparkMasterService(_SparkDaemon):
    """The standalone master: schedules applications onto the workers' cores and memory."""

    name = "spark-master"
    main_class = "org.apache.spark.deploy.master.Master"

    def ports(self) -> list[int]:
        return [self.stack.spark_master_port, self.stack.spark_master_ui_port]

    def endpoints(self) -> dict[str, str]:
        return {
            "master": master_url(self.stack),
            "ui": f"http://{self.stack.host}:{self.stack.spark_master_ui_port}",
        }

    def command(self) -> list[str]:
        return self.spark_class(
            "--host", self.stack.host,
            "--port", str(self.stack.spark_master_port),
            "--webui-port", str(self.stack.spark_master_ui_port),
        )  # fmt: skip

    def probe(self) -> bool:
        return self.master_state().get("status") == "ALIVE"


class SparkWorkerService(_SparkDaemon):
    """Worker ``index`` (1-based): offers its cores/memory to the master, runs executors."""

    main_class = "org.apache.spark.deploy.worker.Worker"
    stop_timeout_s = 10.0

    def __init__(self, settings: MarketSettings, console: Any = None, *, index: int) -> None:
        super().__init__(settings, console)
        self.index = index
        self.name = f"spark-worker-{index}"

    @property
    def ui_port(self) -> int:
        return self.stack.spark_master_ui_port + self.index

    def ports(self) -> list[int]:
        return [self.ui_port]

    def endpoints(self) -> dict[str, str]:
        return {"ui": f"http://{self.stack.host}:{self.ui_port}"}

    def command(self) -> list[str]:
        return self.spark_class(
            "--host", self.stack.host,
            "--port", "0",  # the RPC port is announced to the master: any free one
            "--webui-port", str(self.ui_port),
            "--cores", str(self.stack.spark_worker_cores),
            "--memory", self.stack.spark_worker_memory,
            "--work-dir", str(self.home / "work"),
            master_url(self.stack),
        )  # fmt: skip

    def registration(self) -> dict[str, Any] | None:
        """This worker's entry in the master's state (None until it registered)."""
        suffix = f":{self.ui_port}"
        for worker in self.master_state().get("workers", []):
            if str(worker.get("webuiaddress", "")).endswith(suffix):
                return dict(worker)
        return None

    def probe(self) -> bool:
        # The master keeps DEAD entries of earlier incarnations: look for an ALIVE one.
        suffix = f":{self.ui_port}"
        return any(
            w.get("state") == "ALIVE" and str(w.get("webuiaddress", "")).endswith(suffix)
            for w in self.master_state().get("workers", [])
        )


class SparkHistoryService(_SparkDaemon):
    """The history server: the UI of finished applications, from event logs in the lake."""

    name = "spark-history"
    main_class = "org.apache.spark.deploy.history.HistoryServer"

    @property
    def properties_path(self) -> Path:
        return self.home / "history.properties"

    def ports(self) -> list[int]:
        return [self.stack.spark_history_port]

    def endpoints(self) -> dict[str, str]:
        return {
            "ui": f"http://{self.stack.host}:{self.stack.spark_history_port}",
            "event_logs": event_log_uri(self.settings),
        }

    def libs(self) -> Path:
        _, artifact, version = HADOOP_AWS
        pom = _HISTORY_POM.format(
            dependencies="".join(_DEPENDENCY.format(*c) for c in (HADOOP_AWS, AWS_SDK_BUNDLE))
        )
        return resolve_maven_jars(
            cache_root() / "spark-history" / f"{version}-sdk-{AWS_SDK_BUNDLE[2]}" / "libs",
            pom,
            required_jar=f"{artifact}-{version}.jar",
            what=f"{artifact} {version}",
            console=self.console,
        )

    def prepare(self) -> None:
        super().prepare()
        self.libs()
        from market_common.clients import s3_client

        # S3A sees a prefix only once an object is under it; the server refuses a missing dir.
        s3 = self.settings.s3
        s3_client(self.settings).put_object(Bucket=s3.bucket, Key=f"{EVENT_LOG_PREFIX}/", Body=b"")
        props = {
            "spark.history.fs.logDirectory": event_log_uri(self.settings),
            "spark.history.ui.port": str(self.stack.spark_history_port),
            "spark.history.fs.update.interval": "5s",
            "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.path.style.access": str(s3.path_style).lower(),
            "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        }
        if s3.endpoint_url:
            props["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint_url
            props["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
                s3.endpoint_url.startswith("https")
            ).lower()
        if s3.access_key_id and s3.secret_access_key:
            props["spark.hadoop.fs.s3a.access.key"] = s3.access_key_id.get_secret_value()
            props["spark.hadoop.fs.s3a.secret.key"] = s3.secret_access_key.get_secret_value()
        fd = os.open(self.properties_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(f"{k}={v}\n" for k, v in props.items()))

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["SPARK_DAEMON_CLASSPATH"] = f"{self.libs()}/*"
        return env

    def command(self) -> list[str]:
        return self.spark_class("--properties-file", str(self.properties_path))

    def probe(self) -> bool:
        self.applications()  # raises until the REST API answers
        return True

    def applications(self) -> list[dict[str, Any]]:
        """The applications the history server lists (finished and running)."""
        url = f"http://{self.stack.host}:{self.stack.spark_history_port}/api/v1/applications"
        return list(_get_json(url))


def cluster_services(settings: MarketSettings, console: Any = None) -> list[Service]:
    """Master, workers and history server in start order; empty when ``spark_workers == 0``."""
    workers = settings.stack.spark_workers
    if workers == 0:
        return []
    return [
        SparkMasterService(settings, console),
        *(SparkWorkerService(settings, console, index=i) for i in range(1, workers + 1)),
        SparkHistoryService(settings, console),
    ]
