"""Apache Kafka in KRaft mode (one combined broker+controller) from Maven Central jars.

The jars are resolved once with Maven (checksums enforced with ``--strict-checksums``) into
``~/.cache/market-platform/kafka/<version>/libs``; the broker and the Kafka tools
(e.g. ``ProducerPerformance``) both run from that directory via :func:`kafka_java_command`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from market_localstack.errors import ArtifactResolutionError, ServiceStartError
from market_localstack.process import file_lock
from market_localstack.service import Service
from market_localstack.tools import cache_root, find_java, find_mvn

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

# Kafka 4.1.1 (Scala 2.13): verified with kafka-python 3.0.12 (admin, keyed produce, group consume).
KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# Kafka 4.x logs through log4j2 behind the slf4j 1.7 API it depends on.
LOG4J_VERSION = "2.24.3"
MESSAGE_MAX_BYTES = 10 * 1024 * 1024

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.market-platform</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

# Console-only log4j2 config: the service's stdout already goes to <state_dir>/logs/kafka.log.
LOG4J2_YAML = """Configuration:
  name: market-localstack
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Logger:
      - name: kafka
        level: INFO
      - name: org.apache.kafka
        level: INFO
      - name: kafka.request.logger
        level: WARN
      - name: state.change.logger
        level: WARN
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""

_COMPLETE_MARKER = ".complete"


def kafka_cache_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_root() / "kafka" / version


def kafka_libs_dir(version: str = KAFKA_VERSION) -> Path:
    return kafka_cache_dir(version) / "libs"


def render_pom(version: str = KAFKA_VERSION) -> str:
    return _POM.format(scala=SCALA_VERSION, kafka=version, log4j=LOG4J_VERSION)


def resolve_kafka_jars(version: str = KAFKA_VERSION, console: Console | None = None) -> Path:
    """Download (once) the broker + tools jars; returns the ``libs`` directory.

    Maven does the work so every jar is checked against Maven Central's checksums
    (``--strict-checksums`` makes a mismatch fatal) and transitive versions match Kafka's pom.
    """
    libs = kafka_libs_dir(version)
    if (libs / _COMPLETE_MARKER).is_file():
        return libs
    with file_lock(kafka_cache_dir(version) / ".lock"):
        if (libs / _COMPLETE_MARKER).is_file():
            return libs
        mvn = find_mvn()
        find_java()
        started = time.monotonic()
        if console is not None:
            console.print(f"resolving Kafka {version} jars from Maven Central into {libs} …")
        with tempfile.TemporaryDirectory(prefix="kafka-libs-") as tmp:
            work = Path(tmp)
            (work / "pom.xml").write_text(render_pom(version))
            out = work / "libs"
            argv = [
                mvn, "-q", "-B", "--strict-checksums", "-f", str(work / "pom.xml"),
                "dependency:copy-dependencies", f"-DoutputDirectory={out}",
                "-Dmdep.useRepositoryLayout=false", "-DincludeScope=runtime",
            ]  # fmt: skip
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            jars = sorted(out.glob("*.jar")) if out.is_dir() else []
            if proc.returncode != 0 or not any(
                j.name == f"kafka_{SCALA_VERSION}-{version}.jar" for j in jars
            ):
                raise ArtifactResolutionError(
                    f"Maven could not resolve Kafka {version} (exit {proc.returncode}). Check "
                    f"network access to https://repo.maven.apache.org and ~/.m2/settings.xml, "
                    f"then rerun `market-localstack up`.\n{(proc.stdout + proc.stderr)[-3000:]}"
                )
            if libs.exists():
                shutil.rmtree(libs)
            libs.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(out), str(libs))
        (libs / _COMPLETE_MARKER).write_text(
            f"{len(jars)} jars in {time.monotonic() - started:.1f}s\n"
        )
        if console is not None:
            console.print(f"Kafka {version}: {len(jars)} jars in {time.monotonic() - started:.1f}s")
    return libs


def kafka_classpath(version: str = KAFKA_VERSION) -> str:
    """The ``-cp`` value for the cached jars (resolved on first use)."""
    return f"{resolve_kafka_jars(version)}/*"


def log4j_config_path(version: str = KAFKA_VERSION) -> Path:
    path = kafka_cache_dir(version) / "log4j2.yaml"
    if not path.is_file() or path.read_text() != LOG4J2_YAML:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LOG4J2_YAML)
    return path


def kafka_java_command(
    main_class: str,
    args: Sequence[str] = (),
    heap: str = "512m",
    *,
    version: str = KAFKA_VERSION,
    jvm_options: Sequence[str] = (),
) -> list[str]:
    """argv running ``main_class`` from the broker's jars, e.g.
    ``kafka_java_command("org.apache.kafka.tools.ProducerPerformance", ["--topic", …])``.
    """
    return [
        find_java(),
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j_config_path(version)}",
        *jvm_options,
        "-cp",
        kafka_classpath(version),
        main_class,
        *args,
    ]


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (like Uuid)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def render_server_properties(
    *, host: str, port: int, controller_port: int, data_dir: Path, node_id: int = 1
) -> str:
    """server.properties of a single-node combined broker+controller bound to ``host`` only."""
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Topics are created explicitly (admin client) so typos do not create topics.
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(MESSAGE_MAX_BYTES),
        "replica.fetch.max.bytes": str(MESSAGE_MAX_BYTES),
        "socket.request.max.bytes": str(100 * 1024 * 1024),
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "num.network.threads": "3",
        "num.io.threads": "4",
    }
    lines = ["# Rendered by market-localstack on every `up`; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


class KafkaService(Service):
    """The broker: ``java -cp libs/* kafka.Kafka server.properties`` with KRaft storage."""

    name = "kafka"
    startup_timeout_s = 120.0
    stop_timeout_s = 30.0  # controlled shutdown flushes logs and the metadata snapshot
    heap = "512m"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"{self.stack.host}:{self.stack.kafka_port}"

    def ports(self) -> list[int]:
        return [self.stack.kafka_port, self.stack.kafka_controller_port]

    def endpoints(self) -> dict[str, str]:
        return {"bootstrap": self.bootstrap}

    def prepare(self) -> None:
        resolve_kafka_jars(console=self.console)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            render_server_properties(
                host=self.stack.host,
                port=self.stack.kafka_port,
                controller_port=self.stack.kafka_controller_port,
                data_dir=self.data_dir,
            )
        )
        if not (self.data_dir / "meta.properties").is_file():
            self.format_storage()

    def format_storage(self) -> None:
        """One-time KRaft format (``--standalone``: this node is the whole controller quorum)."""
        id_file = self.home / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        argv = kafka_java_command(
            "kafka.tools.StorageTool",
            ["format", "-t", cluster_id, "-c", str(self.config_path), "--standalone"],
            heap="256m",
        )
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ServiceStartError(
                f"formatting Kafka storage in {self.data_dir} failed (exit {proc.returncode}). "
                f"If the directory holds data of another cluster, remove {self.home} and rerun "
                f"`market-localstack up`.\n{(proc.stdout + proc.stderr)[-2000:]}"
            )

    def command(self) -> list[str]:
        return kafka_java_command(
            "kafka.Kafka",
            [str(self.config_path)],
            heap=self.heap,
            jvm_options=[f"-Dkafka.logs.dir={self.state_dir / 'logs'}"],
        )

    def probe(self) -> bool:
        """Metadata round trip through kafka-python's admin client."""
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="market-localstack-probe",
            request_timeout_ms=5000,
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()
