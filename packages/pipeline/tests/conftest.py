"""Shared fixtures: the literal mart frames, and the local-stack plugin for integration tests."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

# Outside Pants (plain pytest in importlib mode) the sibling helper module is not on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
import mart_samples

from market_pipeline.marts import MartFrames

pytest_plugins = ["market_testing.pytest_plugin"]


@pytest.fixture
def frames() -> MartFrames:
    return MartFrames(
        performance=mart_samples.stock_performance(),
        daily_summary=mart_samples.daily_summary(),
        realtime_signals=mart_samples.realtime_signals(),
    )


# ---------------------------------------------------------------------- one small real run

# ~137 sessions: the 50-day SMA is set on most rows (a mart test wants at least 50 %).
SMALL_RUN_DAYS = 200
SMALL_RUN_SESSION_MINUTES = 20
SMALL_RUN_BAD_ROWS = 3


@dataclass
class SmallRun:
    """What the run's commands printed (by step) and what they were fed."""

    env: dict[str, str]
    bars: pd.DataFrame
    ticks: pd.DataFrame
    bad_rows: int
    report_dir: Path
    symbols: list[str] = field(default_factory=list)
    stdout: dict[str, str] = field(default_factory=dict)
    stderr: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)

    @property
    def dbt_tests(self) -> int:
        return int(self.json["dbt"]["statuses"].get("pass", 0))


def _invoke(
    run: SmallRun, step: str, app: Any, args: list[str], *, ok: tuple[int, ...] = (0,)
) -> None:
    from typer.testing import CliRunner

    outcome = CliRunner().invoke(app, args)
    run.stdout[step], run.stderr[step] = outcome.stdout, outcome.stderr
    assert outcome.exit_code in ok, (
        f"{step} {args} exited {outcome.exit_code}:\n{outcome.stdout[-3000:]}\n"
        f"{outcome.stderr[-3000:]}\n{outcome.exception!r}"
    )
    if step.endswith("_human"):
        return
    if step == "dbt":
        run.json[step] = json.loads(outcome.stdout.strip().splitlines()[-1])
    else:
        from market_pipeline.run import parse_json_tail

        run.json[step] = parse_json_tail(outcome.stdout.strip())


def _spark(run: SmallRun, step: str, *args: str) -> None:
    """``python -m market_spark batch …`` in its own process (its own JVM), as a user runs it."""
    import subprocess

    from market_common.runtime import child_env
    from market_pipeline.run import parse_json_tail

    done = subprocess.run(
        [sys.executable, "-m", "market_spark", "batch", *args],
        env=child_env(), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    run.stdout[step], run.stderr[step] = done.stdout, done.stderr
    assert done.returncode == 0, f"market-spark batch {args}: {done.stderr[-4000:]}"
    run.json[step] = parse_json_tail(done.stdout.strip())


@pytest.fixture(scope="session")
def small_run(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> SmallRun:
    """The run described in test_small_run_integration.py (its steps' output, by step)."""
    from isolation import isolated_run_env
    from replay_files import OWN_SYMBOLS, write_replay_files

    from market_dbt.cli import app as dbt_app
    from market_ingest.cli import app as ingest_app
    from market_loaders.cli import app as load_app
    from market_pipeline.cli import app as pipeline_app
    from market_testing.pytest_plugin import UniqueNames

    work = tmp_path_factory.mktemp("small-run")
    bars, ticks = write_replay_files(
        work / "files", days=SMALL_RUN_DAYS, session_minutes=SMALL_RUN_SESSION_MINUTES
    )
    bad = bars.sample(SMALL_RUN_BAD_ROWS, random_state=3).index
    bars.loc[bad, "high"] = bars.loc[bad, "low"] / 2  # high below low: dead-lettered
    bars.to_csv(work / "files" / "bars.csv", index=False)
    env = isolated_run_env(UniqueNames("small-run")("cli"), work)
    run = SmallRun(env, bars, ticks, SMALL_RUN_BAD_ROWS, work / "report", list(OWN_SYMBOLS))
    files = work / "files"
    start = pd.Timestamp(bars["trade_date"].min()).date().isoformat()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**env, "COLUMNS": "250"}.items():  # wide: no elided progress text
            mp.setenv(key, value)
        replay = ["--source", "replay", "--json"]
        _invoke(
            run,
            "backfill",
            ingest_app,
            ["backfill", *replay, "--replay-path", str(files / "bars.csv"), "--start", start],
        )
        _invoke(run, "stream", ingest_app,
                ["stream", *replay, "--replay-path", str(files / "ticks.parquet"),
                 "--session-minutes", str(SMALL_RUN_SESSION_MINUTES)])  # fmt: skip
        _invoke(run, "consume", ingest_app, ["consume", "batch", "--until-caught-up"])
        _spark(run, "spark")
        _spark(run, "spark_json", "--json")
        _invoke(run, "load_human", load_app, ["historical"])
        run.json["load"] = _load_summary_table(run.stderr["load_human"])
        _invoke(run, "load_again", load_app, ["historical", "--json"])
        _invoke(run, "dbt", dbt_app, ["build", "--json"])
        _invoke(run, "inspect", pipeline_app, ["inspect", "--json"])
        _invoke(run, "inspect_human", pipeline_app, ["inspect"])
        _invoke(run, "report_human", pipeline_app, ["report", "--report-dir", str(run.report_dir)])
    return run


def _load_summary_table(stderr: str) -> dict[str, int]:
    """The human summary table of ``market-load`` read back into numbers (``rows inserted``…)."""
    out = {}
    for name in ("files seen", "files loaded", "rows inserted", "rows updated"):
        match = re.search(rf"{name}\s*│\s*(\d+)", stderr)
        assert match, f"{name!r} in market-load's summary table:\n{stderr}"
        out[name.replace(" ", "_")] = int(match.group(1))
    return out
