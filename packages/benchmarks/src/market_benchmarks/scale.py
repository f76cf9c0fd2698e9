"""``market-bench scale``: producer, consumer and Spark batch on clusters, beside one node, in one run.

``kafka``: ``market-bench ingest`` (our producer with ``acks=all``, then the consumer → raw
zone) with the same records twice: against the shared stack's single broker, then against a
private three-node KRaft cluster (RF 3, ``min.insync.replicas=2``) on free loopback ports of
its own. The raw zone is the shared stack's MinIO both times.

``spark``: ``market-bench spark`` (the historical batch job, on generated local files) with the
same data twice: on ``local[*]``, then on a private standalone master + 2 workers (1 core, 1g
each; history server with event logs in the lake). The job is unchanged; only the
``MARKET_SPARK__*`` variables differ.

A pair is measured one side right after the other on the same machine, and the 1-minute load
average before each side is recorded: on a shared machine it says how comparable they are.
A benchmark whose records do not all arrive (producer failures, consumer rows ≠ records) or
whose Spark output differs from the DuckDB reference fails this command instead of reporting
a throughput. Results: ``scale.json`` + ``scale.md`` in ``--results-dir``; each side's own
result files stay under ``<state_dir>/bench-scale/``. Each cluster is stopped afterwards,
whatever happened.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from market_common.runtime import child_env
from market_common.settings import MarketSettings, load_settings
from market_devstack.cli import scaled_settings
from market_devstack.kafka import cluster_bootstrap
from market_devstack.service import Service, start_all
from market_devstack.spark_cluster import cluster_spark_settings, spark_env
from market_devstack.stack import make_services

RESULT = "scale"
BROKERS = 3
WORKERS = 2
SIDES = ("kafka", "spark")


class ScaleBenchmarkError(RuntimeError):
    """A side of a pair lost records or computed a different result: no figure is reported."""


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_series(step: int, count: int, taken: set[int]) -> int:
    """A loopback port ``p`` with ``p + step * i`` free and not in ``taken`` for every
    ``i < count`` (a cluster's node ports); adds them to ``taken``."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        series = [port + step * i for i in range(count)]
        if series[-1] < 65536 and all(p not in taken and _bindable(p) for p in series):
            taken.update(series)
            return port
    raise ScaleBenchmarkError(f"no {count} free loopback ports {step} apart")


def private_cluster_settings(
    settings: MarketSettings, name: str, *, brokers: int | None, workers: int | None
) -> MarketSettings:
    """The shared stack's settings (lake, credentials) with a private state dir and free ports.

    Never the shared stack's ports, nor fixed ones: the machine may run other stacks.
    """
    stack = settings.stack
    step, taken = stack.kafka_node_port_step, set[int]()
    ports = {
        "kafka_port": free_port_series(step, brokers or 1, taken),
        "kafka_controller_port": free_port_series(step, brokers or 1, taken),
        "spark_master_port": free_port_series(1, 1, taken),
        # Worker i's UI listens on spark_master_ui_port + i.
        "spark_master_ui_port": free_port_series(1, (workers or 0) + 1, taken),
        "spark_history_port": free_port_series(1, 1, taken),
    }
    state = Path(stack.state_dir) / "bench-scale" / name
    private = stack.model_copy(update={"state_dir": state, **ports})
    settings = settings.model_copy(update={"stack": private})
    return scaled_settings(settings, kafka_brokers=brokers, spark_workers=workers)


@contextmanager
def running(services: list[Service]) -> Iterator[None]:
    try:
        start_all(services)
        yield
    finally:
        for service in reversed(services):
            service.stop()


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def run_child(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "market_benchmarks", *argv], env=env, check=True)


def _ingest_side(settings: MarketSettings, records: int, output: Path) -> dict[str, Any]:
    """``market-bench ingest`` against ``settings``' brokers; its figures, checked complete."""
    load = _load()
    argv = ["ingest", "--records", str(records), "--skip-java", "--output", str(output)]
    run_child(argv, child_env(settings=settings))
    return ingest_figures(settings, records, output, load)


