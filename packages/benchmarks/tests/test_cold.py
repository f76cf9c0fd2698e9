"""The cold-run benchmark reads the step seconds from the run's real summary table."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from market_benchmarks.cold import PORT_SETTINGS, STEP_ROW, cold_env, markdown
from market_common.settings import MarketSettings
from market_pipeline.run import RunOptions, RunResult, StepOutcome
from market_pipeline.summary import steps_table


def test_step_seconds_are_parsed_from_the_printed_summary() -> None:
    result = RunResult(MarketSettings(), RunOptions())
    result.steps += [StepOutcome("stack", "ran", 312.4, {}), StepOutcome("backfill", "ran", 9.0, {}),
                     StepOutcome("dbt", "skipped", 0.0, {})]  # fmt: skip
    console = Console(record=True, width=120, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(steps_table(result))

    rows = STEP_ROW.findall(console.export_text())

    assert [(name, float(s)) for name, _, s in rows] == [
        ("stack", 312.4), ("backfill", 9.0), ("dbt", 0.0)
    ]  # fmt: skip


def test_the_cold_environment_has_an_empty_home_and_its_own_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKET_KAFKA__BATCH_TOPIC", "mine")  # this shell's settings
    env = cold_env(tmp_path / "home", tmp_path / "state")
    ports = [int(env[f"MARKET_STACK__{name}"]) for name in PORT_SETTINGS]
    defaults = MarketSettings().stack
    assert env["HOME"] == str(tmp_path / "home") and env["MARKET_STATE_DIR"] == str(
        tmp_path / "state"
    )
    assert len(set(ports)) == len(ports), "one port per service"
    assert not set(ports) & {defaults.kafka_port, defaults.minio_port, defaults.fakesnow_port}
    assert "MARKET_KAFKA__BATCH_TOPIC" not in env, "a new machine has none of this shell's settings"


def test_markdown_says_not_met_with_the_figure() -> None:
    record = {"measured_at": "2026-12-02T03:00:00+00:00", "commit": "abcdef1234567", "met": False,
              "wall_time_s": 901.5, "goal_s": 480, "cores": 2, "load_average_1_5_15": [3.0, 3.0, 3.0],
              "phases_s": {"pants_bootstrap": 60.0}, "run_steps_s": {"stack": 300.0}}  # fmt: skip
    text = markdown(record)
    assert "**901.5 s**" in text and "**not met**" in text
