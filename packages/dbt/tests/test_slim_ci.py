"""Slim CI builds only a modified model and its children, deferring parents to prod."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import Fakesnow, copy_project

from market_dbt.runner import DbtRunner
from market_dbt.slim_ci import run_slim_ci

pytestmark = pytest.mark.integration

PR = 4242


def test_slim_ci_builds_modified_model_and_children_only(
    prod_runner: DbtRunner, fakesnow: Fakesnow, tmp_path: Path
) -> None:
    state_dir = tmp_path / "prod-state"
    state_dir.mkdir()
    shutil.copy(prod_runner.project.target_dir / "manifest.json", state_dir / "manifest.json")

    project = copy_project(tmp_path / "pr" / "dbt")
    model = project.project_dir / "models" / "marts" / "mart_stock_performance.sql"
    model.write_text(model.read_text() + "\n-- PR change: a harmless edit\n")

    result = run_slim_ci(DbtRunner(project, env=fakesnow.env), state_dir=state_dir, pr_number=PR)

    assert result.built_nodes == [
        "model.market.mart_daily_summary",
        "model.market.mart_stock_performance",
    ], "only the modified model and its child are built"
    assert all(r["status"] in {"success", "pass"} for r in result.build.results)
    compiled = next(
        r["compiled_code"] for r in result.build.results
        if r["unique_id"] == "model.market.mart_stock_performance"
    )  # fmt: skip
    assert (
        "STOCKMARKETBATCH.STAGING.stg_daily_stock_metrics" in compiled
    ), "the unmodified staging parent is read from prod (deferred)"
    assert "STOCKMARKETBATCH.REFERENCE.sp500_tickers" in compiled, "seed deferred to prod"
    schemas = fakesnow.query("select schema_name from STOCKMARKETBATCH.information_schema.schemata")
    assert f"PR_{PR}" not in set(schemas["schema_name"].str.upper()), "PR schema dropped"
    assert {"ANALYTICS", "STAGING"} <= set(schemas["schema_name"].str.upper()), "prod untouched"


def test_slim_ci_with_nothing_modified_builds_nothing(
    prod_runner: DbtRunner, fakesnow: Fakesnow, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    manifest = json.loads((prod_runner.project.target_dir / "manifest.json").read_text())
    (state_dir / "manifest.json").write_text(json.dumps(manifest))
    result = run_slim_ci(prod_runner, state_dir=state_dir, pr_number=PR + 1)
    assert result.built_nodes == []
