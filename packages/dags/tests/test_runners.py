"""Runners: in-process entry points, subprocess console scripts, lazily-built containers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from market_dags.config import RunnerConfig, RunnerKind
from market_dags.entrypoints import (
    ConsoleScriptNotFoundError,
    last_json_object,
    run_entry_point,
    subprocess_argv,
)
from market_dags.steps import Step

STEP = Step("demo_step", "dbt", ("--version",), image="spark")


def _demo_cli() -> None:
    """A console-script-shaped function: reads argv and env, prints a summary, exits."""
    summary = {"argv": sys.argv[1:], "db": os.environ.get("DEMO_DB"), "rows": 3}
    print("progress line")
    print(json.dumps(summary))
    raise SystemExit(int(os.environ.get("DEMO_EXIT", "0")))


def test_in_process_call_sees_argv_and_env_and_restores_them() -> None:
    argv_before = list(sys.argv)
    code, out = run_entry_point(
        "demo", ["load", "--x", "1"], env={"DEMO_DB": "D1"}, loader=lambda _name: _demo_cli
    )
    assert code == 0, "SystemExit(0) is success"
    assert last_json_object(out) == {"argv": ["load", "--x", "1"], "db": "D1", "rows": 3}
    assert sys.argv == argv_before and "DEMO_DB" not in os.environ, "process state restored"


def test_in_process_exit_code_is_reported() -> None:
    code, _ = run_entry_point("demo", [], env={"DEMO_EXIT": "3"}, loader=lambda _n: _demo_cli)
    assert code == 3, "non-zero SystemExit becomes the step's exit code"


def test_unknown_console_script_has_an_actionable_error() -> None:
    with pytest.raises(ConsoleScriptNotFoundError, match="not installed"):
        run_entry_point("no-such-market-script", [])


def test_subprocess_uses_the_console_script_beside_the_interpreter() -> None:
    bin_dir = Path(sys.executable).parent
    argv = subprocess_argv("dbt", ["--version"], bin_dir=bin_dir)
    assert argv == [str(bin_dir / "dbt"), "--version"], "wrapper script found in bin_dir"


def test_subprocess_falls_back_to_the_launcher_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    argv = subprocess_argv("dbt", ["--version"], bin_dir=tmp_path)
    assert argv == [sys.executable, "-m", "market_dags.launch", "dbt", "--version"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"the launcher runs the entry point: {proc.stderr[-500:]}"


@pytest.mark.parametrize("kind", [RunnerKind.SUBPROCESS, RunnerKind.IN_PROCESS])
def test_step_operator_runs_a_real_console_script(kind: RunnerKind) -> None:
    from market_dags.runners import StepFailedError, build_step_operator

    runner = RunnerConfig(kind=kind)
    ok = build_step_operator(STEP, runner=runner, env={})
    assert ok.execute(context={}) is None, "`dbt --version` succeeds and prints no JSON summary"
    bad = build_step_operator(Step("bad_step", "dbt", ("no-such-command",)), runner=runner, env={})
    with pytest.raises(StepFailedError, match="exited with"):
        bad.execute(context={})


@pytest.mark.parametrize(
    ("kind", "module", "dist"),
    [
        (RunnerKind.KUBERNETES, "airflow.providers.cncf.kubernetes", "cncf-kubernetes"),
        (RunnerKind.DOCKER, "airflow.providers.docker", "providers-docker"),
    ],
)
def test_container_runners_build_the_provider_operator_or_say_what_to_install(
    kind: RunnerKind, module: str, dist: str
) -> None:
    from airflow.sdk import DAG

    from market_dags.runners import RunnerUnavailableError, build_step_operator

    runner = RunnerConfig(kind=kind, spark_image="market/spark:test")
    with DAG("container_probe", schedule=None):
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) and importlib.util.find_spec(module):
            op = build_step_operator(STEP, runner=runner, env={"A": "1"})
            assert op.image == "market/spark:test", "spark steps run in the spark image"
        else:
            with pytest.raises(RunnerUnavailableError, match=dist):
                build_step_operator(STEP, runner=runner, env={})


def test_last_json_object_ignores_non_objects() -> None:
    out = 'start\n{"rows": 1}\n[1, 2]\n{not json}\ndone'
    assert last_json_object(out) == {"rows": 1}
    assert last_json_object("no summary") is None
