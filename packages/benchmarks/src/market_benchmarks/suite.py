"""``./pants run benchmarks -- all``: every benchmark, then one report with every goal.

Each component benchmark keeps its own command and result files (ingest, spark, warehouse,
pipeline); the suite runs them one after another as child processes, so no JVM or cache
carries over from one to the next, samples the resident memory of the local stack and of
the running benchmark the whole time, measures the end-to-end latency of a tick, and writes
``REPORT.md`` + ``report.json``: each figure with the machine's core count, the date it was
measured, its goal and whether the goal was met. ``report`` rebuilds the report from the
result files already there, without running anything.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from market_benchmarks.memory import PeakMemory
from market_common.logging import configure_logging
from market_common.runtime import child_env
from market_common.settings import MarketSettings, load_settings

console = Console(stderr=True)
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])

SUITE_FILE = "suite.json"
REPORT_MD = "REPORT.md"
REPORT_JSON = "report.json"
MEMORY_GOAL_GIB = 6.0


@dataclass(frozen=True)
class Figure:
    """One number of the report: where it sits in a result file and its goal, if any."""

    label: str
    bench: str  # the benchmark that measures it
    result: str  # result file stem in the results dir
    path: tuple[str, ...]  # keys into that file's JSON
    unit: str
    goal: tuple[str, float] | None = None  # (">=" | "<=" | "<", value)
    source_issue: str = ""

    def node(self, data: dict[str, Any], depth: int | None = None) -> Any:
        node: Any = data
        for key in self.path[:depth]:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def value(self, data: dict[str, Any]) -> float | None:
        node = self.node(data)
        return float(node) if isinstance(node, int | float) else None

    def met(self, value: float | None) -> bool | None:
        if self.goal is None or value is None:
            return None
        op = {">=": operator.ge, "<=": operator.le, "<": operator.lt}[self.goal[0]]
        return bool(op(value, self.goal[1]))


@dataclass(frozen=True)
class Benchmark:
    """A component benchmark: how to run it (argv after the interpreter) and what it writes."""

    name: str
    argv: Callable[[Path], list[str]]
    results: tuple[str, ...]  # result file stems it (re)writes
    repeat: int = 1
    # Too heavy for every suite run (e.g. the cold run downloads gigabytes): `--only` it.
    opt_in: bool = False


def _cli(command: str, *args: str) -> list[str]:
    """A ``market-bench`` command in a child interpreter (no JVM or cache carries over)."""
    return ["-m", "market_benchmarks", command, *args]


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("ingest", lambda d: _cli("ingest", "--output", str(d / "ingest")), ("ingest",)),
    # The long fuzz run of #12 (100,000 values, ~15 min on 2 busy cores): fast path vs pydantic.
    Benchmark("fuzz", lambda d: _cli("fuzz", "--output", str(d / "ingest_fuzz")), ("ingest_fuzz",)),
    Benchmark("spark", lambda d: _cli("spark", "--results-dir", str(d)), ("spark",)),
    Benchmark("spark-s3a", lambda d: _cli("spark-s3a", "--results-dir", str(d)), ("spark_s3a",)),
    Benchmark("loader", lambda d: _cli("loader", "--out-dir", str(d)), ("warehouse",), repeat=3),
    Benchmark("dbt", lambda d: _cli("dbt", "--results-dir", str(d)), ("warehouse",)),
    Benchmark("dags", lambda d: _cli("dags", "--results-dir", str(d)), ("dag_parse",)),
    Benchmark("pipeline", lambda d: _cli("pipeline", "--results-dir", str(d)), ("pipeline",)),
    # After "pipeline", whose run on the same data it reuses as command 1's figures.
    Benchmark("airflow", lambda d: _cli("airflow", "--results-dir", str(d), "--no-command-1"), ("airflow_run",)),
    # Scale-out (#17): ingest on 3 brokers vs 1 and Spark on 2 workers vs local[*], each pair
    # measured in the same run.
    Benchmark("scale", lambda d: _cli("scale", "--results-dir", str(d)), ("scale",)),
    # Command 1 from a fresh clone with every cache empty (#18): `all --only cold`.
    Benchmark("cold", lambda d: _cli("cold", "--results-dir", str(d)), ("cold_run",), opt_in=True),
)  # fmt: skip
BENCHMARK_NAMES = (*(b.name for b in BENCHMARKS), "latency")

DAG_FILES = (
    "stock_market_batch_pipeline",
    "stock_streaming_pipeline",
    "dbt_transformation_pipeline",
)
FIGURES: tuple[Figure, ...] = (
    Figure("Producer vs Kafka ProducerPerformance", "ingest", "ingest", ("producer_ratio",), "x", (">=", 0.5), "#3, #14"),
    Figure("Producer throughput", "ingest", "ingest", ("producer", "msgs_per_s"), "msgs/s", None, "#3, #14"),
    Figure("Consumer → raw zone", "ingest", "ingest", ("consumer", "rows_per_s"), "rows/s", (">=", 50_000), "#3, #14"),
    # The ceiling beside the consumer: kafka-python polling alone (profile: ingest_profile.md).
    Figure("Consumer ceiling: kafka-python poll only, records dropped", "ingest", "ingest", ("consumer", "kafka_python_poll_only", "rows_per_s"), "rows/s", None, "#14"),
    Figure("Decoder fuzz, values judged (fast path vs pydantic)", "fuzz", "ingest_fuzz", ("messages",), "values", (">=", 100_000), "#12"),
    Figure("Decoder fuzz, verdicts that differ", "fuzz", "ingest_fuzz", ("disagreements",), "values", ("<=", 0), "#12"),
    Figure("Spark batch vs DuckDB (time ratio)", "spark", "spark", ("ratio_spark_to_duckdb",), "x", ("<=", 2.0), "#4"),
    Figure("Spark streaming, availableNow", "spark", "spark", ("stream_ticks_per_s",), "ticks/s", None, "#4"),
    Figure("Producer, 1 broker (beside 3, same run)", "scale", "scale", ("kafka", "one_broker", "producer_msgs_per_s"), "msgs/s", None, "#17"),
    Figure("Producer, 3 brokers (RF 3, min ISR 2)", "scale", "scale", ("kafka", "three_brokers", "producer_msgs_per_s"), "msgs/s", None, "#17"),
    Figure("Producer, 3 brokers vs 1 (throughput ratio)", "scale", "scale", ("kafka", "producer_ratio_3_to_1"), "x", None, "#17"),
    Figure("Consumer → raw zone, 1 broker (beside 3, same run)", "scale", "scale", ("kafka", "one_broker", "consumer_rows_per_s"), "rows/s", None, "#17"),
    Figure("Consumer → raw zone, 3 brokers", "scale", "scale", ("kafka", "three_brokers", "consumer_rows_per_s"), "rows/s", None, "#17"),
    Figure("Consumer, 3 brokers vs 1 (throughput ratio)", "scale", "scale", ("kafka", "consumer_ratio_3_to_1"), "x", None, "#17"),
    Figure("Spark batch, local[*] (beside 2 workers, same run)", "scale", "scale", ("spark", "local", "batch_s"), "s", None, "#17"),
    Figure("Spark batch, 2 workers (1 core, 1g each)", "scale", "scale", ("spark", "two_workers", "batch_s"), "s", None, "#17"),
    Figure("Spark batch, 2 workers vs local[*] (time ratio)", "scale", "scale", ("spark", "ratio_2workers_to_local"), "x", None, "#17"),
    Figure("s3a: Spark full rebuild vs DuckDB, same bucket (time ratio)", "spark-s3a", "spark_s3a", ("ratio_spark_to_duckdb",), "x", ("<=", 2.0), "#14"),
    Figure("s3a incremental: Spark batch, one new trading day", "spark-s3a", "spark_s3a", ("incremental_s",), "s", ("<=", 30.0), "#14"),
    Figure("s3a: loader, full history from the Delta log", "loader", "warehouse", ("loader", "s3a", "full_history_seconds"), "s", None, "#14"),
    Figure("s3a incremental: loader, one new trading day", "loader", "warehouse", ("loader", "incremental", "seconds"), "s", ("<=", 10.0), "#14"),
    Figure("Bulk loader vs row-by-row MERGE", "loader", "warehouse", ("loader", "speedup"), "x", (">=", 100), "#5"),
    Figure("dbt build, 1.26M daily rows", "dbt", "warehouse", ("dbt_build", "dbt_build_seconds"), "s", None, "#5"),
    *(
        Figure(f"DAG file parse, {dag} (median)", "dags", "dag_parse", ("files", dag, "warm_median_s"), "s", ("<=", 1.0), "#6")
        for dag in DAG_FILES
    ),
    Figure("End-to-end pipeline run (default size)", "pipeline", "pipeline", ("wall_time_s",), "s", ("<=", 1200), "#6"),
    Figure("Session's last window: symbols missing it after command 1", "pipeline", "pipeline", ("realtime", "symbols_missing_last_window"), "symbols", ("<=", 0), "#14"),
    Figure("Cold command 1: fresh clone, empty caches", "cold", "cold_run", ("wall_time_s",), "s", ("<=", 480), "#18"),
    Figure("Batch DAG run under the scheduler (+ dbt DAG)", "airflow", "airflow_run", ("batch_dag_wall_s",), "s", None, "#15"),
    Figure("Command 1, the same steps as the batch + dbt DAGs", "airflow", "airflow_run", ("command_1_batch_path_s",), "s", None, "#15"),
    Figure("Tick → mart_realtime_signals (median)", "latency", "latency", ("median_s",), "s", ("<", 30.0), "#14"),
    Figure("Peak memory, local stack services", "suite", "suite", ("memory_gib", "stack"), "GiB", ("<=", MEMORY_GOAL_GIB), "#8"),
    Figure("Peak memory, stack + running jobs", "suite", "suite", ("memory_gib", "total"), "GiB", ("<=", MEMORY_GOAL_GIB), "#8"),
)  # fmt: skip


def stack_pids(settings: MarketSettings) -> Callable[[], list[int]]:
    """Live pids of the local stack's services (read each time: a service may restart)."""
    from market_devstack.stack import SERVICE_NAMES, make_services

    # discover=True: cluster nodes (kafka-N, spark-*) count too when their pid files exist.
    services = [s for name in SERVICE_NAMES for s in make_services(name, settings, discover=True)]

    def pids() -> list[int]:
        return [r.pid for s in services if (r := s.pid_file.read()) is not None]

    return pids


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


