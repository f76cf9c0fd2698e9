"""The thin files in dags/ parse cleanly into the three DAGs with the documented settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from market_dags import steps
from market_dags.defaults import log_task_failure, log_task_retry

EXPECTED: dict[str, dict[str, Any]] = {
    # dag_id: (schedule, tag that marks the pipeline kind)
    "stock_market_batch_pipeline": {"schedule": "0 2 * * *", "tag": "batch"},
    "stock_streaming_pipeline": {"schedule": "*/30 * * * *", "tag": "streaming"},
    "dbt_transformation_pipeline": {"schedule": "0 6 * * *", "tag": "dbt"},
}


@pytest.fixture(scope="module")
def dagbag(dbt_manifest: Path, dags_dir: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dags_dir))


def test_no_import_errors_or_warnings(dagbag: Any) -> None:
    assert dagbag.import_errors == {}, f"DAG files failed to import: {dagbag.import_errors}"
    assert dagbag.captured_warnings == {}, f"DAG files warned: {dagbag.captured_warnings}"


def test_one_dag_per_file_named_after_it(dagbag: Any, dags_dir: Path) -> None:
    files = sorted(p.stem for p in dags_dir.glob("*.py"))
    assert (
        sorted(dagbag.dag_ids) == files
    ), "each dags/ file defines exactly the DAG it is named after"
    assert len(set(dagbag.dag_ids)) == len(dagbag.dag_ids), "dag ids are unique"
    assert set(files) == set(EXPECTED), "the three pipelines are deployed"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_settings(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    spec = EXPECTED[dag_id]
    assert dag.schedule == spec["schedule"], "schedule as documented"
    assert spec["tag"] in dag.tags and "market" in dag.tags, "tags name the platform and kind"
    assert dag.catchup is False, "no backfill of missed intervals on deploy"
    assert dag.max_active_runs == 1, "runs never overlap"
    assert dag.doc_md and dag_id.split("_")[0] in dag.doc_md.lower(), "doc_md describes the DAG"
    assert dag.dagrun_timeout is not None, "a stuck run is failed, not left running"
    args = dag.default_args
    assert args["retries"] >= 1 and isinstance(args["retry_delay"], timedelta), "retries with delay"
    assert isinstance(args["execution_timeout"], timedelta), "every task has a timeout"
    assert args["on_failure_callback"] == [log_task_failure], "failures are logged (no alerts)"
    assert args["on_retry_callback"] is log_task_retry, "retries are logged"
    for task in dag.tasks:
        assert task.retries == args["retries"], f"{task.task_id} inherits the retry policy"
        assert task.execution_timeout is not None, f"{task.task_id} has an execution timeout"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_no_cycles(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    indegree = {t.task_id: len(t.upstream_task_ids) for t in dag.tasks}
    ready = [tid for tid, n in indegree.items() if n == 0]
    seen = 0
    while ready:
        tid = ready.pop()
        seen += 1
        for down in dag.get_task(tid).downstream_task_ids:
            indegree[down] -= 1
            if indegree[down] == 0:
                ready.append(down)
    assert seen == len(dag.tasks), f"{dag_id} is acyclic (Kahn's algorithm visits every task)"


def test_dbt_task_groups_rendered_by_cosmos(dagbag: Any) -> None:
    dag = dagbag.dags["dbt_transformation_pipeline"]
    groups = dag.task_group.get_task_group_dict()
    assert {steps.STAGING, steps.MARTS} <= set(groups), "staging and marts task groups exist"
    run_types = {type(t).__name__ for t in dag.tasks if t.task_id.startswith("staging.")}
    assert "DbtRunLocalOperator" in run_types, "staging models are cosmos dbt run tasks"
