"""The typer command line: usage mistakes exit 2 before any JVM starts."""

from __future__ import annotations

import pytest

from market_common.exitcodes import ExitCode
from market_spark.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "--since", "yesterday"],
        ["batch", "--full", "--since", "2024-01-02"],
        ["stream", "--trigger", "sometimes"],
        ["recompute", "--until", "2024-13-01"],
        ["no-such-command"],
        ["batch", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == ExitCode.USAGE
    assert "Usage" in capsys.readouterr().err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == ExitCode.OK
    out = capsys.readouterr().out
    for command in ("batch", "stream", "recompute"):
        assert command in out
    # The benchmarks are market-bench's (packages/benchmarks), not a product command.
    assert "bench" not in out
