"""Slim CI: build only what a pull request changed, next to production, then clean up.

``state:modified+`` selects changed nodes and their children; ``--defer --state`` makes
refs to everything else resolve to the production relations recorded in the state
manifest, so parents are read from prod instead of rebuilt. All built nodes go to one
schema per pull request (var ``ci_schema``, see generate_schema_name), dropped afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from market_dbt.errors import DbtStateError
from market_dbt.runner import DbtResult, DbtRunner


def ci_schema_name(pr_number: int) -> str:
    if pr_number < 1:
        raise ValueError(f"pull request number must be positive, got {pr_number}")
    return f"PR_{pr_number}"


@dataclass(frozen=True)
class SlimCiResult:
    schema: str
    build: DbtResult
    dropped: bool

    @property
    def built_nodes(self) -> list[str]:
        """Models and seeds that were built (not tests)."""
        return [uid for uid in self.build.unique_ids() if uid.split(".")[0] in {"model", "seed"}]


def run_slim_ci(
    runner: DbtRunner, *, state_dir: Path, pr_number: int, keep_schema: bool = False
) -> SlimCiResult:
    """Build ``state:modified+`` deferred to ``state_dir`` into ``PR_<n>``; drop it after."""
    if not (state_dir / "manifest.json").is_file():
        raise DbtStateError(f"{state_dir} has no manifest.json from a production run")
    schema = ci_schema_name(pr_number)
    dropped = False
    try:
        build = runner.invoke(
            "build",
            "--select", "state:modified+",
            "--defer",
            "--state", str(state_dir.resolve()),
            "--vars", json.dumps({"ci_schema": schema}),
        )  # fmt: skip
    finally:
        if not keep_schema:
            runner.invoke(
                "run-operation", "drop_ci_schema", "--args", json.dumps({"schema": schema})
            )
            dropped = True
    return SlimCiResult(schema=schema, build=build, dropped=dropped)
