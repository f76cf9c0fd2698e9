"""``market-devstack`` exits with the shared codes (market_common.exitcodes.ExitCode)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from market_common.exitcodes import ExitCode
from market_devstack.cli import app
from market_testing.pytest_plugin import free_port

runner = CliRunner()


@pytest.fixture
def private_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dir and ports no stack uses: the shared stack is never looked at."""
    monkeypatch.setenv("MARKET_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_STACK__STATE_DIR", str(tmp_path))
    for name in ("KAFKA", "KAFKA_CONTROLLER", "MINIO", "MINIO_CONSOLE", "FAKESNOW"):
        monkeypatch.setenv(f"MARKET_STACK__{name}_PORT", str(free_port()))
    return tmp_path


def test_unknown_service_is_a_usage_error(private_env: Path) -> None:
    result = runner.invoke(app, ["status", "--only", "kafka,nosuch"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "unknown service(s) ['nosuch']" in result.output


def test_status_of_a_stopped_stack_is_unavailable(private_env: Path) -> None:
    result = runner.invoke(app, ["status", "--only", "snowflake"])
    assert result.exit_code == ExitCode.UNAVAILABLE, result.output
    assert "stopped" in result.output


def test_shell_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == ExitCode.OK
    assert "--install-completion" in result.output