def ingest_figures(
    settings: MarketSettings, records: int, output: Path, load: float | None
) -> dict[str, Any]:
    """The figures of ``<output>.json`` (an ingest run against ``settings``), checked complete."""
    result = json.loads(output.with_suffix(".json").read_text())
    producer, consumer = result["producer"], result["consumer"]
    if producer["acked"] != records or producer["failed"] or producer["dead_lettered"]:
        raise ScaleBenchmarkError(
            f"producer against {settings.kafka.bootstrap_servers}: {producer}"
        )
    if consumer["rows_written"] != records:
        raise ScaleBenchmarkError(
            f"consumer against {settings.kafka.bootstrap_servers} wrote "
            f"{consumer['rows_written']} rows of {records}"
        )
    return {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "replication_factor": settings.kafka.replication_factor,
        "min_insync_replicas": settings.kafka.min_insync_replicas,
        "acks": settings.kafka.acks,
        "load_avg_1m_before": load,
        "load_avg_1m_at_end": result["machine"]["load_avg_1m_at_end"],
        "producer_msgs_per_s": producer["msgs_per_s"],
        "producer_s": producer["elapsed_s"],
        "consumer_rows_per_s": consumer["rows_per_s"],
        "consumer_s": consumer["elapsed_s"],
        "measured_at": result["date"],
        "result_file": str(output.with_suffix(".json")),
    }


def bench_kafka(settings: MarketSettings, *, records: int) -> dict[str, Any]:
    """The ingest benchmark on one broker, then on a private three-broker cluster."""
    scratch = Path(settings.stack.state_dir) / "bench-scale" / "results"
    one = _ingest_side(settings, records, scratch / "ingest_1broker")
    cluster = private_cluster_settings(settings, "kafka", brokers=BROKERS, workers=None)
    # Only the brokers change: lake, credentials and everything else stay the shared stack's.
    kafka = cluster.kafka.model_copy(update={"bootstrap_servers": cluster_bootstrap(cluster.stack)})
    with running(make_services("kafka", cluster)):
        three = _ingest_side(
            cluster.model_copy(update={"kafka": kafka}), records, scratch / "ingest_3brokers"
        )
    return {
        "records": records,
        "one_broker": one,
        "three_brokers": three,
        "producer_ratio_3_to_1": round(
            three["producer_msgs_per_s"] / one["producer_msgs_per_s"], 2
        ),
        "consumer_ratio_3_to_1": round(
            three["consumer_rows_per_s"] / one["consumer_rows_per_s"], 2
        ),
    }


def _spark_side(
    settings: MarketSettings, years: int, symbols: int, ticks: int, out: Path
) -> dict[str, Any]:
    load = _load()
    argv = ["spark", "--years", str(years), "--symbols", str(symbols), "--ticks", str(ticks),
            "--results-dir", str(out)]  # fmt: skip
    run_child(argv, child_env(spark_env(settings), settings=settings))
    result = json.loads((out / "spark.json").read_text())
    if not result["outputs_match"]:
        raise ScaleBenchmarkError(f"Spark on {settings.spark.master} differs from DuckDB: {result}")
    return {
        "master": result["spark_master"],
        "load_avg_1m_before": load,
        "rows": result["rows"],
        "batch_s": result["spark_batch_s"],
        "batch_warm_s": result["spark_batch_warm_s"],
        "session_s": result["spark_session_s"],
        "outputs_match_duckdb": result["outputs_match"],
        "result_file": str(out / "spark.json"),
    }


def bench_spark(
    settings: MarketSettings, *, years: int, symbols: int, ticks: int
) -> dict[str, Any]:
    """The Spark benchmark on ``local[*]``, then on a private master + two workers."""
    scratch = Path(settings.stack.state_dir) / "bench-scale" / "results"
    local_settings = settings.model_copy(
        update={"spark": settings.spark.model_copy(update={"master": "local[*]"})}
    )
    local = _spark_side(local_settings, years, symbols, ticks, scratch / "spark_local")
    cluster = private_cluster_settings(settings, "spark", brokers=None, workers=WORKERS)
    with running(make_services("spark", cluster)):
        two = _spark_side(
            cluster_spark_settings(cluster), years, symbols, ticks, scratch / "spark_2workers"
        )
    return {
        "years": years,
        "symbols": symbols,
        "worker_cores": cluster.stack.spark_worker_cores,
        "worker_memory": cluster.stack.spark_worker_memory,
        "local": local,
        "two_workers": two,
        "ratio_2workers_to_local": round(two["batch_s"] / local["batch_s"], 2),
        "ratio_warm_2workers_to_local": round(two["batch_warm_s"] / local["batch_warm_s"], 2),
    }


