"""``market-bench airflow``: the batch DAG under Airflow's scheduler.

Wall time of one ``stock_market_batch_pipeline`` run (and the ``dbt_transformation_pipeline``
run it triggers and waits for) under the stack's scheduler (``up --with airflow``: LocalExecutor,
every task its own process through the subprocess runner), triggered through the REST API
with the generated admin credentials, on the data command 1 (``market-pipeline run``) uses:
the same symbols and a lookback of the same ``--years``. The DAG runs write to their own
topics, prefixes and databases, so command 1's state is untouched. The result sits beside
command 1's wall time (``pipeline.json``, when the pipeline benchmark has run) in
``airflow_run.{json,md}``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from market_common.exitcodes import ExitCode
from market_common.settings import load_settings

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])

BATCH = "stock_market_batch_pipeline"
DBT = "dbt_transformation_pipeline"


def deployment_env(run: str, symbols: list[str]) -> dict[str, str]:
    """``MARKET_DAGS__*`` isolating the benchmark's DAG runs from command 1's data."""
    prefix = f"bench-airflow-{run}"
    ident = run.upper().replace("-", "_")
    step_env = {
        "MARKET_KAFKA__BATCH_GROUP": f"{prefix}-gb",
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
        "MARKET_DAGS__TOPICS__DLQ": f"{prefix}-dlq",
        "MARKET_DAGS__STEP_ENV": json.dumps(step_env),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }


@app.command()
def main(
    results_dir: Annotated[Path, typer.Option(help="Where airflow_run.{json,md} go.")] = Path(
        "benchmarks/results"
    ),
    years: Annotated[float, typer.Option(help="History per symbol, as command 1's --years.")] = 2.0,
    timeout_s: Annotated[float, typer.Option(help="Give up on the run after this long.")] = 3600,
) -> None:
    """Start Airflow with the stack, run the batch DAG once, record its wall time."""
    from market_devstack import stack
    from market_devstack.airflow import AirflowClient

    settings = load_settings()
    run = uuid.uuid4().hex[:8]
    # The scheduler and DAG processor read MARKET_DAGS__* when they start: a running
    # Airflow of the stack is restarted so this benchmark's deployment is the one parsed.
    os.environ.update(deployment_env(run, list(settings.symbols)))
    stack.down(settings, only=["airflow-scheduler", "airflow-dag-processor"])
    info = stack.ensure_up(settings, with_="airflow")
    client = AirflowClient.for_stack(info.settings)
    client.wait_for_dags([BATCH, DBT])
    for dag_id in (BATCH, DBT):
        client.unpause(dag_id)
    run_id = f"bench_{run}"
    lookback = round(365.25 * years)
    started = time.monotonic()
    client.trigger(BATCH, run_id, logical_date=datetime.now(UTC), conf={"lookback_days": lookback})
    batch_state = client.wait(BATCH, run_id, timeout_s=timeout_s)
    wall = time.monotonic() - started
    dbt_state = client.wait(DBT, f"triggered__{run_id}", timeout_s=60)
    pipeline = results_dir / "pipeline.json"
    command_1 = json.loads(pipeline.read_text()).get("wall_time_s") if pipeline.is_file() else None
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "symbols": list(settings.symbols),
        "lookback_days": lookback,
        "batch_dag_state": batch_state,
        "dbt_dag_state": dbt_state,
        "batch_dag_wall_s": round(wall, 1),
        "command_1_wall_s": command_1,
        "task_states": client.task_states(BATCH, run_id),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "airflow_run.json").write_text(json.dumps(record, indent=2) + "\n")
    (results_dir / "airflow_run.md").write_text(
        "| run | wall time (s) |\n|---|---|\n"
        f"| batch DAG under the scheduler (+ triggered dbt DAG) | {record['batch_dag_wall_s']} |\n"
        f"| command 1, `market-pipeline run` (pipeline.json) | {command_1 or 'not measured'} |\n"
    )
    typer.echo(json.dumps(record))
    if batch_state != "success":
        raise typer.Exit(code=int(ExitCode.FAILED))


if __name__ == "__main__":
    app()
