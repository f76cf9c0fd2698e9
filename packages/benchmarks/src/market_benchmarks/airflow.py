"""``market-bench airflow``: the batch DAG under Airflow's scheduler.

Wall time of one ``stock_market_batch_pipeline`` run (and the ``dbt_transformation_pipeline``
run it triggers and waits for) under a real scheduler (what ``up --with airflow`` starts:
PostgreSQL, api-server, scheduler, dag-processor, triggerer; LocalExecutor, every task its
own process through the subprocess runner), triggered through the REST API with the
generated admin credentials, on the data command 1 (``market-pipeline run``) uses: the same
symbols and a lookback of the same ``--years``.

Airflow and its PostgreSQL run on a private state dir and free ports and are stopped
afterwards, so a running ``up --with airflow`` of the user is neither restarted nor
reconfigured; the steps use the stack's Kafka, MinIO and fakesnow, writing to their own
topics, prefixes and databases, so command 1's state is untouched. One streaming DAG run
goes first (not timed): the dbt DAG's source freshness needs the realtime table, as in
production.

Command 1 runs first in the same invocation (``market-bench pipeline``'s run: fresh topics,
prefixes and databases, the same symbols, years and seed), so both figures are taken on the
same data under the same machine load; ``--no-command-1`` reuses ``pipeline.json`` instead
(the suite, which has just run the pipeline benchmark), but only if its parameters and step
names match. The result goes to ``airflow_run.{json,md}``: the batch DAG's wall time beside
command 1's whole run and the sum of command 1's steps that the batch and dbt DAGs run.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from market_common.exitcodes import ExitCode
from market_common.settings import MarketSettings, load_settings

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])

BATCH = "stock_market_batch_pipeline"
STREAMING = "stock_streaming_pipeline"
DBT = "dbt_transformation_pipeline"
# Command 1's steps that do what the batch DAG (+ dbt DAG) does, by step id.
BATCH_PATH_STEPS = (
    "fetch_and_produce_historical", "consume_batch_to_raw", "spark_batch", "load_historical",
    "source_freshness", "staging", "marts", "tests", "docs",
)  # fmt: skip


def deployment_env(run: str, symbols: list[str], *, stack_state_dir: Path) -> dict[str, str]:
    """``MARKET_DAGS__*`` isolating the benchmark's DAG runs from command 1's data."""
    prefix = f"bench-airflow-{run}"
    ident = run.upper().replace("-", "_")
    step_env = {
        # Airflow's own state is private; the data stack is the user's.
        "MARKET_STATE_DIR": str(stack_state_dir),
        "MARKET_KAFKA__BATCH_GROUP": f"{prefix}-gb",
        "MARKET_KAFKA__REALTIME_GROUP": f"{prefix}-gr",
        "MARKET_S3__RAW_PREFIX": f"{prefix}/raw",
        "MARKET_S3__PROCESSED_PREFIX": f"{prefix}/processed",
        "MARKET_S3__QUARANTINE_PREFIX": f"{prefix}/quarantine",
        "MARKET_S3__CHECKPOINT_PREFIX": f"{prefix}/checkpoints",
        "MARKET_SNOWFLAKE__BATCH_DATABASE": f"BENCH_AF_{ident}_BATCH",
        "MARKET_SNOWFLAKE__STREAM_DATABASE": f"BENCH_AF_{ident}_STREAM",
    }
    return {
        "MARKET_DAGS__SYMBOLS": ",".join(symbols),
        "MARKET_DAGS__TOPICS__BATCH": f"{prefix}-batch",
        "MARKET_DAGS__TOPICS__REALTIME": f"{prefix}-realtime",
        "MARKET_DAGS__TOPICS__DLQ": f"{prefix}-dlq",
        "MARKET_DAGS__STEP_ENV": json.dumps(step_env),
        # Runs come from the REST API only: unpausing must not add scheduled runs.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_airflow(settings: MarketSettings) -> Iterator[MarketSettings]:
    """PostgreSQL + Airflow on a fresh state dir and free ports, stopped on exit."""
    from market_devstack import stack

    # PostgreSQL runs unprivileged: the state dir must be reachable by that account.
    state_dir = Path(tempfile.mkdtemp(prefix="market-bench-airflow-"))
    state_dir.chmod(0o755)
    ports = {"postgres_port": _free_port(), "airflow_port": _free_port()}
    private = settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"state_dir": state_dir, **ports})}
    )
    names = stack.normalise_services("airflow")
    try:
        yield stack.ensure_up(private, only=names).settings
    finally:
        stack.down(private, only=names)


def command_1_figures(data: dict[str, Any], *, years: float, symbols: int) -> dict[str, Any]:
    """Command 1's wall time and its batch-path seconds from a ``pipeline.json`` record.

    ``None`` figures (with the reason) when the record is not on the same data (other years
    or symbol count) or predates the shared step graph (step names other than the DAGs').
    """
    params = data.get("parameters") or {}
    steps_s = data.get("steps_s") or {}
    missing = [s for s in BATCH_PATH_STEPS if s not in steps_s]
    if params.get("years") != years or params.get("symbols") != symbols:
        reason = (
            f"pipeline.json is for {params.get('years')} years x {params.get('symbols')} symbols"
        )
    elif missing:
        reason = f"pipeline.json has no step {missing[0]} (recorded before the shared step graph)"
    else:
        return {
            "started_at": data.get("started_at"),
            "wall_s": data.get("wall_time_s"),
            "batch_path_s": round(sum(steps_s[s] for s in BATCH_PATH_STEPS), 1),
            "steps_s": {s: steps_s[s] for s in BATCH_PATH_STEPS},
        }
    return {
        "started_at": data.get("started_at"),
        "wall_s": None,
        "batch_path_s": None,
        "not_comparable": reason,
    }


def run_command_1(results_dir: Path, *, years: float) -> dict[str, Any]:
    """Command 1 on fresh topics/prefixes/databases (``market-bench pipeline``'s run)."""
    from market_benchmarks.pipeline import run_bench
    from market_pipeline.cli import run_options

    with tempfile.TemporaryDirectory(prefix="market-bench-report-") as report_dir:
        options = run_options(years, None, "synthetic", 390, Path(report_dir), 42, False, True)
        return run_bench(options, results_dir=results_dir)


@app.command()
def main(
    results_dir: Annotated[Path, typer.Option(help="Where airflow_run.{json,md} go.")] = Path(
        "benchmarks/results"
    ),
    years: Annotated[float, typer.Option(help="History per symbol, as command 1's --years.")] = 2.0,
    timeout_s: Annotated[float, typer.Option(help="Give up on the run after this long.")] = 3600,
    command_1: Annotated[
        bool,
        typer.Option(
            help="Run command 1 first on the same data (writes pipeline.{json,md}); "
            "--no-command-1 reuses pipeline.json."
        ),
    ] = True,
) -> None:
    """Start a private Airflow beside the stack, run the batch DAG once, record its wall time."""
    from market_devstack import stack
    from market_devstack.airflow import AirflowClient

    settings = stack.ensure_up(load_settings()).settings
    if command_1:
        from market_pipeline.cli import setup_process

        setup_process(verbose=False)
        pipeline_record = run_command_1(results_dir, years=years)
    else:
        pipeline_record = json.loads((results_dir / "pipeline.json").read_text())
    command_1_record = command_1_figures(
        pipeline_record, years=years, symbols=len(settings.symbols)
    )
    run = uuid.uuid4().hex[:8]
    # The scheduler, DAG processor and task processes read MARKET_DAGS__* when they start.
    os.environ.update(
        deployment_env(run, list(settings.symbols), stack_state_dir=Path(settings.stack.state_dir))
    )
    with private_airflow(settings) as airflow_settings:
        client = AirflowClient.for_stack(airflow_settings)
        client.wait_for_dags([BATCH, STREAMING, DBT])
        for dag_id in (BATCH, STREAMING, DBT):
            client.unpause(dag_id)
        now = datetime.now(UTC).replace(microsecond=0)
        stream_id = f"bench_stream_{run}"
        started = time.monotonic()
        client.trigger(STREAMING, stream_id, logical_date=now)
        stream_state = client.wait(STREAMING, stream_id, timeout_s=timeout_s)
        stream_wall = time.monotonic() - started
        run_id = f"bench_{run}"
        lookback = round(365.25 * years)
        started = time.monotonic()
        client.trigger(BATCH, run_id, logical_date=now, conf={"lookback_days": lookback})
        batch_state = client.wait(BATCH, run_id, timeout_s=timeout_s)
        wall = time.monotonic() - started
        dbt_state = client.wait(DBT, f"triggered__{run_id}", timeout_s=120)
        task_states = client.task_states(BATCH, run_id)
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "symbols": list(settings.symbols),
        "lookback_days": lookback,
        "streaming_dag_state": stream_state,
        "streaming_dag_wall_s": round(stream_wall, 1),
        "batch_dag_state": batch_state,
        "dbt_dag_state": dbt_state,
        "batch_dag_wall_s": round(wall, 1),
        "command_1_wall_s": command_1_record["wall_s"],
        "command_1_batch_path_s": command_1_record["batch_path_s"],
        "command_1": command_1_record,
        "task_states": task_states,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "airflow_run.json").write_text(json.dumps(record, indent=2) + "\n")
    (results_dir / "airflow_run.md").write_text(
        "| run | wall time (s) |\n|---|---|\n"
        f"| batch DAG under the scheduler (+ triggered dbt DAG), {lookback} days x "
        f"{len(settings.symbols)} symbols | {record['batch_dag_wall_s']} |\n"
        f"| command 1, `market-pipeline run`, whole run (with ticks and streaming) | "
        f"{command_1_record['wall_s'] or 'not measured'} |\n"
        f"| command 1, the same steps as the batch + dbt DAGs | "
        f"{command_1_record['batch_path_s'] or 'not measured'} |\n"
        + (
            f"\nCommand 1 not comparable: {command_1_record['not_comparable']}.\n"
            if "not_comparable" in command_1_record
            else f"\nCommand 1 started {command_1_record['started_at']}, the batch DAG run "
            f"{now.isoformat()}; {os.cpu_count()} cores, 1-min load average "
            f"{record['load_average_1m']} at the end.\n"
        )
    )
    typer.echo(json.dumps(record))
    if batch_state != "success":
        raise typer.Exit(code=int(ExitCode.FAILED))


if __name__ == "__main__":
    app()
