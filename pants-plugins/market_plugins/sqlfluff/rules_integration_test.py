"""`pants lint` / `pants fmt` with the sqlfluff plugin and the repo's root .sqlfluff.

Runs the real rules in a RuleRunner build root holding the repo's `.sqlfluff` and a few
SQL files, installing sqlfluff from PyPI (unlocked, the version the repo's lock pins).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from pants.backend.python.util_rules import pex
from pants.core.goals.fmt import FmtResult
from pants.core.goals.lint import LintResult
from pants.core.util_rules import config_files, source_files
from pants.core.util_rules.partitions import Partitions
from pants.engine.fs import Digest, DigestContents, PathGlobs, Snapshot
from pants.testutil.rule_runner import QueryRule, RuleRunner

from market_plugins.sqlfluff.rules import SqlfluffFmtRequest, SqlfluffLintRequest
from market_plugins.sqlfluff.rules import rules as sqlfluff_rules

# pants-plugins/market_plugins/sqlfluff/<this file>: the repo (or sandbox) root is 3 up.
REPO_ROOT = Path(__file__).resolve().parents[3]
SQLFLUFF_VERSION = "sqlfluff==3.4.0"
PEX_CACHE = Path.home() / ".cache/market-platform/pants/tools"

CLEAN_SQL = """\
with daily_bars as (
    select
        symbol,
        trade_date,
        close_price
    from raw_daily_bars
)

select
    symbol,
    max(close_price) as max_close_price
from daily_bars
group by symbol
"""
# Upper-case keywords and identifiers, an implicit column alias: CP01, CP02, AL02.
PLANTED_SQL = "SELECT SYMBOL, MAX(CLOSE_PRICE) MAX_CLOSE FROM DAILY_BARS GROUP BY SYMBOL\n"


def _pex_cli_options() -> list[str]:
    """The locally built pex CLI of ./pants (GitHub, Pants' default source, is unreachable)."""
    pex_file = PEX_CACHE / "pex-2.1.137.pex"
    if not pex_file.is_file():
        pytest.skip(f"{pex_file} missing: run ./pants once to bootstrap its tools")
    digest = hashlib.sha256(pex_file.read_bytes()).hexdigest()
    return [
        "--pex-cli-version=v2.1.137",
        f"--pex-cli-url-template=file://{pex_file}",
        f"--pex-cli-known-versions=['v2.1.137|linux_x86_64|{digest}|{pex_file.stat().st_size}']",
    ]


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[
            *sqlfluff_rules(),
            *pex.rules(),
            *config_files.rules(),
            *source_files.rules(),
            QueryRule(Partitions, [SqlfluffLintRequest.PartitionRequest]),
            QueryRule(LintResult, [SqlfluffLintRequest.Batch]),
            QueryRule(Partitions, [SqlfluffFmtRequest.PartitionRequest]),
            QueryRule(FmtResult, [SqlfluffFmtRequest.Batch]),
            QueryRule(Snapshot, [PathGlobs]),
            QueryRule(DigestContents, [Digest]),
        ],
    )
    runner.set_options(
        [
            f"--sqlfluff-version={SQLFLUFF_VERSION}",
            "--sqlfluff-lockfile=<none>",
            # As in pants.toml: the macros .sqlfluff's load_macros_from_path names.
            "--sqlfluff-extra-inputs=['dbt/macros/**/*.sql']",
            # sqlfluff runs on the interpreter running this test (the sandbox of
            # pants-plugins:run_tests has no PATH to search; the plugin is what is tested).
            f"--sqlfluff-interpreter-constraints=['CPython=={sys.version_info[0]}.{sys.version_info[1]}.*']",
            f"--python-bootstrap-search-path=['{Path(sys.executable).parent}']",
            "--subprocess-environment-env-vars=['PIP_CONFIG_FILE=/dev/null']",
            "--ca-certs-path=/etc/ssl/certs/ca-certificates.crt",
            *_pex_cli_options(),
        ],
        env_inherit={"HOME"},
    )
    config = (REPO_ROOT / ".sqlfluff").read_text()
    # The root config loads Jinja macros from dbt/macros, which must exist.
    runner.write_files(
        {".sqlfluff": config, "dbt/macros/noop.sql": "{% macro noop() %}{% endmacro %}\n"}
    )
    return runner


def _lint(rule_runner: RuleRunner, files: dict[str, str]) -> LintResult:
    rule_runner.write_files(files)
    partitions = rule_runner.request(
        Partitions, [SqlfluffLintRequest.PartitionRequest(tuple(sorted(files)))]
    )
    assert len(partitions) == 1, "all SQL files go to one sqlfluff run"
    partition = partitions[0]
    return rule_runner.request(
        LintResult,
        [SqlfluffLintRequest.Batch("sqlfluff", partition.elements, partition.metadata)],
    )


def test_lint_passes_clean_sql(rule_runner: RuleRunner) -> None:
    result = _lint(rule_runner, {"models/clean.sql": CLEAN_SQL})
    assert (
        result.exit_code == 0
    ), f"clean SQL should pass the root config:\n{result.stdout}{result.stderr}"


def test_lint_fails_on_planted_violation(rule_runner: RuleRunner) -> None:
    result = _lint(rule_runner, {"models/clean.sql": CLEAN_SQL, "models/planted.sql": PLANTED_SQL})
    assert result.exit_code != 0, "upper-case SQL must fail the lint"
    assert "models/planted.sql" in result.stdout
    assert "models/clean.sql" not in result.stdout, "only the planted file is reported"
    for rule_code in ("CP01", "CP02", "AL02"):
        assert rule_code in result.stdout, f"expected {rule_code} in:\n{result.stdout}"


def test_partition_ignores_non_sql(rule_runner: RuleRunner) -> None:
    partitions = rule_runner.request(
        Partitions, [SqlfluffLintRequest.PartitionRequest(("README.md", "a/b.sql"))]
    )
    assert [tuple(p.elements) for p in partitions] == [("a/b.sql",)]


def test_fmt_rewrites_planted_file(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"models/planted.sql": PLANTED_SQL})
    snapshot = rule_runner.request(Snapshot, [PathGlobs(["models/planted.sql"])])
    result = rule_runner.request(
        FmtResult,
        [SqlfluffFmtRequest.Batch("sqlfluff fix", snapshot.files, None, snapshot)],
    )
    assert result.did_change, "sqlfluff fix should rewrite upper-case SQL"
    (fixed,) = rule_runner.request(DigestContents, [result.output.digest])
    text = fixed.content.decode()
    assert text.lower() == text, f"fixed SQL should be lower case:\n{text}"
    assert " as max_close" in text, f"fix should add the explicit alias:\n{text}"
