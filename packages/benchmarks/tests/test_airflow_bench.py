"""Command 1's figures beside the batch DAG: only a pipeline record on the same data counts."""

from __future__ import annotations

from typing import Any

from market_benchmarks.airflow import BATCH_PATH_STEPS, command_1_figures


def _record(years: float, symbols: int, steps_s: dict[str, float]) -> dict[str, Any]:
    return {
        "started_at": "2026-12-02T14:00:00+00:00",
        "wall_time_s": 300.0,
        "parameters": {"years": years, "symbols": symbols},
        "steps_s": steps_s,
    }


def test_the_batch_path_is_the_sum_of_the_dag_steps_only() -> None:
    steps_s = {step: 10.0 for step in BATCH_PATH_STEPS} | {"collect_realtime_ticks": 99.0}
    figures = command_1_figures(_record(2.0, 10, steps_s), years=2.0, symbols=10)
    assert figures["wall_s"] == 300.0, "command 1's whole wall time is reported as recorded"
    assert figures["batch_path_s"] == 10.0 * len(
        BATCH_PATH_STEPS
    ), "the batch path sums the batch and dbt DAGs' steps, not the streaming ones"


def test_a_record_on_other_data_or_step_names_is_not_compared() -> None:
    steps_s = {step: 10.0 for step in BATCH_PATH_STEPS}
    other_size = command_1_figures(_record(1.0, 10, steps_s), years=2.0, symbols=10)
    assert other_size["batch_path_s"] is None, "another history length is not the same data"
    assert "1.0 years" in other_size["not_comparable"], "the reason names the record's size"
    old_names = {"backfill": 1.0, "spark_batch": 100.0, "load": 9.0, "dbt": 17.0}
    old = command_1_figures(_record(2.0, 10, old_names), years=2.0, symbols=10)
    assert old["batch_path_s"] is None, "a record with the old step names is not summed"
    assert "fetch_and_produce_historical" in old["not_comparable"], "it names the missing step"
