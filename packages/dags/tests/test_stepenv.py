"""The subprocess runner's environment keeps the worker's code but not Airflow's dags/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from market_dags.stepenv import step_subprocess_env


def test_dags_folder_is_not_on_the_steps_path(
    dags_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Airflow does in a task process: the DAGs folder is on sys.path.
    monkeypatch.syspath_prepend(str(dags_dir))
    env = step_subprocess_env({"MARKET_X": "1"})
    entries = [Path(p).resolve() for p in env["PYTHONPATH"].split(os.pathsep)]
    assert dags_dir.resolve() not in entries, "dags/ is not on the step's PYTHONPATH"
    assert env["MARKET_X"] == "1", "the step's own variables are kept"
    # dbt's plugin discovery (every top-level `dbt_*` module) must not find the DAG file.
    probe = "import pkgutil; print(sorted(m.name for m in pkgutil.iter_modules() if m.name.startswith('dbt_')))"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "dbt_transformation_pipeline" not in out, f"dbt would import the DAG file: {out}"
    import market_dags

    child = subprocess.run(
        [sys.executable, "-c", "import market_dags, sys; print(market_dags.__file__)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(child).resolve() == Path(market_dags.__file__).resolve(), "same code as the worker"
