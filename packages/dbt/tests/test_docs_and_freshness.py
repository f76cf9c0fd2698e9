"""Source freshness reports, docs generate works, and the docs export covers every model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from market_dbt.docs import export_docs
from market_dbt.runner import DbtRunner

pytestmark = pytest.mark.integration


def test_source_freshness_reports_both_sources(prod_runner: DbtRunner) -> None:
    result = prod_runner.invoke("source", "freshness")
    statuses = {r["unique_id"]: r["status"] for r in result.results}
    assert statuses == {
        "source.market.batch.daily_stock_metrics": "pass",
        "source.market.stream.realtime_stock_analytics": "pass",
    }, "freshly loaded sources pass their freshness checks"


def test_docs_export_has_every_model_and_column(prod_runner: DbtRunner, tmp_path: Path) -> None:
    prod_runner.invoke("docs", "generate")
    target = prod_runner.project.target_dir
    assert (target / "catalog.json").is_file()
    manifest = json.loads((target / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}

    docs = export_docs(target / "manifest.json", tmp_path / "docs.json")

    assert set(docs["models"]) == set(models), "every model exported"
    for name, model in docs["models"].items():
        assert model["description"].endswith(".") and "One row per" in model["description"], name
        assert set(model["columns"]) == set(models[name]["columns"]), name
        assert all(model["columns"].values()), f"{name}: every column described"
    assert docs["models"]["mart_daily_summary"]["relation"] == (
        "STOCKMARKETBATCH.ANALYTICS.MART_DAILY_SUMMARY"
    )
    assert docs["models"]["int_rolling_metrics"]["relation"] is None, "ephemeral"
    assert json.loads((tmp_path / "docs.json").read_text()) == docs
