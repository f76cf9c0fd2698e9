"""Airflow test environment for the DAG factory tests.

Airflow reads its configuration when first imported, so ``pytest_configure`` points it at
a throw-away ``AIRFLOW_HOME`` (SQLite, no examples, our ``dags/`` folder) before any test
module imports it. The dbt manifest cosmos renders from is produced once per session by
``dbt parse`` into a temporary target path, never into the shared ``dbt/target``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from market_dags.config import DeploymentSettings

pytest_plugins = ["market_localstack.pytest_plugin"]


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
    from market_localstack.pytest_plugin import UniqueNames

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
                "MARKET_KAFKA__BATCH_GROUP": names("gb"),
                "MARKET_KAFKA__REALTIME_GROUP": names("gr"),
                "MARKET_S3__RAW_PREFIX": f"{prefix}/raw",
                "MARKET_S3__PROCESSED_PREFIX": f"{prefix}/processed",
                "MARKET_S3__QUARANTINE_PREFIX": f"{prefix}/quarantine",
                "MARKET_S3__CHECKPOINT_PREFIX": f"{prefix}/checkpoints",
                "MARKET_SNOWFLAKE__BATCH_DATABASE": names.ident("BATCH"),
                "MARKET_SNOWFLAKE__STREAM_DATABASE": names.ident("STREAM"),
                "MARKET_SPARK__DRIVER_MEMORY": "1g",
            },
        )

    return make
