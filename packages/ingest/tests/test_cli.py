"""CLI surface: every command documents its options; source errors exit 2 with a message."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from market_ingest.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["backfill", "stream", "consume", "bench"])
def test_every_option_has_help(command: str) -> None:
    import typer.main

    click_cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    undocumented = [
        p.name for p in click_cmd.params if not getattr(p, "help", None) and p.name != "help"
    ]
    assert undocumented == [], f"{command}: options without help {undocumented}"
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0


def test_missing_replay_input_exits_2() -> None:
    result = runner.invoke(
        app, ["backfill", "--source", "replay", "--replay-path", "/nonexistent/x.csv"]
    )
    assert result.exit_code == 2
    assert re.search(r"ReplayInputError: replay path .* does not exist", result.output)
