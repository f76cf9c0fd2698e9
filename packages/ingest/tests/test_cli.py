"""CLI surface: every command documents its options; errors exit with the shared codes."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from market_common.exitcodes import ExitCode
from market_ingest.cli import app, exit_code_for
from market_ingest.errors import ReplayInputError, SourceDataError, SourceUnavailableError
from market_ingest.ledger import LedgerError
from market_ingest.universe import InvalidSymbolError

runner = CliRunner()


@pytest.mark.parametrize("command", ["backfill", "stream", "consume"])
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


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SourceUnavailableError("Yahoo unreachable"), ExitCode.UNAVAILABLE),
        (ReplayInputError("no such file"), ExitCode.USAGE),
        (InvalidSymbolError("bad ticker"), ExitCode.USAGE),
        (ValueError("--years must be positive"), ExitCode.USAGE),
        (SourceDataError("no columns"), ExitCode.FAILED),
        (LedgerError("unreadable"), ExitCode.FAILED),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.name,
)
def test_errors_map_onto_the_shared_exit_codes(error: Exception, code: ExitCode) -> None:
    """An unreachable source is a retryable 4, never 2 (which means: fix the command line)."""
    assert exit_code_for(error) is code


def test_unknown_symbol_exits_with_the_usage_code() -> None:
    result = runner.invoke(app, ["backfill", "--symbols", "not a ticker!"])
    assert result.exit_code == ExitCode.USAGE, result.output
