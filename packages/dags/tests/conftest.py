"""Airflow test environment for the DAG factory tests.

Airflow reads its configuration when first imported, so ``pytest_configure`` points it at
a throw-away ``AIRFLOW_HOME`` (SQLite, no examples, our ``dags/`` folder) before any test
module imports it. The dbt manifest cosmos renders from is produced once per session by
``dbt parse`` into a temporary target path, never into the shared ``dbt/target``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from market_dags.config import DeploymentSettings

pytest_plugins = ["market_testing.pytest_plugin"]


def _find_up(marker: str) -> Path:
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / marker).exists():
                return candidate
    raise FileNotFoundError(f"{marker} not found above {Path(__file__).parent} or the cwd")


REPO_ROOT = _find_up("dags/stock_market_batch_pipeline.py")
DAGS_DIR = REPO_ROOT / "dags"
DBT_DIR = REPO_ROOT / "dbt"


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="market-dags-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_DIR)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ.setdefault("MARKET_DAGS__DBT__PROJECT_DIR", str(DBT_DIR))
    # Cosmos phones home (scarf.sh) from tasks unless told not to; tests stay on loopback.
    os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
    os.environ["DO_NOT_TRACK"] = "1"


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``manifest.json`` of the repo's dbt project, exported as the factories' manifest path."""
    from market_dags.config import DbtPipelineConfig
    from market_dags.dbt import write_manifest

    target = tmp_path_factory.mktemp("dbt-target")
    manifest = write_manifest(DbtPipelineConfig(), target_path=target)
    saved = os.environ.get("MARKET_DAGS__DBT__MANIFEST_PATH")
    os.environ["MARKET_DAGS__DBT__MANIFEST_PATH"] = str(manifest)
    yield manifest
    if saved is None:
        os.environ.pop("MARKET_DAGS__DBT__MANIFEST_PATH", None)
    else:
        os.environ["MARKET_DAGS__DBT__MANIFEST_PATH"] = saved


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrated SQLite metadata DB in the session's AIRFLOW_HOME (``dag.test()`` needs one)."""
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"airflow db migrate failed:\n{proc.stdout}\n{proc.stderr}"
    from airflow import settings

    settings.configure_orm()
    return Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"


@pytest.fixture(scope="session")
def dags_dir() -> Path:
    return DAGS_DIR


@pytest.fixture(scope="session")
def isolated_deployment(
    local_stack: Any, dbt_manifest: Path
) -> Callable[[str, list[str]], DeploymentSettings]:
    """``make(label, symbols)`` → deployment whose topics, groups, S3 prefixes and Snowflake
    databases are unique, so DAG runs of different tests (and processes) never share data."""
    from market_dags.config import DbtConfig, DeploymentSettings, TaskDefaults, TopicsConfig
    from market_testing.pytest_plugin import UniqueNames

    def make(label: str, symbols: list[str]) -> DeploymentSettings:
        names = UniqueNames(label)
        prefix = names("dags")
        return DeploymentSettings(
            symbols=symbols,
            source="synthetic",
            topics=TopicsConfig(batch=names("batch"), realtime=names("realtime"), dlq=names("dlq")),
            # Failures should surface at once in a test, not after minutes of backoff.
            task_defaults=TaskDefaults(retries=0),
            # One test task per layer keeps the dbt invocations (≈5 s each) few.
            dbt=DbtConfig(manifest_path=dbt_manifest, test_behavior="after_all"),
            step_env={
                **names.step_env(prefix),
                "MARKET_SPARK__DRIVER_MEMORY": "1g",
            },
        )

    return make


# ---- Reading every layer a DAG run writes (snapshots compare two states of a deployment;
# row count + checksum per raw/processed dataset, loader table and mart).

# Columns naming a record within its Hive partition, first match wins (processed).
KEY_COLUMNS = ("trade_date", "ts", "window_start")
# Raw columns that may change when the consumer rewrites an object with the same records.
RAW_VOLATILE = ("ingested_at",)

Snapshot = dict[str, tuple[int, str]]


def mart_relations(manifest: Path) -> dict[str, str]:
    """``{mart alias: schema}`` of every model under ``models/marts/``."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {
        n["alias"]: n["schema"]
        for n in nodes
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/")
    }


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

    marts = mart_relations(manifest)
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


def snapshot(deployment: DeploymentSettings, manifest: Path) -> Snapshot:
    settings = settings_of(deployment)
    return (
        zone_snapshot(settings, settings.s3.raw_prefix, raw=True)
        | zone_snapshot(settings, settings.s3.processed_prefix, raw=False)
        | warehouse_snapshot(settings, manifest)
    )


def assert_mart_covers_symbols(conn: Any, table: str, symbols: list[str]) -> None:
    """Per-symbol marts hold every symbol; cross-symbol marts (no SYMBOL column) hold rows."""
    cur = conn.cursor()
    cur.execute(f"select * from {table} limit 0")  # noqa: S608 - names from the manifest
    columns = {d[0].upper() for d in cur.description}
    if "SYMBOL" in columns:
        cur.execute(f"select distinct symbol from {table}")  # noqa: S608
        found = {row[0] for row in cur.fetchall()}
        assert found == set(symbols), f"{table} has rows for every symbol"
    else:
        cur.execute(f"select count(*) from {table}")  # noqa: S608
        (rows,) = cur.fetchone()
        assert rows > 0, f"{table} (not per symbol) has rows"
