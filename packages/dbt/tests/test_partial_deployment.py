"""A batch-only warehouse builds green through the CLI, and dbt options pass through it.

The realtime loader has never run on this private fakesnow, so STOCKMARKETSTREAM does not
exist: the stream staging view must read as zero rows (macros/source_or_empty.sql) and
every batch mart must still build, through ``market-dbt build`` exactly as a user calls it.
"""

# Interpolated SQL names are the test's own constants.
# ruff: noqa: S608
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DAYS_BY_SYMBOL, Fakesnow, copy_project, running_fakesnow
from market_dbt_sample_data import BATCH_DB, daily_bars, load_sources, utc_now

from market_common.exitcodes import ExitCode
from market_dbt.cli import main

pytestmark = pytest.mark.integration

ANALYTICS = "STOCKMARKETBATCH.ANALYTICS"
# dbt's per-node result line: "12:00:00  3 of 70 OK created sql view model …".
NODE_LINE = re.compile(r"^\S+\s+(\d+) of (\d+) (?:OK|PASS|WARN|ERROR|FAIL|SKIP)", re.M)


@pytest.fixture(scope="module")
def batch_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fakesnow, Path]]:
    """A fakesnow holding only the daily loader table, and a scratch copy of dbt/."""
    with running_fakesnow(tmp_path_factory.mktemp("batch_only")) as server:
        daily = daily_bars(DAYS_BY_SYMBOL, loaded_at=utc_now())
        with server.connect() as connection:
            load_sources(connection, daily, None)
            # On a loaded machine the connector may re-send a slow multi-row INSERT after
            # its request timeout, and fakesnow applies both: keep one copy of each row.
            table = f"{BATCH_DB}.PUBLIC.DAILY_STOCK_METRICS"
            connection.cursor().execute(
                f"create or replace table {table} as select distinct * from {table}"
            )
        assert server.query(f"select count(*) as n from {table}")["n"].item() == len(daily)
        project = copy_project(tmp_path_factory.mktemp("partial") / "dbt")
        yield server, project.project_dir


@pytest.fixture()
def cli_env(batch_only: tuple[Fakesnow, Path], monkeypatch: pytest.MonkeyPatch) -> Fakesnow:
    """The environment a user's shell would have: the endpoint and the project directory."""
    server, project_dir = batch_only
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MARKET_DBT__PROJECT_DIR", str(project_dir))
    monkeypatch.setenv("MARKET_DBT__TARGET", "local")
    return server


@pytest.fixture()
def project_dir(batch_only: tuple[Fakesnow, Path]) -> Path:
    return batch_only[1]


def test_batch_only_warehouse_builds_green_and_streams_node_lines(
    cli_env: Fakesnow, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["build"])
    out = capsys.readouterr().out

    assert code == ExitCode.OK, f"a batch-only warehouse builds green:\n{out[-3000:]}"
    assert "does not exist yet" in out, "the missing stream source is named in the log"
    counters = [m.groups() for m in NODE_LINE.finditer(out)]
    total = int(counters[0][1])
    assert {int(i) for i, _ in counters} == set(
        range(1, total + 1)
    ), "a line per node was streamed (1 of N … N of N), not swallowed"
    assert "OK created sql view model STAGING.stg_realtime_stock_analytics" in out
    assert (
        cli_env.query(f"select count(*) as n from {ANALYTICS}.MART_REALTIME_SIGNALS")["n"].item()
        == 0
    ), "the realtime mart exists and is empty"
    performance = cli_env.query(
        f"select symbol, count(*) as n from {ANALYTICS}.MART_STOCK_PERFORMANCE group by symbol"
    )
    assert (
        dict(zip(performance["symbol"], performance["n"], strict=True)) == DAYS_BY_SYMBOL
    ), "every batch bar reached mart_stock_performance"


def test_select_and_unknown_options_are_forwarded_to_dbt(
    cli_env: Fakesnow, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["build", "--json", "--select", "+mart_stock_performance", "--fail-fast"])
    out = capsys.readouterr().out

    assert code == ExitCode.OK, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["args"] == ["--select", "+mart_stock_performance", "--fail-fast"]
    built = json.loads((project_dir / "target/run_results.json").read_text())
    models = {r["unique_id"] for r in built["results"] if r["unique_id"].startswith("model.")}
    assert models == {
        "model.market.stg_daily_stock_metrics",
        "model.market.mart_stock_performance",
    }, "only the selected mart and its parents were built (ephemeral intermediates inline)"
    assert summary["nodes"] == len(built["results"])


def test_bad_usage_exits_with_the_usage_code(cli_env: Fakesnow) -> None:
    assert main(["no-such-command"]) == ExitCode.USAGE