@dataclass
class Suite:
    settings: MarketSettings
    results_dir: Path
    python: str = sys.executable
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def run_benchmark(self, bench: Benchmark, repeat: int) -> dict[str, Any]:
        """Run ``bench`` ``repeat`` times; keep each run's result files for the medians."""
        log_dir = Path(self.settings.stack.state_dir) / "benchmarks"
        log_dir.mkdir(parents=True, exist_ok=True)
        seconds = []
        for i in range(repeat):
            console.print(f"[bold]{bench.name}[/] run {i + 1}/{repeat}")
            started = time.monotonic()
            with (log_dir / f"{bench.name}.log").open("a") as log_file:
                done = subprocess.run(
                    [self.python, *bench.argv(self.results_dir)],
                    env=child_env(settings=self.settings),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            seconds.append(round(time.monotonic() - started, 1))
            if done.returncode != 0:
                return {"ok": False, "exit_code": done.returncode, "seconds": seconds,
                        "log": str(log_dir / f"{bench.name}.log")}  # fmt: skip
            for stem in bench.results:
                self.runs.setdefault(bench.name, []).append(
                    _read(self.results_dir / f"{stem}.json")
                )
        return {"ok": True, "seconds": seconds, "repeat": repeat}

    def samples(self, bench: str) -> dict[str, list[float]]:
        """Each figure of ``bench`` in every run of this suite (the medians' inputs)."""
        return {
            fig.label: [v for r in self.runs.get(bench, []) if (v := fig.value(r)) is not None]
            for fig in FIGURES
            if fig.bench == bench
        }

    def run_latency(self, rounds: int) -> dict[str, Any]:
        from market_benchmarks.latency import LatencyOptions, measure

        console.print("[bold]latency[/] (processingTime stream → loader → dbt)")
        log_dir = Path(self.settings.stack.state_dir) / "benchmarks"
        record = measure(self.settings, LatencyOptions(rounds=rounds), log_dir=log_dir)
        record = {"measured_at": _now(), "cores": os.cpu_count(), **record}
        (self.results_dir / "latency.json").write_text(json.dumps(record, indent=2) + "\n")
        # Each measured round is one sample of the median.
        self.runs["latency"] = [{"median_s": r["to_mart_s"]} for r in record["rounds"]]
        return {"ok": True, "rounds": rounds}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _find(data: Any, keys: tuple[str, ...]) -> Any:
    """The first value under one of ``keys`` in ``data`` or its nested dicts (breadth first)."""
    queue = [data]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            for key in keys:
                if node.get(key) is not None:
                    return node[key]
            queue += [v for v in node.values() if isinstance(v, dict)]
    return None


# Result files name these differently; the one nearest to the figure wins.
DATE_KEYS = ("measured_at", "date", "generated_at", "started_at", "finished_at")
CORE_KEYS = ("cores", "cpu_count", "cpus")


def _rounds(data: dict[str, Any], value: float | None) -> int:
    """Runs behind a figure read from its file: its ``rounds`` when it is a median of some."""
    if value is None:
        return 0
    return len(data["rounds"]) if isinstance(data.get("rounds"), list) else 1


def figures(results_dir: Path) -> list[dict[str, Any]]:
    """Every figure with value, goal, met, runs, date and core count.

    A figure's value is the median of the runs the last suite run recorded for it, else
    the value in its result file (a benchmark run on its own).
    """
    suite = _read(results_dir / SUITE_FILE)
    out = []
    for fig in FIGURES:
        latest = _read(results_dir / f"{fig.result}.json")
        recorded = (suite.get("benchmarks") or {}).get(fig.bench) or {}
        samples = (recorded.get("samples") or {}).get(fig.label) or []
        value = statistics.median(samples) if samples else fig.value(latest)
        near = fig.node(latest, -1)
        out.append(
            {
                "figure": fig.label,
                "issue": fig.source_issue,
                "value": None if value is None else round(value, 2),
                "unit": fig.unit,
                "runs": len(samples) or _rounds(latest, value),
                "goal": None if fig.goal is None else f"{fig.goal[0]} {fig.goal[1]:g} {fig.unit}",
                "met": fig.met(value),
                "measured_at": _find(near, DATE_KEYS)
                or _find(latest, DATE_KEYS)
                or recorded.get("finished_at"),
                "cores": _find(near, CORE_KEYS) or _find(latest, CORE_KEYS) or suite.get("cores"),
                "source": f"{fig.result}.json",
            }
        )
    return out


def _cell(value: Any) -> str:
    return "—" if value is None else str(value)


def render(rows: Sequence[dict[str, Any]], suite: dict[str, Any]) -> str:
    verdict = {True: "**met**", False: "**not met**", None: "no goal"}
    unmeasured = "not measured"
    lines = [
        "# Benchmark report",
        "",
        f"Generated {suite.get('finished_at') or _now()} on {suite.get('machine', machine())['cores']} "
        f"cores ({suite.get('machine', machine())['platform']}). Figures are medians over the "
        "runs shown; each result file in this directory has the details and its own notes.",
        "",
        "| figure | value | goal | verdict | runs | measured | cores | issue |",
        "|---|---:|---|---|---:|---|---:|---|",
    ]
    for r in rows:
        value = "missing" if r["value"] is None else f"{r['value']:,} {r['unit']}"
        lines.append(
            f"| {r['figure']} | {value} | {_cell(r['goal'])} | "
            f"{unmeasured if r['value'] is None else verdict[r['met']]} | {r['runs']} | "
            f"{_cell(r['measured_at'])} | {_cell(r['cores'])} | {r['issue']} |"
        )
    failed = {k: v for k, v in (suite.get("benchmarks") or {}).items() if not v.get("ok", True)}
    if failed:
        lines += [
            "",
            "Benchmarks that failed in the last suite run (their figures are older or missing):",
        ]
        lines += [
            f"- {name}: exit {v.get('exit_code')}, log {v.get('log')}" for name, v in failed.items()
        ]
    lines += [
        "",
        "Memory is the resident set of the process trees, sampled every 0.5 s from /proc while "
        "each benchmark ran: the stack services (Kafka, MinIO, fakesnow) alone, and together "
        "with the benchmark's process tree at the same instant (Spark's JVM included); the "
        "figure is the highest over the benchmarks.",
        "",
        "| benchmark | finished | seconds | stack GiB | stack + jobs GiB |",
        "|---|---|---|---:|---:|",
        *[
            f"| {name} | {_cell(b.get('finished_at'))} | {_cell(b.get('seconds_total'))} | "
            f"{_cell((b.get('memory_gib') or {}).get('stack'))} | "
            f"{_cell((b.get('memory_gib') or {}).get('total'))} |"
            for name, b in (suite.get("benchmarks") or {}).items()
        ],
    ]
    return "\n".join(lines) + "\n"


def write_report(results_dir: Path) -> Path:
    suite = _read(results_dir / SUITE_FILE)
    rows = figures(results_dir)
    (results_dir / REPORT_JSON).write_text(
        json.dumps({"suite": suite, "figures": rows}, indent=2) + "\n"
    )
    path = results_dir / REPORT_MD
    path.write_text(render(rows, suite))
    return path


ResultsDir = Annotated[Path, typer.Option(help="Where result files and the report go.")]


@app.command("all")
def run_all(
    results_dir: ResultsDir = Path("benchmarks/results"),
    only: Annotated[
        list[str] | None, typer.Option(help=f"Run only these ({', '.join(BENCHMARK_NAMES)}).")
    ] = None,
    repeat: Annotated[
        int | None, typer.Option(help="Runs per benchmark (default: each one's own).")
    ] = None,
    latency_rounds: Annotated[int, typer.Option(help="Measured latency rounds.")] = 3,
) -> None:
    """Run every benchmark (or ``--only`` some), then write REPORT.md and report.json.

    With ``--only`` the other benchmarks keep what the previous suite run recorded.
    """
    from market_devstack.stack import ensure_up

    configure_logging("WARNING")
    unknown = set(only or ()) - set(BENCHMARK_NAMES)
    if unknown:
        raise typer.BadParameter(
            f"unknown benchmarks {sorted(unknown)}; choose from {BENCHMARK_NAMES}"
        )
    settings = ensure_up(load_settings()).settings
    results_dir.mkdir(parents=True, exist_ok=True)
    suite = Suite(settings, results_dir.resolve())
    previous = _read(results_dir / SUITE_FILE)
    outcomes: dict[str, Any] = dict(previous.get("benchmarks") or {})
    for name in BENCHMARK_NAMES:
        if only and name not in only:
            continue
        bench = next((b for b in BENCHMARKS if b.name == name), None)
        if bench is not None and bench.opt_in and not only:
            continue
        # Each benchmark samples on its own, so a partial rerun replaces only its own peak.
        sampler = PeakMemory({"stack": stack_pids(settings), "jobs": lambda: [os.getpid()]})
        started = time.monotonic()
        with sampler:
            if bench is None:
                outcome = suite.run_latency(latency_rounds)
            else:
                outcome = suite.run_benchmark(bench, repeat or bench.repeat)
        outcomes[name] = {
            "seconds_total": round(time.monotonic() - started, 1),
            **outcome,
            "finished_at": _now(),
            "memory_gib": sampler.peaks_gib(),
            "samples": suite.samples(name),
        }
    record = {
        "finished_at": _now(),
        "cores": os.cpu_count(),
        "machine": machine(),
        "benchmarks": outcomes,
        "memory_gib": peak_memory(outcomes),
    }
    (results_dir / SUITE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    path = write_report(results_dir)
    console.print(f"report: {path}")
    if any(not o.get("ok") for o in outcomes.values()):
        raise typer.Exit(1)


def peak_memory(outcomes: dict[str, Any]) -> dict[str, float]:
    """The highest peak of each group over every benchmark's own sampling."""
    peaks: dict[str, float] = {}
    for outcome in outcomes.values():
        for group, gib in (outcome.get("memory_gib") or {}).items():
            peaks[group] = max(peaks.get(group, 0.0), gib)
    return peaks


@app.command()
def report(results_dir: ResultsDir = Path("benchmarks/results")) -> None:
    """Rebuild REPORT.md / report.json from the result files already in ``results_dir``."""
    console.print(f"report: {write_report(results_dir)}")
