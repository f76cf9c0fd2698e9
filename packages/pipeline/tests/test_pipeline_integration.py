"""``market-pipeline run`` end to end on the local stack, at a reduced size.

3 symbols x ~5 months of daily bars (SMA 50 on more than half of them) and a 45-minute
session. Every name the run writes is unique to this test (topics, consumer groups, S3
prefixes, warehouse databases, a scratch copy of dbt/), so parallel tests and the user's
own runs never collide. Expectations are read back from the warehouse with plain SQL,
independently of the report code.
"""

# Interpolated SQL names are test-generated identifiers.
# ruff: noqa: S608
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from isolation import isolated_run_env
from typer.testing import CliRunner

from market_common.settings import MarketSettings, load_settings
from market_dags import steps
from market_pipeline.cli import app
from market_pipeline.counts import layer_counts
from market_pipeline.marts import MART_NAMES
from market_pipeline.run import Pipeline, RunOptions
from market_testing.pytest_plugin import UniqueNames

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT", "NVDA")
# ~113 trading days: dbt tests want SMA 50 on at least half of the rows (>= 100 days).
YEARS = 0.45
SESSION_MINUTES = 45


@dataclass(frozen=True)
class FirstRun:
    settings: MarketSettings
    report_dir: Path
    options: RunOptions


@pytest.fixture(scope="module")
def first_run(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """One ``market-pipeline run`` with its own topics, groups, prefixes, databases and dbt copy."""
    names = UniqueNames("pipeline-integration")
    prefix = names("pipe")
    work = tmp_path_factory.mktemp("pipeline")
    overrides = isolated_run_env(prefix, work)
    options = RunOptions(
        years=YEARS, symbols=SYMBOLS, session_minutes=SESSION_MINUTES, report_dir=work / "report"
    )
    args = ["run", "--symbols", ",".join(SYMBOLS), "--years", str(YEARS),
            "--session-minutes", str(SESSION_MINUTES), "--report-dir", str(options.report_dir)]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for key, value in overrides.items():
            patch.setenv(key, value)
        outcome = CliRunner().invoke(app, args)
        assert outcome.exit_code == 0, f"market-pipeline run failed:\n{outcome.output}"
        yield FirstRun(load_settings(), options.report_dir, options)


def _query(settings: MarketSettings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    from market_common.clients import snowflake_connection

    with snowflake_connection(settings) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return [c[0].lower() for c in cursor.description], cursor.fetchall()


def test_report_digest_and_schema_context_match_the_marts(first_run: FirstRun) -> None:
    isolated, report_dir = first_run.settings, first_run.report_dir
    analytics = f"{isolated.snowflake.batch_database}.ANALYTICS"
    # Every symbol has a chart.
    _, symbols = _query(isolated, f"select distinct symbol from {analytics}.MART_STOCK_PERFORMANCE")
    assert sorted(s for (s,) in symbols) == sorted(SYMBOLS)
    for (symbol,) in symbols:
        chart = report_dir / "charts" / f"price_{symbol}.png"
        assert chart.is_file() and chart.stat().st_size > 1000, f"no chart for {symbol}"
    _, sma = _query(isolated, f"select count(sma_50d) from {analytics}.MART_STOCK_PERFORMANCE")
    assert sma[0][0] > 0, "the backfill is long enough for SMA 50"

    # The digest's movers and breadth are the last mart_daily_summary row.
    columns, rows = _query(
        isolated, f"select * from {analytics}.MART_DAILY_SUMMARY order by trade_date desc limit 1"
    )
    last = dict(zip(columns, rows[0], strict=True))
    digest = (report_dir / "digest.txt").read_text()
    assert f"Session {last['trade_date']:%Y-%m-%d}" in digest
    assert (
        f"Top gainer: {last['top_gainer_symbol']} {float(last['top_gainer_return_pct']):+.2f}%"
        in digest
    )
    assert (
        f"Top loser: {last['top_loser_symbol']} {float(last['top_loser_return_pct']):+.2f}%"
        in digest
    )
    assert f"{last['advancers']} advancer" in digest and f"{last['decliners']} decliner" in digest
    assert f"{float(last['pct_advancing']):.2f}% advancing" in digest

    # The realtime section covers the simulated session's windows.
    _, windows = _query(isolated, f"select count(*) from {analytics}.MART_REALTIME_SIGNALS")
    assert windows[0][0] > 0, "the streaming path produced windows"
    assert f"{windows[0][0]} windows" in digest

    # schema_context.json documents every column of every mart.
    context = json.loads((report_dir / "schema_context.json").read_text())
    for mart in MART_NAMES:
        mart_columns, _ = _query(isolated, f"select * from {analytics}.{mart.upper()} limit 0")
        documented = set(context["models"][mart]["columns"])
        assert (
            set(mart_columns) <= documented
        ), f"{mart}: undocumented {set(mart_columns) - documented}"
    assert "index.html" in {p.name for p in report_dir.iterdir()}


def test_rerun_skips_finished_steps_and_changes_nothing(
    first_run: FirstRun, tmp_path: Path
) -> None:
    before = layer_counts(first_run.settings)
    options = replace(first_run.options, report_dir=tmp_path / "again")
    again = Pipeline(options, settings=first_run.settings).run()
    skipped = {s.name for s in again.steps if s.status == "skipped"}
    unchanged = {steps.FETCH_HISTORICAL, steps.COLLECT_TICKS, steps.SPARK_BATCH,
                 steps.SPARK_STREAM, steps.SOURCE_FRESHNESS, steps.STAGING, steps.MARTS,
                 steps.TESTS, steps.DOCS}  # fmt: skip
    assert unchanged <= skipped, f"steps whose inputs did not change are skipped: {skipped}"
    assert again.ok
    assert again.counts == before, "a re-run changes no layer's row count"
    assert (options.report_dir / "digest.txt").read_text() == (
        first_run.report_dir / "digest.txt"
    ).read_text()
