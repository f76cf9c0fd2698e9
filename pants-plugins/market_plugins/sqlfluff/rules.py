"""`pants lint` (`sqlfluff lint`) and `pants fmt` (`sqlfluff fix`) for SQL files.

Pants 2.17 has no SQL backend, so SQL files are not targets: both requests work on
plain files, like the built-in yamllint and taplo backends.
"""

from __future__ import annotations

from typing import Any

from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.core.goals.fmt import FmtFilesRequest, FmtResult
from pants.core.goals.lint import LintFilesRequest, LintResult
from pants.core.util_rules.partitions import Partitions
from pants.engine.fs import Digest, MergeDigests, PathGlobs, Snapshot
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.source.filespec import FilespecMatcher
from pants.util.logging import LogLevel
from pants.util.meta import classproperty
from pants.util.strutil import pluralize

from market_plugins.sqlfluff.subsystem import Sqlfluff


class SqlfluffLintRequest(LintFilesRequest):
    tool_subsystem = Sqlfluff


class SqlfluffFmtRequest(FmtFilesRequest):
    tool_subsystem = Sqlfluff

    @classproperty
    def tool_name(cls) -> str:
        return "sqlfluff fix"


def _partition(files: tuple[str, ...], sqlfluff: Sqlfluff) -> Partitions[str, Any]:
    if sqlfluff.skip:
        return Partitions()
    matched = FilespecMatcher(includes=sqlfluff.include, excludes=sqlfluff.exclude).matches(files)
    # One partition: sqlfluff reads its config per file, and it parallelises itself.
    return Partitions.single_partition(sorted(matched)) if matched else Partitions()


@rule
async def partition_lint(
    request: SqlfluffLintRequest.PartitionRequest, sqlfluff: Sqlfluff
) -> Partitions[str, Any]:
    return _partition(request.files, sqlfluff)


@rule
async def partition_fmt(
    request: SqlfluffFmtRequest.PartitionRequest, sqlfluff: Sqlfluff
) -> Partitions[str, Any]:
    return _partition(request.files, sqlfluff)


async def _run_sqlfluff(
    command: str, sources: Snapshot, sqlfluff: Sqlfluff
) -> FallibleProcessResult:
    files = sources.files
    tool, support = await MultiGet(
        Get(VenvPex, PexRequest, sqlfluff.to_pex_request()),
        Get(Snapshot, PathGlobs([*sqlfluff.config_globs, *sqlfluff.extra_inputs])),
    )
    input_digest = await Get(Digest, MergeDigests((sources.digest, support.digest)))
    return await Get(
        FallibleProcessResult,
        VenvPexProcess(
            tool,
            argv=(command, *sqlfluff.args, *files),
            input_digest=input_digest,
            output_files=files if command == "fix" else (),
            description=f"Run sqlfluff {command} on {pluralize(len(files), 'file')}.",
            level=LogLevel.DEBUG,
        ),
    )


@rule(desc="Lint with sqlfluff", level=LogLevel.DEBUG)
async def sqlfluff_lint(
    request: SqlfluffLintRequest.Batch[str, Any], sqlfluff: Sqlfluff
) -> LintResult:
    sources = await Get(Snapshot, PathGlobs(request.elements))
    result = await _run_sqlfluff("lint", sources, sqlfluff)
    return LintResult.create(request, result)


@rule(desc="Fix with sqlfluff", level=LogLevel.DEBUG)
async def sqlfluff_fix(request: SqlfluffFmtRequest.Batch, sqlfluff: Sqlfluff) -> FmtResult:
    # `sqlfluff fix` also exits non-zero for violations it cannot fix; those are
    # reported by the lint request, so only the rewritten files matter here.
    # request.snapshot holds the output of the formatters that ran before this one.
    result = await _run_sqlfluff("fix", request.snapshot, sqlfluff)
    return await FmtResult.create(request, result)


def rules() -> list:
    return [*collect_rules(), *SqlfluffLintRequest.rules(), *SqlfluffFmtRequest.rules()]
