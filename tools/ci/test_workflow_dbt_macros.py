"""Every `dbt run-operation <macro>` in the workflows names a macro of the dbt project.

Regression for #16: dbt-slim-ci.yml ran `run-operation drop_schema` (dbt's own macro, which
takes a relation, so PR_<n> schemas were never dropped) instead of the project's
`drop_ci_schema`.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml


def _repo() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / ".github" / "workflows").is_dir() and (parent / "dbt").is_dir():
            return parent
    raise FileNotFoundError(".github/workflows not found above this test")


REPO = _repo()


def _run_steps() -> list[tuple[str, str]]:
    steps = []
    for workflow in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        for job in (yaml.safe_load(workflow.read_text()).get("jobs") or {}).values():
            steps += [(workflow.name, s["run"]) for s in job.get("steps", []) if "run" in s]
    return steps


def test_run_operations_name_project_macros() -> None:
    macros = {
        m
        for f in (REPO / "dbt" / "macros").glob("**/*.sql")
        for m in re.findall(r"\{%-?\s*macro\s+(\w+)\s*\(", f.read_text())
    }
    used = [
        (workflow, name)
        for workflow, run in _run_steps()
        for name in re.findall(r"run-operation\s+(\w+)", run)
    ]
    assert ("dbt-slim-ci.yml", "drop_ci_schema") in used, "the PR schema is dropped on close"
    unknown = [f"{w}: {n}" for w, n in used if n not in macros]
    assert not unknown, f"run-operation of macros the project does not define: {unknown}"


def test_production_manifest_is_refreshed_before_it_expires() -> None:
    """Finding: the prod manifest artifact expired 90 days after the last dbt change."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "dbt-slim-ci.yml").read_text())
    triggers = workflow.get("on") or workflow.get(True)  # YAML 1.1 reads `on` as True
    assert triggers.get("schedule"), "a scheduled run republishes the manifest"
    assert "pull_request" not in workflow["jobs"]["production-manifest"]["if"].replace(
        "!= 'pull_request'", ""
    )
