"""The benchmark report: goals judged from result files, and a real suite run of one benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from market_benchmarks.suite import FIGURES, REPORT_JSON, REPORT_MD, SUITE_FILE, write_report
from market_common.runtime import child_env

# The repository (or the Pants sandbox, which holds dags/ and dbt/ as files).
REPO = next(
    p
    for p in Path(__file__).resolve().parents
    if (p / "dags" / "stock_market_batch_pipeline.py").is_file()
)


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


def _by_figure(results: Path) -> dict[str, dict]:
    return {f["figure"]: f for f in json.loads((results / REPORT_JSON).read_text())["figures"]}


def test_goals_are_judged_from_the_result_files(tmp_path):
    _write(tmp_path / "ingest.json", {"date": "2026-01-02", "machine": {"cpu_count": 2},
                                      "producer_ratio": 0.61, "consumer": {"rows_per_s": 41_000.0}})  # fmt: skip
    _write(tmp_path / "spark.json", {"cores": 2, "ratio_spark_to_duckdb": 2.0})
    write_report(tmp_path)
    rows = _by_figure(tmp_path)
    assert rows["Producer vs Kafka ProducerPerformance"]["met"] is True
    assert rows["Consumer → raw zone"]["met"] is False
    assert rows["Spark batch vs DuckDB (time ratio)"]["met"] is True  # the goal is inclusive
    assert rows["Producer vs Kafka ProducerPerformance"]["measured_at"] == "2026-01-02"
    missing = rows["Bulk loader vs row-by-row MERGE"]
    assert missing["value"] is None and missing["met"] is None and missing["runs"] == 0
    report = (tmp_path / REPORT_MD).read_text()
    assert "| Consumer → raw zone | 41,000.0 rows/s | >= 50000 rows/s | **not met** |" in report
    assert "| Bulk loader vs row-by-row MERGE | missing |" in report
    assert len(rows) == len(FIGURES)


def test_medians_come_from_the_suite_samples(tmp_path):
    _write(tmp_path / "warehouse.json", {"loader": {"speedup": 90.0}})
    label = "Bulk loader vs row-by-row MERGE"
    _write(tmp_path / SUITE_FILE, {"cores": 2, "benchmarks": {"loader": {
        "finished_at": "2026-01-03T00:00:00+00:00", "samples": {label: [150.0, 90.0, 120.0]}}}})  # fmt: skip
    write_report(tmp_path)
    row = _by_figure(tmp_path)[label]
    assert (row["value"], row["runs"], row["met"]) == (120.0, 3, True)


def test_suite_runs_a_benchmark_and_reports_its_figures_and_memory(tmp_path, local_stack):
    """`all --only dags` runs the DAG-parse benchmark for real and samples memory meanwhile."""
    root = tmp_path / "repo"  # what the DAG benchmark looks for: dags/, dbt/ and pants.toml
    root.mkdir()
    for name in ("dags", "dbt"):
        (root / name).symlink_to(REPO / name)
    (root / "pants.toml").touch()
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "market_benchmarks", "all", "--only", "dags",
         "--repeat", "1", "--results-dir", str(results)],
        cwd=root, env=child_env(settings=local_stack.settings), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    tmp_path = results
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads((tmp_path / "dag_parse.json").read_text())
    rows = _by_figure(tmp_path)
    for dag, stats in parsed["files"].items():
        row = rows[f"DAG file parse, {dag} (median)"]
        assert row["value"] == round(stats["warm_median_s"], 2)
        assert row["met"] is (stats["warm_median_s"] <= 1.0)
    suite = json.loads((tmp_path / SUITE_FILE).read_text())
    memory = suite["benchmarks"]["dags"]["memory_gib"]
    # Kafka's heap alone is 512 MiB; the benchmark process imports Airflow.
    assert memory["stack"] >= 0.5 and memory["jobs"] > 0.05
    assert rows["Peak memory, stack + running jobs"]["value"] == memory["total"]
    assert rows["Producer vs Kafka ProducerPerformance"]["value"] is None  # not run
