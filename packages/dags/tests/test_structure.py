"""Per factory: the wiring ``{task_id: downstream task ids}`` is the documented pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from market_dags import steps
from market_dags.config import (
    BatchPipelineConfig,
    DbtConfig,
    DbtPipelineConfig,
    DeploymentSettings,
    StreamingPipelineConfig,
)


def structure(dag: Any) -> dict[str, set[str]]:
    return {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}


def test_batch_pipeline_is_a_chain_ending_in_the_dbt_trigger() -> None:
    from market_dags.factories import build_batch_pipeline_dag

    dag = build_batch_pipeline_dag(BatchPipelineConfig())
    assert structure(dag) == {
        steps.FETCH_HISTORICAL: {steps.CONSUME_BATCH},
        steps.CONSUME_BATCH: {steps.SPARK_BATCH},
        steps.SPARK_BATCH: {steps.LOAD_HISTORICAL},
        steps.LOAD_HISTORICAL: {steps.TRIGGER_DBT},
        steps.TRIGGER_DBT: set(),
    }, "fetch → consume → spark → load → trigger dbt"
    trigger = dag.get_task(steps.TRIGGER_DBT)
    assert trigger.trigger_dag_id == "dbt_transformation_pipeline", "triggers the dbt DAG"
    assert trigger.wait_for_completion is True, "waits for dbt to finish"
    assert trigger.poke_interval <= 30, "polls the dbt run often"


def test_streaming_pipeline_archives_in_parallel_and_summarizes() -> None:
    from market_dags.factories import build_streaming_pipeline_dag

    dag = build_streaming_pipeline_dag(StreamingPipelineConfig())
    assert structure(dag) == {
        steps.COLLECT_TICKS: {steps.SPARK_STREAM, steps.ARCHIVE_TICKS},
        steps.ARCHIVE_TICKS: {steps.SUMMARIZE},
        steps.SPARK_STREAM: {steps.LOAD_REALTIME},
        steps.LOAD_REALTIME: {steps.SUMMARIZE},
        steps.SUMMARIZE: set(),
    }, "collect → (archive ‖ spark → load) → summary"
    spark = dag.get_task(steps.SPARK_STREAM)
    assert "availableNow" in spark.arguments, "streaming runs as availableNow"


@pytest.mark.parametrize(
    ("factory", "config", "task_id"),
    [
        ("build_batch_pipeline_dag", BatchPipelineConfig(), steps.FETCH_HISTORICAL),
        ("build_streaming_pipeline_dag", StreamingPipelineConfig(), steps.COLLECT_TICKS),
    ],
)
def test_produce_steps_send_once_per_dag_run(factory: str, config: Any, task_id: str) -> None:
    """The idempotency key renders from the run and task only (a retry keeps the run_id), so
    a retried produce step finds its ledger entry; another run gets another key."""
    from market_dags import factories
    from market_dags.entrypoints import run_entry_point

    dag = getattr(factories, factory)(config)
    task = dag.get_task(task_id)
    args = [str(a) for a in task.arguments]
    key = args[args.index("--idempotency-key") + 1]

    def render(run_id: str) -> str:
        return str(task.render_template(key, {"dag": dag, "task": task, "run_id": run_id}))

    run_id = "scheduled__2024-12-31T02:00:00+00:00"
    assert render(run_id) == f"{dag.dag_id}/{run_id}/{task_id}", "dag, run and task name the key"
    assert render(run_id) != render("manual__2025-01-02T10:00:00+00:00"), "a new run sends again"
    code, usage = run_entry_point(task.script, [args[0], "--help"], env={"COLUMNS": "200"})
    assert code == 0 and "--idempotency-key" in usage, "the CLI takes the option"


def _manifest_models(manifest: Path, folder: str) -> set[str]:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {
        n["name"]
        for n in nodes
        if n["resource_type"] == "model" and n["original_file_path"].startswith(f"models/{folder}/")
    }


def _group_roots_and_leaves(dag: Any, prefix: str) -> tuple[set[str], set[str]]:
    members = {t.task_id for t in dag.tasks if t.task_id.startswith(prefix)}
    roots = {m for m in members if not (dag.get_task(m).upstream_task_ids & members)}
    leaves = {m for m in members if not (dag.get_task(m).downstream_task_ids & members)}
    return roots, leaves


def test_dbt_pipeline_layers_in_order(dbt_manifest: Path) -> None:
    from market_dags.factories import build_dbt_pipeline_dag

    dag = build_dbt_pipeline_dag(DbtPipelineConfig())
    wiring = structure(dag)
    staging_roots, staging_leaves = _group_roots_and_leaves(dag, "staging.")
    marts_roots, marts_leaves = _group_roots_and_leaves(dag, "marts.")
    assert wiring[steps.SOURCE_FRESHNESS] == staging_roots, "freshness gates every staging root"
    for leaf in staging_leaves:
        assert marts_roots <= wiring[leaf], f"{leaf} precedes every marts root"
    assert all(wiring[leaf] == {steps.TESTS} for leaf in marts_leaves), "marts → tests"
    assert wiring[steps.TESTS] == {steps.DOCS} and wiring[steps.DOCS] == set(), "tests → docs"

    for model in _manifest_models(dbt_manifest, "staging"):
        run, test = f"staging.{model}.run", f"staging.{model}.test"
        assert wiring.get(run) == {test}, f"{model} is tested right after it is built"
    for model in _manifest_models(dbt_manifest, "marts"):
        assert any(tid.startswith(f"marts.{model}") for tid in wiring), f"{model} has a task"


def test_dbt_layers_fall_back_to_one_build_task_without_manifest(tmp_path: Path) -> None:
    from market_dags.factories import build_dbt_pipeline_dag

    missing = tmp_path / "no-manifest.json"
    config = DbtPipelineConfig(deployment=DeploymentSettings(dbt=DbtConfig(manifest_path=missing)))
    dag = build_dbt_pipeline_dag(config)
    assert structure(dag) == {
        steps.SOURCE_FRESHNESS: {"staging.staging_build"},
        "staging.staging_build": {"marts.marts_build"},
        "marts.marts_build": {steps.TESTS},
        steps.TESTS: {steps.DOCS},
        steps.DOCS: set(),
    }, "same layer order, one dbt build per layer"
    build = dag.get_task("marts.marts_build")
    select = build.arguments[build.arguments.index("--select") + 1 :]
    assert tuple(select) == config.deployment.dbt.marts_select, "the layer's selection is built"


@pytest.mark.parametrize("render", ["manifest", "commands"])
def test_every_step_gets_the_deployment_environment(render: str, dbt_manifest: Path) -> None:
    from market_dags.factories import build_dbt_pipeline_dag
    from market_dags.runners import StepOperator

    deployment = DeploymentSettings(
        symbols=["AAPL", "MSFT"],
        bucket="lake-x",
        dbt=DbtConfig(render=render, manifest_path=dbt_manifest),  # type: ignore[arg-type]
        step_env={"MARKET_SNOWFLAKE__BATCH_DATABASE": "ISOLATED_DB"},
    )
    dag = build_dbt_pipeline_dag(DbtPipelineConfig(deployment=deployment))
    runnable = [t for t in dag.tasks if type(t).__name__ != "EmptyOperator"]
    assert any(not isinstance(t, StepOperator) for t in runnable) == (
        render == "manifest"
    ), "cosmos renders the layers only from a manifest"
    for task in runnable:
        env = task.env
        assert (
            env["MARKET_SNOWFLAKE__BATCH_DATABASE"] == "ISOLATED_DB"
        ), f"{task.task_id} sees the deployment's step_env"
        assert env["MARKET_S3__BUCKET"] == "lake-x", f"{task.task_id} uses the bucket"
