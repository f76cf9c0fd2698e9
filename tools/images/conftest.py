"""The image-run test builds the DAG factories' operators: Airflow needs a throw-away home."""

from __future__ import annotations

import os
import tempfile

import pytest

pytest_plugins = ["market_testing.pytest_plugin"]


def pytest_configure(config: pytest.Config) -> None:
    home = tempfile.mkdtemp(prefix="market-image-run-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
