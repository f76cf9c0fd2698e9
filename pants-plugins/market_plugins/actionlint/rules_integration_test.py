"""`pants lint` with the actionlint plugin on planted and clean workflows.

Uses the binaries ./pants builds into ~/.cache/market-platform/pants/tools (actionlint
from its Go module, shellcheck from PyPI); skipped where they have not been built.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pants.core.goals.lint import LintResult
from pants.core.util_rules import config_files, external_tool
from pants.core.util_rules.partitions import Partitions
from pants.testutil.rule_runner import QueryRule, RuleRunner

from market_plugins.actionlint.rules import ActionlintRequest
from market_plugins.actionlint.rules import rules as actionlint_rules

TOOLS = Path.home() / ".cache/market-platform/pants/tools"

CLEAN_WORKFLOW = """\
name: clean
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo "ref is $GITHUB_REF"
"""
# An undefined context property and an unquoted expansion in a run: script.
PLANTED_WORKFLOW = """\
name: planted
on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - run: echo ${{ github.no_such_property }}
      - run: echo $GITHUB_REF
"""


def _tool_options(scope: str, version: str, binary: Path) -> list[str]:
    if not binary.is_file():
        pytest.skip(f"{binary} missing: run ./pants once to bootstrap its tools")
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    return [
        f"--{scope}-version={version}",
        f"--{scope}-url-template=file://{binary}",
        f"--{scope}-known-versions=['{version}|linux_x86_64|{digest}|{binary.stat().st_size}']",
    ]


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[
            *actionlint_rules(),
            *config_files.rules(),
            *external_tool.rules(),
            QueryRule(Partitions, [ActionlintRequest.PartitionRequest]),
            QueryRule(LintResult, [ActionlintRequest.Batch]),
        ],
        # Pants ignores dot-directories by default; the repo's pants.toml un-ignores .github.
        bootstrap_args=["--pants-ignore=+['!/.github/']"],
    )
    runner.set_options(
        [
            *_tool_options("actionlint", "1.7.12", TOOLS / "actionlint/actionlint"),
            *_tool_options("shellcheck", "v0.11.0", TOOLS / "shellcheck/shellcheck"),
        ],
        env_inherit={"PATH", "HOME"},
    )
    return runner


def _lint(rule_runner: RuleRunner, files: dict[str, str]) -> LintResult:
    rule_runner.write_files(files)
    partitions = rule_runner.request(
        Partitions, [ActionlintRequest.PartitionRequest(tuple(sorted(files)))]
    )
    assert len(partitions) == 1, "all workflows go to one actionlint run"
    partition = partitions[0]
    return rule_runner.request(
        LintResult,
        [ActionlintRequest.Batch("actionlint", partition.elements, partition.metadata)],
    )


def test_clean_workflow_passes(rule_runner: RuleRunner) -> None:
    result = _lint(rule_runner, {".github/workflows/clean.yml": CLEAN_WORKFLOW})
    assert result.exit_code == 0, f"clean workflow should pass:\n{result.stdout}{result.stderr}"


def test_planted_workflow_fails(rule_runner: RuleRunner) -> None:
    result = _lint(
        rule_runner,
        {
            ".github/workflows/clean.yml": CLEAN_WORKFLOW,
            ".github/workflows/planted.yml": PLANTED_WORKFLOW,
        },
    )
    assert result.exit_code != 0, "the planted workflow must fail"
    assert "clean.yml" not in result.stdout, "only the planted workflow is reported"
    assert "no_such_property" in result.stdout, f"expression check missing:\n{result.stdout}"
    assert "SC2086" in result.stdout, f"shellcheck of run: scripts missing:\n{result.stdout}"


def test_only_workflow_files_are_linted(rule_runner: RuleRunner) -> None:
    partitions = rule_runner.request(
        Partitions,
        [ActionlintRequest.PartitionRequest(("ci.yml", ".github/workflows/ci.yml", "a/b.yaml"))],
    )
    assert [tuple(p.elements) for p in partitions] == [(".github/workflows/ci.yml",)]
