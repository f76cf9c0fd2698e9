"""Run installed console scripts: in this process or as a child process.

Free of Airflow imports so the ``python -m market_dags.launch`` fallback starts fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TextIO


class ConsoleScriptNotFoundError(LookupError):
    """No installed distribution declares the console script."""


# The workspace's own console scripts (as in each package's pyproject.toml), for when the
# code runs without distribution metadata: from a PEX or a Pants sandbox.
WORKSPACE_SCRIPTS: dict[str, tuple[str, str]] = {
    "market-ingest": ("market_ingest.cli", "app"),
    "market-spark": ("market_spark.cli", "main"),
    "market-load": ("market_loaders.cli", "app"),
    "market-dbt": ("market_dbt.cli", "main"),
    "market-devstack": ("market_devstack.cli", "app"),
}


def find_entry_point(script: str) -> EntryPoint:
    """The ``console_scripts`` entry point named ``script`` (e.g. ``market-ingest``)."""
    matches = entry_points(group="console_scripts", name=script)
    for ep in matches:
        return ep
    if script in WORKSPACE_SCRIPTS:
        module, attr = WORKSPACE_SCRIPTS[script]
        return EntryPoint(name=script, value=f"{module}:{attr}", group="console_scripts")
    raise ConsoleScriptNotFoundError(
        f"console script {script!r} is not installed in {sys.prefix}: install the package that "
        f"provides it (uv sync) or choose the container runner"
    )


def run_entry_point(
    script: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    loader: Callable[[str], Callable[[], Any]] | None = None,
    stdout: TextIO | None = None,
) -> tuple[int, str]:
    """Call a console script's function in this process as its wrapper script would.

    ``sys.argv`` and the given environment variables are set for the call and restored after;
    ``SystemExit`` becomes the exit code. Returns ``(exit_code, captured_stdout)``.
    ``loader`` maps a script name to its callable (default: the installed entry point).
    """
    func = loader(script) if loader else find_entry_point(script).load()
    captured = io.StringIO()
    tee = _Tee(stdout or sys.stdout, captured)
    with _patched_env(env or {}), _patched_argv([script, *args]), contextlib.redirect_stdout(tee):
        _reset_cached_settings()
        try:
            result = func()
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        finally:
            _reset_cached_settings()
    return code, captured.getvalue()


def _reset_cached_settings() -> None:
    # Steps read MarketSettings once per process (lru_cache); in-process runs change the env
    # between steps, so the cache must not outlive one step.
    settings_mod = sys.modules.get("market_common.settings")
    if settings_mod is not None:
        settings_mod.get_settings.cache_clear()


class _Tee(io.TextIOBase):
    def __init__(self, *targets: TextIO) -> None:
        self._targets = targets

    def write(self, s: str) -> int:
        for t in self._targets:
            t.write(s)
        return len(s)

    def flush(self) -> None:
        for t in self._targets:
            t.flush()


@contextlib.contextmanager
def _patched_argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _patched_env(env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def subprocess_argv(script: str, args: Sequence[str], *, bin_dir: Path) -> list[str]:
    """Console script from ``bin_dir`` or PATH, else this interpreter via the launcher module."""
    search = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    exe = shutil.which(script, path=search)
    if exe:
        return [exe, *args]
    find_entry_point(script)  # fail here, with the actionable message, if it is not installed
    return [sys.executable, "-m", "market_dags.launch", script, *args]


def last_json_object(output: str) -> dict[str, Any] | None:
    """The last output line that is a JSON object: the step's machine-readable summary."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None
