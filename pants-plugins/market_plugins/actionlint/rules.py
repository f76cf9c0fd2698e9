"""`pants lint` runs actionlint on the GitHub Actions workflows (files, not targets)."""

from __future__ import annotations

from typing import Any

from pants.backend.shell.lint.shellcheck.subsystem import Shellcheck
from pants.core.goals.lint import LintFilesRequest, LintResult
from pants.core.util_rules.external_tool import DownloadedExternalTool, ExternalToolRequest
from pants.core.util_rules.partitions import Partitions
from pants.engine.fs import EMPTY_DIGEST, Digest, MergeDigests, PathGlobs, Snapshot
from pants.engine.platform import Platform
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.source.filespec import FilespecMatcher
from pants.util.logging import LogLevel
from pants.util.strutil import pluralize

from market_plugins.actionlint.subsystem import Actionlint


class ActionlintRequest(LintFilesRequest):
    tool_subsystem = Actionlint


@rule
async def partition_workflows(
    request: ActionlintRequest.PartitionRequest, actionlint: Actionlint
) -> Partitions[str, Any]:
    if actionlint.skip:
        return Partitions()
    matched = FilespecMatcher(includes=actionlint.include, excludes=[]).matches(request.files)
    return Partitions.single_partition(sorted(matched)) if matched else Partitions()


@rule(desc="Lint with actionlint", level=LogLevel.DEBUG)
async def run_actionlint(
    request: ActionlintRequest.Batch[str, Any],
    actionlint: Actionlint,
    shellcheck: Shellcheck,
    platform: Platform,
) -> LintResult:
    tool, sources, config = await MultiGet(
        Get(DownloadedExternalTool, ExternalToolRequest, actionlint.get_request(platform)),
        Get(Snapshot, PathGlobs(request.elements)),
        Get(Snapshot, PathGlobs(actionlint.config_globs)),
    )
    shellcheck_digest: Digest = EMPTY_DIGEST
    # An empty -shellcheck= turns the integration off (and so does a missing binary).
    shellcheck_arg = "-shellcheck="
    if actionlint.shellcheck:
        shellcheck_tool = await Get(
            DownloadedExternalTool, ExternalToolRequest, shellcheck.get_request(platform)
        )
        shellcheck_digest = shellcheck_tool.digest
        shellcheck_arg = f"-shellcheck=./{shellcheck_tool.exe}"
    input_digest = await Get(
        Digest, MergeDigests((sources.digest, config.digest, tool.digest, shellcheck_digest))
    )
    result = await Get(
        FallibleProcessResult,
        Process(
            argv=(
                tool.exe,
                "-no-color",
                shellcheck_arg,
                "-pyflakes=",
                *actionlint.args,
                *sources.files,
            ),
            input_digest=input_digest,
            description=f"Run actionlint on {pluralize(len(sources.files), 'file')}.",
            level=LogLevel.DEBUG,
        ),
    )
    return LintResult.create(request, result)


def rules() -> list:
    return [*collect_rules(), *ActionlintRequest.rules()]
