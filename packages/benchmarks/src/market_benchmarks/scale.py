"""Scale-out benchmarks: the ingest and Spark benchmarks again, on clusters of the local stack.

``kafka``: a private three-node KRaft cluster (RF 3, ``min.insync.replicas=2``) on loopback
ports of its own; ``market-bench ingest`` runs against it unchanged (settings only) with the
shared stack's MinIO as raw zone → ``ingest_3brokers.json``.

``spark``: a private standalone master + 2 workers (+ history server, event logs in the lake);
``market-bench spark`` runs against it unchanged → ``spark_2workers.json``, with the batch
time beside the ``local[*]`` figure of ``spark.json`` when the suite measured it in the same
run (``ratio_2workers_to_local``).

Both stop their cluster afterwards, whatever happened. The clusters use fixed loopback ports
(below); a port in use fails the start with :class:`PortInUseError` naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from market_common.settings import MarketSettings, load_settings
from market_devstack.cli import scaled_settings
from market_devstack.kafka import cluster_bootstrap
from market_devstack.service import Service, start_all
from market_devstack.spark_cluster import cluster_spark_settings, spark_env
from market_devstack.stack import make_services

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
BENCH_PORTS = {
    "kafka_port": 19092,
    "kafka_controller_port": 19093,
    "spark_master_port": 17077,
    "spark_master_ui_port": 18090,
    "spark_history_port": 18180,
}
ResultsDir = Annotated[Path, typer.Option("--results-dir", help="Where the result JSON goes.")]


def private_cluster_settings(
    name: str, *, brokers: int | None, workers: int | None
) -> MarketSettings:
    """The shared stack's settings (lake, credentials) with a private state dir and ports."""
    settings = load_settings()
    state = Path(settings.stack.state_dir) / "bench-scale" / name
    stack = settings.stack.model_copy(update={"state_dir": state, **BENCH_PORTS})
    settings = settings.model_copy(update={"stack": stack})
    return scaled_settings(settings, kafka_brokers=brokers, spark_workers=workers)


@contextmanager
def running(services: list[Service]) -> Iterator[None]:
    try:
        start_all(services)
        yield
    finally:
        for service in reversed(services):
            service.stop()


def run_child(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, *argv], env=os.environ | env, check=True)


@app.command()
def kafka(results_dir: ResultsDir, records: int = 1_000_000) -> None:
    """``market-bench ingest`` against three brokers → ``ingest_3brokers.json``."""
    settings = private_cluster_settings("kafka", brokers=3, workers=None)
    env = {
        "MARKET_KAFKA__BOOTSTRAP_SERVERS": cluster_bootstrap(settings.stack),
        "MARKET_KAFKA__REPLICATION_FACTOR": str(settings.kafka.replication_factor),
        "MARKET_KAFKA__MIN_INSYNC_REPLICAS": str(settings.kafka.min_insync_replicas),
    }
    with running(make_services("kafka", settings)):
        output = results_dir / "ingest_3brokers"
        run_child(
            ["-m", "market_benchmarks", "ingest", "--records", str(records), "--output", str(output)],
            env,
        )  # fmt: skip


@app.command()
def spark(results_dir: ResultsDir, years: int = 10, symbols: int = 500) -> None:
    """``market-bench spark`` on two workers → ``spark_2workers.json`` (+ ratio to local)."""
    settings = cluster_spark_settings(private_cluster_settings("spark", brokers=None, workers=2))
    env = spark_env(settings)
    scratch = Path(settings.stack.state_dir) / "results"
    with running(make_services("spark", settings)):
        run_child(
            ["-m", "market_benchmarks", "spark", "--years", str(years), "--symbols", str(symbols), "--results-dir", str(scratch)],
            env,
        )  # fmt: skip
    result: dict[str, Any] = json.loads((scratch / "spark.json").read_text())
    local_path = results_dir / "spark.json"
    if local_path.is_file():
        local = json.loads(local_path.read_text())
        if local.get("rows") == result.get("rows") and local.get("spark_batch_s"):
            result["local_spark_batch_s"] = local["spark_batch_s"]
            result["ratio_2workers_to_local"] = round(
                result["spark_batch_s"] / local["spark_batch_s"], 2
            )
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "spark_2workers.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    app()
