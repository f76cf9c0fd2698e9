"""A retried task leaves the data as one run would: every step of the three DAGs, run twice.

``dag.test()`` with the same logical date and ``run_after`` (so the same run_id) clears the
run's task instances and runs every task again after it succeeded, which is what an Airflow
retry (or a manual "clear") of any step does. The test snapshots each layer after the first
and after the second run of the batch, streaming and dbt DAGs and compares row counts and
checksums of keys and values.

Raw is an archive of the topics, one row per Kafka offset. Kafka cannot de-duplicate across
producer sessions, so the produce steps carry an idempotency key of the DAG run and task:
the second try finds the run ledger entry and sends nothing. So every layer, raw included,
must be identical row for row (raw without ``ingested_at``, which a consumer re-run may
refresh when it rewrites the open window with the same rows).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import snapshot

from market_dags import steps
from market_dags.config import (
    BatchPipelineConfig,
    DbtPipelineConfig,
    DeploymentSettings,
    StreamingPipelineConfig,
)

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT"]
LOGICAL_DATE = datetime(2024, 12, 31, 2, 0, tzinfo=UTC)


def run_all(deployment: DeploymentSettings) -> None:
    """One run of each DAG for ``LOGICAL_DATE``; a second call re-runs every task of the
    same DAG run (``run_after`` fixes the run_id, which the produce steps' key is built on)."""
    from market_dags.factories import (
        build_batch_pipeline_dag,
        build_dbt_pipeline_dag,
        build_streaming_pipeline_dag,
    )

    dags: list[tuple[Any, dict[str, Any]]] = [
        (
            build_batch_pipeline_dag(BatchPipelineConfig(lookback_days=200, deployment=deployment)),
            # No scheduler in dag.test(): the waiting trigger would block; dbt runs below.
            {"mark_success_pattern": f"^{steps.TRIGGER_DBT}$"},
        ),
        (
            build_streaming_pipeline_dag(
                StreamingPipelineConfig(session_minutes=30, deployment=deployment)
            ),
            {},
        ),
        (build_dbt_pipeline_dag(DbtPipelineConfig(deployment=deployment)), {}),
    ]
    for dag, kwargs in dags:
        dag_run = dag.test(logical_date=LOGICAL_DATE, run_after=LOGICAL_DATE, **kwargs)
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        assert str(dag_run.state) == "success", f"{dag.dag_id} run failed; task states: {states}"


def test_rerunning_every_step_leaves_every_layer_as_one_run(
    airflow_db: Path,
    isolated_deployment: Callable[..., DeploymentSettings],
    dbt_manifest: Path,
) -> None:
    deployment = isolated_deployment("task-retry", SYMBOLS)
    run_all(deployment)
    once = snapshot(deployment, dbt_manifest)
    assert {"raw/historical", "raw/realtime", "processed/historical"} <= set(once), once
    assert all(rows > 0 for rows, _ in once.values()), f"every layer has rows: {once}"

    run_all(deployment)
    twice = snapshot(deployment, dbt_manifest)
    changed = {
        k: (once.get(k), twice.get(k))
        for k in once.keys() | twice.keys()
        if once.get(k) != twice.get(k)
    }
    assert not changed, f"layers that differ after re-running every step: {changed}"
