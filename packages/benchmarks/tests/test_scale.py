"""The scale benchmark's private clusters get ports of their own, never the shared stack's."""

from __future__ import annotations

from pathlib import Path

from market_benchmarks.scale import BROKERS, WORKERS, private_cluster_settings
from market_common.settings import MarketSettings, StackSettings
from market_devstack.kafka import node_ports


def test_cluster_ports_are_distinct_and_not_the_shared_stacks(tmp_path: Path) -> None:
    shared = MarketSettings(stack=StackSettings(state_dir=tmp_path))
    cluster = private_cluster_settings(shared, "t", brokers=BROKERS, workers=WORKERS)
    stack = cluster.stack
    ports = [p for n in range(1, BROKERS + 1) for p in node_ports(stack, n)]
    ports += [stack.spark_master_port, stack.spark_history_port]
    ports += [stack.spark_master_ui_port + i for i in range(WORKERS + 1)]

    assert len(set(ports)) == len(ports), f"ports {sorted(ports)} are not distinct"
    shared_ports = {v for k, v in shared.stack.model_dump().items() if k.endswith("_port")}
    assert not shared_ports & set(ports), "a cluster port is one of the shared stack's"
    assert (stack.kafka_brokers, stack.spark_workers) == (BROKERS, WORKERS)
    assert (cluster.kafka.replication_factor, cluster.kafka.min_insync_replicas) == (3, 2)
    assert stack.state_dir == tmp_path / "bench-scale" / "t"
