"""Every console script of the workspace is a typer app with shell completion and one exit-code table.

The scripts are read from each package's pyproject.toml (``[project.scripts]``), so a new
script is checked without editing this test. For each: the object it names is importable,
its module holds the typer app it runs, ``--help`` offers ``--install-completion``, and an
unknown option exits 2 (``ExitCode.USAGE``), the same as for every other script.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from market_common.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = {}
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        scripts.update(project.get("scripts", {}))
    return scripts


def typer_app(target: str) -> typer.Typer:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attr)), f"{target} is not callable"
    app = getattr(module, "app", None)
    assert isinstance(app, typer.Typer), f"{module_name} holds no typer app"
    return app


def test_every_package_script_is_found() -> None:
    # The scripts users know by name (README): the lookup above must see all of them.
    assert {"market-ingest", "market-spark", "market-load", "market-dbt", "market-pipeline",
            "market-devstack", "market-bench"} <= set(console_scripts())  # fmt: skip


@pytest.mark.parametrize(("script", "target"), sorted(console_scripts().items()))
def test_script_is_typer_with_completion_and_usage_exit(script: str, target: str) -> None:
    app = typer_app(target)
    runner = CliRunner()
    shown = runner.invoke(app, ["--help"], prog_name=script)
    assert shown.exit_code == 0, shown.output
    assert "--install-completion" in shown.output, f"{script} offers no shell completion"
    wrong = runner.invoke(app, ["--no-such-option"], prog_name=script)
    assert wrong.exit_code == int(ExitCode.USAGE), (script, wrong.exit_code, wrong.output)
