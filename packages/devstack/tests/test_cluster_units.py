"""Cluster layout of the opt-in scale-out (Kafka nodes, Spark settings): no services needed."""

from __future__ import annotations

from pathlib import Path

from market_common.settings import MarketSettings, StackSettings
from market_devstack.cli import scaled_settings
from market_devstack.kafka import (
    KafkaService,
    cluster_bootstrap,
    cluster_replication,
    render_server_properties,
)
from market_devstack.spark_cluster import cluster_services, cluster_spark_settings
from market_devstack.stack import make_services


def _props(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _three_brokers(tmp_path: Path) -> MarketSettings:
    stack = StackSettings(state_dir=tmp_path, kafka_port=19092, kafka_controller_port=19093)
    return scaled_settings(MarketSettings(stack=stack), kafka_brokers=3, spark_workers=None)


def test_replication_is_three_copies_two_in_sync_where_there_are_three_brokers() -> None:
    assert cluster_replication(1) == (1, 1)
    assert cluster_replication(2) == (2, 1)
    assert cluster_replication(3) == (3, 2)
    assert cluster_replication(5) == (3, 2)


def test_three_nodes_form_one_static_quorum_on_distinct_loopback_ports(tmp_path: Path) -> None:
    settings = _three_brokers(tmp_path)
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
    nodes = make_services("kafka", settings)
    assert [n.name for n in nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert cluster_bootstrap(settings.stack) == "127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292"
    ports = [p for n in nodes for p in n.ports()]
    assert len(set(ports)) == 6
    for node in nodes:
        assert isinstance(node, KafkaService)
        node.home.mkdir(parents=True)
        node.config_path.write_text(
            render_server_properties(
                host="127.0.0.1",
                port=node.port,
                controller_port=node.controller_port,
                data_dir=node.data_dir,
                node_id=node.node_id,
                voters=node.voters(),
                replication_factor=3,
                min_insync_replicas=2,
            )
        )
        props = _props(node.config_path)
        assert props["node.id"] == str(node.node_id)
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == (
            "1@127.0.0.1:19093,2@127.0.0.1:19193,3@127.0.0.1:19293"
        )
        assert "controller.quorum.bootstrap.servers" not in props
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["unclean.leader.election.enable"] == "false"


def test_single_broker_default_is_unchanged(tmp_path: Path) -> None:
    settings = MarketSettings(stack=StackSettings(state_dir=tmp_path))
    assert [n.name for n in make_services("kafka", settings)] == ["kafka"]
    assert make_services("spark", settings) == []
    assert cluster_bootstrap(settings.stack) == "127.0.0.1:9092"


def test_spark_cluster_is_reached_by_settings_only(tmp_path: Path) -> None:
    stack = StackSettings(state_dir=tmp_path, spark_workers=2, spark_master_port=17077)
    settings = cluster_spark_settings(MarketSettings(stack=stack))
    assert settings.spark.master == "spark://127.0.0.1:17077"
    assert settings.spark.executor_memory == "1g"
    conf = settings.spark.extra_conf
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert conf["spark.cores.max"] == "2"
    assert conf["spark.eventLog.dir"] == "s3a://market-lake/spark-events"
    names = [s.name for s in cluster_services(settings)]
    assert names == ["spark-master", "spark-worker-1", "spark-worker-2", "spark-history"]
