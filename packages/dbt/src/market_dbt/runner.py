"""Run dbt against the platform's project, in-process (dbtRunner) or as a subprocess.

The project and profiles directories come from ``MarketSettings.dbt`` or, by default, the
repository's ``dbt/`` found by walking up from the working directory (or this file), so
the same code works in a checkout, a Pants sandbox and an Airflow worker. The Snowflake
endpoint reaches dbt's ``profiles.yml`` as ``MARKET_SNOWFLAKE__*`` environment variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from market_common.runtime import child_env
from market_common.settings import MarketSettings
from market_dbt.errors import DbtProjectNotFoundError, DbtRunError, NodeFailure

PROJECT_FILE = "dbt_project.yml"
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
# Written per command; freshness writes sources.json instead of run_results.json.
RESULT_FILES = ("run_results.json", "sources.json")
# Lines of dbt's output kept for the error message of a failed subprocess run.
TAIL_LINES = 30

Mode = Literal["subprocess", "inprocess"]


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest ``dbt/`` holding dbt_project.yml above ``start`` (cwd) or this module."""
    anchors = [(start or Path.cwd()).resolve(), Path(__file__).resolve()]
    for anchor in anchors:
        for candidate in (anchor, *anchor.parents):
            if (candidate / "dbt" / PROJECT_FILE).is_file():
                return candidate / "dbt"
    raise DbtProjectNotFoundError(
        f"no dbt/{PROJECT_FILE} above {anchors[0]}; set MARKET_DBT__PROJECT_DIR"
    )


@dataclass(frozen=True)
class DbtProject:
    """Where the project, its profiles and its artifacts live, and which target to use."""

    project_dir: Path
    profiles_dir: Path
    target: str = "local"

    @property
    def target_dir(self) -> Path:
        return self.project_dir / "target"

    @classmethod
    def from_settings(cls, settings: MarketSettings) -> DbtProject:
        project_dir = (settings.dbt.project_dir or find_project_dir()).resolve()
        if not (project_dir / PROJECT_FILE).is_file():
            raise DbtProjectNotFoundError(f"{project_dir} has no {PROJECT_FILE}")
        profiles_dir = (settings.dbt.profiles_dir or project_dir).resolve()
        return cls(project_dir=project_dir, profiles_dir=profiles_dir, target=settings.dbt.target)


def snowflake_env(settings: MarketSettings) -> dict[str, str]:
    """The ``MARKET_SNOWFLAKE__*`` variables profiles.yml reads, from the settings."""
    sf = settings.snowflake
    values: dict[str, object] = {
        "ACCOUNT": sf.account,
        "USER": sf.user,
        "PASSWORD": sf.password.get_secret_value() if sf.password else None,
        "PRIVATE_KEY_PATH": sf.private_key_path,
        "PRIVATE_KEY_PASSPHRASE": (
            sf.private_key_passphrase.get_secret_value() if sf.private_key_passphrase else None
        ),
        "ROLE": sf.role,
        "WAREHOUSE": sf.warehouse,
        "HOST": sf.host,
        "PORT": sf.port,
        "PROTOCOL": sf.protocol,
        "BATCH_DATABASE": sf.batch_database,
        "STREAM_DATABASE": sf.stream_database,
    }
    return {f"MARKET_SNOWFLAKE__{k}": str(v) for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class DbtResult:
    """What one successful invocation produced: its artifact (run_results / sources)."""

    command: str
    artifact: dict[str, Any] = field(default_factory=dict)

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.artifact.get("results", []))

    def unique_ids(self, resource_prefix: str = "") -> list[str]:
        return sorted(
            r["unique_id"] for r in self.results if r["unique_id"].startswith(resource_prefix)
        )


@contextlib.contextmanager
def _patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    """dbt's env_var() reads os.environ, so in-process runs borrow it for the call."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class DbtRunner:
    """Invokes dbt commands with the project's --project-dir/--profiles-dir/--target."""

    def __init__(
        self,
        project: DbtProject,
        *,
        env: Mapping[str, str] | None = None,
        mode: Mode = "subprocess",
    ) -> None:
        self.project = project
        self.env = dict(env or {})
        self.mode = mode

    @classmethod
    def from_settings(cls, settings: MarketSettings, *, mode: Mode = "subprocess") -> DbtRunner:
        return cls(DbtProject.from_settings(settings), env=snowflake_env(settings), mode=mode)

    def invoke(
        self,
        command: str,
        *args: str,
        check: bool = True,
        on_line: Callable[[str], None] | None = None,
    ) -> DbtResult:
        """Run ``dbt <command> <args>``; raise DbtRunError naming failed nodes if it fails.

        ``on_line`` (subprocess mode) receives each line of dbt's output as dbt writes it
        (its per-node ``OK created …`` / ``PASS`` / ``ERROR`` lines), so a long build shows
        progress; without it the output is only kept, and its tail goes into the error.
        In-process mode dbt logs to this process's stdout itself.
        """
        argv = [
            command,
            *args,
            "--project-dir", str(self.project.project_dir),
            "--profiles-dir", str(self.project.profiles_dir),
        ]  # fmt: skip
        if command not in {"clean", "deps", "parse"}:
            argv += ["--target", self.project.target]
        for name in RESULT_FILES:  # never report a previous run's results as ours
            (self.project.target_dir / name).unlink(missing_ok=True)
        ok, detail = (
            self._run_subprocess(argv, on_line)
            if self.mode == "subprocess"
            else self._run_inprocess(argv)
        )
        artifact = self._read_artifact()
        if not ok and check:
            raise DbtRunError(command, _failures(artifact), detail)
        return DbtResult(command=command, artifact=artifact)

    def _run_subprocess(
        self, argv: list[str], on_line: Callable[[str], None] | None
    ) -> tuple[bool, str]:
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        # One pipe for both streams keeps dbt's own ordering of log and error lines.
        with subprocess.Popen(
            [sys.executable, "-m", "dbt.cli.main", *argv],
            # Unbuffered: a piped Python child would otherwise hold its lines back in blocks.
            env=child_env({"PYTHONUNBUFFERED": "1", **self.env}),
            cwd=self.project.project_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as process:
            for raw in process.stdout or ():
                line = raw.rstrip("\n")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
            returncode = process.wait()
        return returncode == 0, "\n".join(tail).strip()

    def _run_inprocess(self, argv: list[str]) -> tuple[bool, str]:
        from dbt.cli.main import dbtRunner  # heavy import, only when used

        with _patched_environ(self.env):
            outcome = dbtRunner().invoke(argv)
        return outcome.success, repr(outcome.exception) if outcome.exception else ""

    def _read_artifact(self) -> dict[str, Any]:
        for name in RESULT_FILES:
            path = self.project.target_dir / name
            if path.is_file():
                data: dict[str, Any] = json.loads(path.read_text())
                return data
        return {}


def _failures(artifact: Mapping[str, Any]) -> list[NodeFailure]:
    return [
        NodeFailure(r["unique_id"], r["status"], (r.get("message") or "").strip())
        for r in artifact.get("results", [])
        if r.get("status") in FAILED_STATUSES
    ]
