"""The loader benchmark, run for real at a tiny size on the local stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from market_benchmarks.loader import run_bench


def test_loader_benchmark_runs_both_loaders_and_the_incremental_day(
    tmp_path: Path, local_stack: Any
) -> None:
    """Regression: the row-by-row side opened its table with the seed's %s connection, but the
    loader's table check binds qmark parameters, so every `market-bench loader` run failed
    (TypeError: not all arguments converted) and its s3a/incremental figures were missing."""
    report = run_bench(local_stack.settings, rows=2_000, row_by_row_rows=5, out_dir=tmp_path)
    assert report["row_by_row"]["rows_in_table"] == 5
    assert report["incremental"]["files_loaded"] == 1 and report["incremental"]["rows_merged"] > 0
    assert report["s3a"]["full_history_files"] >= 1
    written = json.loads((tmp_path / "warehouse.json").read_text())["loader"]
    assert written["incremental"] == report["incremental"]
