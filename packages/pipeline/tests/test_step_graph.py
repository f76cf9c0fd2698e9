"""Command 1 runs the DAGs' step graph: the same commands, only the run's values concrete."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from market_common.settings import MarketSettings
from market_dags import steps
from market_dags.config import BatchPipelineConfig, DbtPipelineConfig, StreamingPipelineConfig
from market_pipeline.run import Pipeline, RunOptions

NOW = datetime(2026, 3, 11, 23, 0, tzinfo=UTC)


def _pipeline(tmp_path: Path, **options: object) -> Pipeline:
    settings = MarketSettings(stack={"state_dir": tmp_path})
    return Pipeline(
        RunOptions(symbols=("AAPL", "MSFT"), years=0.5, session_minutes=45, **options),  # type: ignore[arg-type]
        settings=settings,
        now=lambda: NOW,
    )


def _render(args: tuple[str, ...], run: steps.RunContext) -> tuple[str, ...]:
    """What Airflow's templating makes of the DAG steps' arguments for ``run``'s values."""
    out = []
    for arg in args:
        for field in fields(steps.RunContext):
            arg = arg.replace(getattr(steps.AIRFLOW_RUN, field.name), getattr(run, field.name))
        out.append(arg)
    return tuple(out)


def test_command_1_runs_the_dag_steps_with_the_runs_values(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    local = pipeline.graph()
    deployment = pipeline.deployment()
    dag_graph = [
        *steps.batch_steps(BatchPipelineConfig(deployment=deployment)),
        *steps.streaming_steps(
            StreamingPipelineConfig(deployment=deployment, session_minutes=45, clock="simulated")
        ),
        *steps.dbt_steps(DbtPipelineConfig(deployment=deployment)),
    ]
    assert {s.task_id for s in local} == {s.task_id for s in dag_graph}, "one graph, same steps"
    start, end = pipeline.backfill_range()
    run = steps.RunContext(start.isoformat(), end.isoformat(), pipeline.run_id, "market-pipeline")
    by_id = steps.by_id(dag_graph)
    for step in local:
        dag_step = by_id[step.task_id]
        assert step.script == dag_step.script, f"{step.task_id} runs the DAG task's script"
        assert step.args == _render(dag_step.args, run), f"{step.task_id}: same arguments"
    fetch = steps.by_id(local)[steps.FETCH_HISTORICAL].args
    assert fetch[fetch.index("--start") + 1] == start.isoformat()
    assert fetch[fetch.index("--idempotency-key") + 1].endswith(f"/{steps.FETCH_HISTORICAL}")


def test_the_dbt_flow_waits_for_both_loads_and_runs_in_the_dags_order(tmp_path: Path) -> None:
    local = _pipeline(tmp_path).graph()
    order = [s.task_id for s in local]
    graph = steps.by_id(local)
    assert set(graph[steps.SOURCE_FRESHNESS].upstream) == {
        steps.LOAD_HISTORICAL,
        steps.LOAD_REALTIME,
        steps.ARCHIVE_TICKS,
    }, "dbt starts once every leaf of the batch and streaming graphs is done"
    dbt_order = [steps.SOURCE_FRESHNESS, steps.STAGING, steps.MARTS, steps.TESTS, steps.DOCS]
    assert [t for t in order if t in dbt_order] == dbt_order
    for step in local:
        assert all(order.index(u) < order.index(step.task_id) for u in step.upstream), step


def test_without_producing_the_consumers_are_roots(tmp_path: Path) -> None:
    local = steps.by_id(_pipeline(tmp_path, produce=False).graph())
    assert steps.FETCH_HISTORICAL not in local and steps.COLLECT_TICKS not in local
    assert local[steps.CONSUME_BATCH].upstream == ()


def test_in_order_names_an_unknown_upstream() -> None:
    graph = [steps.Step("b", "x", (), upstream=("a",))]
    with pytest.raises(ValueError, match="unknown steps \\['a'\\]"):
        steps.in_order(graph)