def _loads(side: dict[str, Any]) -> str:
    before = side.get("load_avg_1m_before")
    end = side.get("load_avg_1m_at_end")
    return f"{'?' if before is None else before} → {'?' if end is None else end}"


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Scale-out benchmark (#17)",
        "",
        f"Measured {result['measured_at']} on {result['cores']} cores by `market-bench scale`; "
        "each pair one side right after the other in this run. No goal: the figures show what "
        "a cluster costs or gains on one machine, where every node shares the same cores.",
        "",
    ]
    kafka = result.get("kafka")
    if kafka:
        one, three = kafka["one_broker"], kafka["three_brokers"]
        lines += [
            f"## Kafka: {kafka['records']:,} records, acks=all, every record in the raw zone",
            "",
            "| | 1 broker (RF 1) | 3 brokers (RF 3, min ISR 2) | 3 / 1 |",
            "|---|---:|---:|---:|",
            f"| producer msgs/s | {one['producer_msgs_per_s']:,.0f} | "
            f"{three['producer_msgs_per_s']:,.0f} | {kafka['producer_ratio_3_to_1']} |",
            f"| consumer → raw zone rows/s | {one['consumer_rows_per_s']:,.0f} | "
            f"{three['consumer_rows_per_s']:,.0f} | {kafka['consumer_ratio_3_to_1']} |",
            f"| load average (1 min) before → at end | {_loads(one)} | {_loads(three)} | |",
            "",
            *([kafka["note"], ""] if kafka.get("note") else []),
        ]
    spark = result.get("spark")
    if spark:
        local, two = spark["local"], spark["two_workers"]
        lines += [
            f"## Spark batch: {local['rows']:,} daily bars ({spark['years']} years x "
            f"{spark['symbols']} symbols), output = DuckDB's on both",
            "",
            f"| | `local[*]` | 2 workers ({spark['worker_cores']} core, "
            f"{spark['worker_memory']} each) | 2 workers / local |",
            "|---|---:|---:|---:|",
            f"| first run s | {local['batch_s']} | {two['batch_s']} | "
            f"{spark['ratio_2workers_to_local']} |",
            f"| warm full rebuild s | {local['batch_warm_s']} | {two['batch_warm_s']} | "
            f"{spark['ratio_warm_2workers_to_local']} |",
            f"| load average (1 min) before | {local['load_avg_1m_before']} | "
            f"{two['load_avg_1m_before']} | |",
            "",
        ]
    return "\n".join(lines)


ResultsDir = Annotated[Path, typer.Option("--results-dir", help="Where scale.json/.md go.")]


def scale(
    results_dir: ResultsDir = Path("benchmarks/results"),
    only: Annotated[
        list[str] | None, typer.Option(help=f"Run only these sides ({', '.join(SIDES)}).")
    ] = None,
    records: Annotated[int, typer.Option(help="Records per Kafka side.")] = 1_000_000,
    years: Annotated[int, typer.Option(help="Years of daily bars per Spark side.")] = 10,
    symbols: Annotated[int, typer.Option(help="Symbols of daily bars per Spark side.")] = 500,
    ticks: Annotated[
        int, typer.Option(help="Ticks of the Spark benchmark's stream part (not compared).")
    ] = 100_000,
) -> None:
    """Producer and consumer on 3 brokers vs 1; Spark batch on 2 workers vs local[*]."""
    from market_devstack.stack import ensure_up

    unknown = set(only or ()) - set(SIDES)
    if unknown:
        raise typer.BadParameter(f"unknown sides {sorted(unknown)}; choose from {SIDES}")
    settings = ensure_up(load_settings()).settings
    path = results_dir / f"{RESULT}.json"
    # A partial rerun (--only) keeps the other side's figures of the previous run.
    previous = json.loads(path.read_text()) if path.is_file() and only else {}
    result: dict[str, Any] = {
        "benchmark": RESULT,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "kafka": previous.get("kafka"),
        "spark": previous.get("spark"),
    }
    results_dir.mkdir(parents=True, exist_ok=True)

    def write() -> None:  # after each side: a later side's failure keeps the earlier figures
        path.write_text(json.dumps(result, indent=2) + "\n")
        path.with_suffix(".md").write_text(render_markdown(result))

    if not only or "kafka" in only:
        result["kafka"] = bench_kafka(settings, records=records)
        write()
    if not only or "spark" in only:
        result["spark"] = bench_spark(settings, years=years, symbols=symbols, ticks=ticks)
        write()
    typer.echo(json.dumps(result, indent=2))
