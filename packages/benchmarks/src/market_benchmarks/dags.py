"""``market-bench dags [--repeat N] [--results-dir DIR]``: DAG parse time.

Parses each file of ``dags/`` with Airflow's own ``DagBag`` (as the DAG processor does)
and records its ``FileLoadStat`` duration: the first parse in the process (cold: includes
importing cosmos and the factories) and the median of the repeats (warm). Airflow's own
import is reported separately: the DAG processor pays it once, not per file. Writes
``<results-dir>/dag_parse.json`` and ``.md``. A dbt manifest is produced first (``dbt
parse`` into a temp dir) if the configured one is missing, so cosmos renders per-model.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _repo_root() -> Path:
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / "dags").is_dir() and (candidate / "pants.toml").is_file():
                return candidate
    raise SystemExit("run from inside the repository (dags/ and pants.toml not found)")


def measure(dags_dir: Path, repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    airflow_import_s = time.perf_counter() - t0
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(dags_dir.glob("*.py")):
        runs: list[float] = []
        tasks = 0
        for _ in range(repeat):
            bag = DagBag(dag_folder=str(path))
            if bag.import_errors:
                raise SystemExit(f"{path.name} failed to import: {bag.import_errors}")
            stat = bag.dagbag_stats[0]
            runs.append(stat.duration.total_seconds())
            tasks = stat.task_num
        files[path.stem] = {
            "tasks": tasks,
            "cold_s": round(runs[0], 4),
            "warm_median_s": round(statistics.median(runs[1:] or runs), 4),
            "max_s": round(max(runs), 4),
        }
    return {"airflow_import_s": round(airflow_import_s, 3), "repeat": repeat, "files": files}


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        "# DAG parse time",
        "",
        f"Airflow import (once per DAG processor): {result['airflow_import_s']} s; "
        f"{result['repeat']} parses per file with Airflow's DagBag.",
        "",
        "| DAG file | tasks | first parse (s) | median (s) | max (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in result["files"].items():
        lines.append(
            f"| {name} | {r['tasks']} | {r['cold_s']} | {r['warm_median_s']} | {r['max_s']} |"
        )
    return "\n".join(lines) + "\n"


def run(*, repeat: int = 5, results_dir: Path | None = None) -> dict[str, Any]:
    """Measure every DAG file; write ``dag_parse.{json,md}`` into ``results_dir``."""
    root = _repo_root()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="market-dags-bench-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    os.environ.setdefault("MARKET_DAGS__DBT__PROJECT_DIR", str(root / "dbt"))
    from market_dags.config import DbtPipelineConfig

    config = DbtPipelineConfig()
    if not config.deployment.dbt.resolved_manifest_path().is_file():
        from market_dags.dbt import write_manifest

        target = Path(tempfile.mkdtemp(prefix="market-dags-manifest-"))
        os.environ["MARKET_DAGS__DBT__MANIFEST_PATH"] = str(
            write_manifest(config, target_path=target)
        )
    result = measure(root / "dags", repeat)
    out_dir = results_dir or root / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "dag_parse.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "dag_parse.md").write_text(_markdown(result))
    return result
