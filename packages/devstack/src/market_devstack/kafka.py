"""Apache Kafka in KRaft mode from Maven Central jars: one node, or an opt-in N-node cluster.

Default: one combined broker+controller node (``kafka``), replication factor 1.
``stack.kafka_brokers = N > 1`` (``market-devstack up --kafka-brokers 3``): nodes
``kafka-1 … kafka-N``, each **broker and controller**. Why combined: a 3-voter Raft quorum
survives the loss of any one node (majority 2) and three brokers carry replication factor 3
with ``min.insync.replicas=2``, so one SIGKILLed node loses neither metadata nor
acknowledged records, with three JVMs instead of six on a small machine. Production
clusters should run dedicated controllers (``process.roles=controller``) so a broker's load
cannot stall the quorum; the settings and clients are the same. The quorum is static
(``controller.quorum.voters``): the node set is fixed when the storage is formatted.

The jars are resolved once with Maven (checksums enforced with ``--strict-checksums``) into
``~/.cache/market-platform/kafka/<version>/libs``; the broker and the Kafka tools
(e.g. ``ProducerPerformance``) both run from that directory via :func:`kafka_java_command`.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from market_common.runtime import file_lock
from market_devstack.errors import ServiceStartError
from market_devstack.service import Service
from market_devstack.tools import cache_root, find_java, resolve_maven_jars

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from market_common.settings import MarketSettings, StackSettings

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
  name: market-devstack
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


def kafka_cache_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_root() / "kafka" / version


def kafka_libs_dir(version: str = KAFKA_VERSION) -> Path:
    return kafka_cache_dir(version) / "libs"


def render_pom(version: str = KAFKA_VERSION) -> str:
    return _POM.format(scala=SCALA_VERSION, kafka=version, log4j=LOG4J_VERSION)


def resolve_kafka_jars(version: str = KAFKA_VERSION, console: Console | None = None) -> Path:
    """Download (once) the broker + tools jars; returns the ``libs`` directory."""
    return resolve_maven_jars(
        kafka_libs_dir(version),
        render_pom(version),
        required_jar=f"kafka_{SCALA_VERSION}-{version}.jar",
        what=f"Kafka {version}",
        console=console,
    )


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
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (like Uuid).

    Like Kafka's own ``Uuid.randomUuid``, an id starting with ``-`` is drawn again: the
    storage tool's argument parser would read ``-t -abc…`` as a missing value (1 in 64 ids).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def node_ports(stack: StackSettings, node_id: int) -> tuple[int, int]:
    """(broker port, controller port) of cluster node ``node_id`` (1-based) on ``stack.host``."""
    offset = stack.kafka_node_port_step * (node_id - 1)
    return stack.kafka_port + offset, stack.kafka_controller_port + offset


def cluster_bootstrap(stack: StackSettings) -> str:
    """``host:port,…`` of every broker the stack runs (one entry for the single node)."""
    return ",".join(
        f"{stack.host}:{node_ports(stack, n)[0]}" for n in range(1, stack.kafka_brokers + 1)
    )


def cluster_replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) the stack uses for ``brokers`` nodes.

    Three copies where there are three brokers, and acks=all needs all but one of them:
    one node may fail without refusing writes, two failing refuse writes instead of
    acknowledging records held by a single copy. One broker: (1, 1), the old default.
    """
    factor = min(brokers, 3)
    return factor, max(1, factor - 1)


def render_server_properties(
    *,
    host: str,
    port: int,
    controller_port: int,
    data_dir: Path,
    node_id: int = 1,
    voters: str | None = None,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> str:
    """server.properties of a combined broker+controller node bound to ``host`` only.

    ``voters`` (``id@host:port,…``) makes the node one of a static controller quorum;
    without it the node is a quorum of its own (formatted ``--standalone``). The
    replication arguments set the defaults of new topics and of Kafka's internal topics.
    """
    quorum = (
        {"controller.quorum.voters": voters}
        if voters
        else {"controller.quorum.bootstrap.servers": f"{host}:{controller_port}"}
    )
    factor, min_isr = str(replication_factor), str(min_insync_replicas)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        **quorum,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": factor,
        "min.insync.replicas": min_isr,
        # Topics are created explicitly (admin client) so typos do not create topics.
        "auto.create.topics.enable": "false",
        # A replica that was not in sync must never become leader: it would drop acked records.
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": factor,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(MESSAGE_MAX_BYTES),
        "replica.fetch.max.bytes": str(MESSAGE_MAX_BYTES),
        "socket.request.max.bytes": str(100 * 1024 * 1024),
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "num.network.threads": "3",
        "num.io.threads": "4",
    }
    lines = ["# Rendered by market-devstack on every `up`; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


class KafkaService(Service):
    """One node: ``java -cp libs/* kafka.Kafka server.properties`` with KRaft storage.

    ``node_id=None``: the single-node default (service ``kafka``, its own quorum). With a
    node id: node ``kafka-<id>`` of the ``stack.kafka_brokers``-node cluster.
    """

    name = "kafka"
    startup_timeout_s = 120.0
    stop_timeout_s = 30.0  # controlled shutdown flushes logs and the metadata snapshot
    heap = "512m"

    def __init__(
        self,
        settings: MarketSettings,
        console: Console | None = None,
        *,
        node_id: int | None = None,
    ) -> None:
        super().__init__(settings, console)
        self.node_id = node_id or 1
        self.clustered = node_id is not None
        if self.clustered:
            self.name = f"kafka-{node_id}"
        self.port, self.controller_port = node_ports(self.stack, self.node_id)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"{self.stack.host}:{self.port}"

    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    def endpoints(self) -> dict[str, str]:
        return {"bootstrap": self.bootstrap}

    def voters(self) -> str | None:
        """The static quorum ``1@host:port,…`` of a cluster node; None for the single node."""
        if not self.clustered:
            return None
        return ",".join(
            f"{n}@{self.stack.host}:{node_ports(self.stack, n)[1]}"
            for n in range(1, self.stack.kafka_brokers + 1)
        )

    def prepare(self) -> None:
        resolve_kafka_jars(console=self.console)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        kafka = self.settings.kafka
        self.config_path.write_text(
            render_server_properties(
                host=self.stack.host,
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data_dir,
                node_id=self.node_id,
                voters=self.voters(),
                replication_factor=kafka.replication_factor,
                min_insync_replicas=kafka.min_insync_replicas,
            )
        )
        if not (self.data_dir / "meta.properties").is_file():
            self.format_storage()

    def format_storage(self) -> None:
        """One-time KRaft format: ``--standalone`` for the single node; cluster nodes share
        one cluster id (``<state_dir>/kafka-cluster.id``) and the static voter set."""
        id_file = (
            self.state_dir / "kafka-cluster.id" if self.clustered else self.home / "cluster.id"
        )
        with file_lock(id_file.with_suffix(".lock")):
            if not id_file.is_file():
                id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        argv = kafka_java_command(
            "kafka.tools.StorageTool",
            ["format", "-t", cluster_id, "-c", str(self.config_path)]
            + ([] if self.clustered else ["--standalone"]),
            heap="256m",
        )
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ServiceStartError(
                f"formatting Kafka storage in {self.data_dir} failed (exit {proc.returncode}). "
                f"If the directory holds data of another cluster, remove {self.home} and rerun "
                f"`market-devstack up`.\n{(proc.stdout + proc.stderr)[-2000:]}"
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
            client_id="market-devstack-probe",
            request_timeout_ms=5000,
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()
