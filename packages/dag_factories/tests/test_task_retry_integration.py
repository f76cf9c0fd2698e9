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

import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

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
# Columns naming a record within its Hive partition, first match wins (processed).
KEY_COLUMNS = ("trade_date", "ts", "window_start")
# Raw columns that may change when the consumer rewrites an object with the same records.
RAW_VOLATILE = ("ingested_at",)

Snapshot = dict[str, tuple[int, str]]


def digest(rows: list[Any]) -> str:
    return hashlib.sha256(repr(sorted(rows, key=repr)).encode()).hexdigest()


def settings_of(deployment: DeploymentSettings) -> Any:
    """The deployment's MARKET_* settings as the steps see them."""
    from market_common.settings import load_settings

    base = load_settings()
    s3 = base.s3.model_copy(
        update={
            "raw_prefix": deployment.step_env["MARKET_S3__RAW_PREFIX"],
            "processed_prefix": deployment.step_env["MARKET_S3__PROCESSED_PREFIX"],
        }
    )
    sf = base.snowflake.model_copy(
        update={
            "batch_database": deployment.step_env["MARKET_SNOWFLAKE__BATCH_DATABASE"],
            "stream_database": deployment.step_env["MARKET_SNOWFLAKE__STREAM_DATABASE"],
        }
    )
    return base.model_copy(update={"s3": s3, "snowflake": sf})


def zone_snapshot(settings: Any, zone_prefix: str, *, raw: bool) -> Snapshot:
    """Per dataset directory: (rows, checksum); processed rows are checksummed by key, raw
    rows by every column but ``RAW_VOLATILE`` (so a duplicate delivery changes both), with a
    check that no Kafka offset appears twice."""
    from market_common.clients import s3_client
    from market_loaders.objects import committed_keys, is_data_file, list_objects

    s3 = s3_client(settings)
    bucket = settings.s3.bucket
    out: Snapshot = {}
    datasets = {
        o.key[len(zone_prefix) + 1 :].split("/", 1)[0]
        for o in list_objects(s3, bucket, zone_prefix)
    }
    for dataset in sorted(datasets):
        root = f"{zone_prefix}/{dataset}/"
        objects = [o for o in list_objects(s3, bucket, root) if is_data_file(o.key[len(root) :])]
        committed = committed_keys(s3, bucket, root)  # streaming sinks: committed files only
        if committed is not None:
            objects = [o for o in objects if o.key in committed]
        keys: list[tuple[Any, ...]] = []
        offsets: list[tuple[Any, ...]] = []
        for obj in objects:
            body = s3.get_object(Bucket=bucket, Key=obj.key)["Body"].read()
            table = pq.read_table(io.BytesIO(body))
            hive = "/".join(p for p in obj.key[len(root) :].split("/")[:-1] if "=" in p)
            if raw:
                columns = sorted(c for c in table.column_names if c not in RAW_VOLATILE)
            else:
                columns = ["symbol", next(c for c in KEY_COLUMNS if c in table.column_names)]
            keys += [
                (hive, *row)
                for row in zip(*(table.column(c).to_pylist() for c in columns), strict=True)
            ]
            if raw:
                offsets += zip(
                    table.column("kafka_topic").to_pylist(),
                    table.column("kafka_partition").to_pylist(),
                    table.column("kafka_offset").to_pylist(),
                    strict=True,
                )
        if raw:
            assert len(set(offsets)) == len(offsets), f"{root}: a Kafka offset is in raw twice"
        out[f"{zone_prefix.rsplit('/', 1)[-1]}/{dataset}"] = (len(keys), digest(keys))
    return out


def table_snapshot(conn: Any, fqn: str, exclude: tuple[str, ...] = ()) -> tuple[int, str]:
    """(rows, checksum of every row) of a warehouse table, without the ``exclude`` columns."""
    cur = conn.cursor()
    cur.execute(f"select * from {fqn} limit 0")  # noqa: S608 - names from settings/manifest
    columns = [d[0] for d in cur.description if d[0].upper() not in exclude]
    cur.execute(f"select {', '.join(columns)} from {fqn}")  # noqa: S608
    rows = [tuple(r) for r in cur.fetchall()]
    return len(rows), digest(rows)


def warehouse_snapshot(settings: Any, manifest: Path) -> Snapshot:
    """Loader targets (load timestamps excluded: a no-op MERGE keeps them anyway) and marts."""
    from market_common.clients import snowflake_connection
    from market_loaders.datasets import HISTORICAL, REALTIME
    from market_loaders.loader import target_ref

    nodes = json.loads(manifest.read_text())["nodes"].values()
    marts = {
        n["alias"]: n["schema"]
        for n in nodes
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/")
    }
    database = settings.snowflake.batch_database
    out: Snapshot = {}
    conn = snowflake_connection(settings, database=database)
    try:
        for dataset in (HISTORICAL, REALTIME):
            fqn = target_ref(dataset, settings).fqn
            out[fqn] = table_snapshot(conn, fqn, exclude=(dataset.load_ts_column,))
        for mart, schema in sorted(marts.items()):
            fqn = f"{database}.{schema}.{mart}"
            out[fqn] = table_snapshot(conn, fqn)
    finally:
        conn.close()
    return out


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


def snapshot(deployment: DeploymentSettings, manifest: Path) -> Snapshot:
    settings = settings_of(deployment)
    return (
        zone_snapshot(settings, settings.s3.raw_prefix, raw=True)
        | zone_snapshot(settings, settings.s3.processed_prefix, raw=False)
        | warehouse_snapshot(settings, manifest)
    )


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
