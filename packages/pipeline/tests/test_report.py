"""build_report on literal frames and through a real DB-API connection (duckdb)."""

# Interpolated SQL names are test-generated identifiers.
# ruff: noqa: S608

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from market_pipeline.digest import render_digest
from market_pipeline.marts import MART_NAMES, ORDER_BY, MartFrames, MartNotBuiltError, read_marts
from market_pipeline.report import build_report, latest_signals, top_movers

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000


def test_every_symbol_gets_a_chart_and_the_report_links_them(
    frames: MartFrames, tmp_path: Path
) -> None:
    paths = build_report(frames, tmp_path)
    symbols = sorted(frames.performance["symbol"].unique())
    assert sorted(paths.symbol_charts) == symbols
    assert all(_is_png(p) for p in paths.charts), "every chart is a non-trivial PNG"
    html = paths.index_html.read_text()
    for path in paths.charts:
        assert f'src="{path.relative_to(tmp_path).as_posix()}"' in html


def test_digest_file_is_render_digest(frames: MartFrames, tmp_path: Path) -> None:
    paths = build_report(frames, tmp_path)
    expected = render_digest(frames.daily_summary, frames.realtime_signals)
    assert paths.digest.read_text() == expected


def test_html_shows_top_movers_and_latest_signals(frames: MartFrames, tmp_path: Path) -> None:
    html = build_report(frames, tmp_path).index_html.read_text()
    last = frames.performance[
        frames.performance["trade_date"] == frames.performance["trade_date"].max()
    ]
    best = last.sort_values("daily_return_pct").iloc[-1]
    assert (
        f"<td>{best['symbol']}</td><td>{best['close_price']:,.2f}</td><td>{best['daily_return_pct']:+.2f}%</td>"
        in html
    )
    for summary_symbol in latest_signals(frames.realtime_signals)["symbol"]:
        assert f"<td>{summary_symbol}</td>" in html


def test_top_movers_orders_best_then_worst(frames: MartFrames) -> None:
    movers = top_movers(frames.performance, n=1)
    last = frames.performance[
        frames.performance["trade_date"] == frames.performance["trade_date"].max()
    ]
    assert list(movers["symbol"]) == [
        last.loc[last["daily_return_pct"].idxmax(), "symbol"],
        last.loc[last["daily_return_pct"].idxmin(), "symbol"],
    ]


def test_schema_context_is_written_only_when_given(frames: MartFrames, tmp_path: Path) -> None:
    assert build_report(frames, tmp_path / "a").schema_context is None
    context = {"models": {"mart_daily_summary": {"columns": {"trade_date": "Trading day."}}}}
    written = build_report(frames, tmp_path / "b", schema_context=context).schema_context
    assert written is not None and json.loads(written.read_text()) == context


def test_rebuild_is_byte_identical_and_drops_stale_charts(
    frames: MartFrames, tmp_path: Path
) -> None:
    first = build_report(frames, tmp_path)
    before = {p: p.read_bytes() for p in first.charts}
    fewer = MartFrames(
        frames.performance[frames.performance["symbol"] != "CCC"],
        frames.daily_summary,
        frames.realtime_signals,
    )
    build_report(fewer, tmp_path)
    assert not first.symbol_charts["CCC"].exists(), "a symbol that left the marts loses its chart"
    again = build_report(frames, tmp_path)
    assert {p: p.read_bytes() for p in again.charts} == before


def test_empty_marts_still_produce_a_report(frames: MartFrames, tmp_path: Path) -> None:
    empty = MartFrames(
        frames.performance.iloc[0:0],
        frames.daily_summary.iloc[0:0],
        frames.realtime_signals.iloc[0:0],
    )
    paths = build_report(empty, tmp_path)
    assert paths.symbol_charts == {}
    assert _is_png(paths.breadth_chart) and _is_png(paths.signals_chart)
    html = paths.index_html.read_text()
    assert "<table>" not in html, "no empty grids"
    assert "no realtime windows in mart_realtime_signals yet" in html


def _warehouse(frames: MartFrames, database: str) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(f"attach ':memory:' as {database}")
    conn.execute(f"create schema {database}.ANALYTICS")
    for name, frame in frames.by_name().items():
        conn.register("frame", frame.rename(columns=str.upper))
        conn.execute(f"create table {database}.ANALYTICS.{name.upper()} as select * from frame")
        conn.unregister("frame")
    return conn


def test_read_marts_round_trips_through_a_connection(frames: MartFrames) -> None:
    read = read_marts(_warehouse(frames, "WH"), "WH")
    for name, frame in frames.by_name().items():
        got = read.by_name()[name]
        assert list(got.columns) == list(frame.columns), f"{name}: lower-case columns in mart order"
        expected = frame.sort_values(list(ORDER_BY[name])).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=name)


def test_build_report_from_a_connection_equals_from_frames(
    frames: MartFrames, tmp_path: Path
) -> None:
    from_conn = build_report(_warehouse(frames, "WH"), tmp_path / "conn", database="WH")
    from_frames = build_report(frames, tmp_path / "frames")
    assert from_conn.digest.read_text() == from_frames.digest.read_text()


def test_missing_mart_raises_an_actionable_error(frames: MartFrames) -> None:
    conn = _warehouse(frames, "WH")
    conn.execute(f"drop table WH.ANALYTICS.{MART_NAMES[0].upper()}")
    with pytest.raises(MartNotBuiltError, match="dbt build"):
        read_marts(conn, "WH")


def test_inspection_adds_quality_and_inspector_sections_and_the_source(
    frames: MartFrames, tmp_path: Path
) -> None:
    from market_pipeline.inspector import (
        DbtTests,
        Inspection,
        PrefixState,
        ReasonCount,
        TableState,
        TopicState,
    )

    inspection = Inspection(
        generated_at="2026-12-02 01:00:00 UTC",
        topics=[TopicState("bars", 3, 120, 120, {"raw-batch": 7})],
        dlq=[ReasonCount("high_below_low", 3, "producer: high 1 is below low 2 | {<b>}")],
        dlq_read=3,
        lake=[PrefixState("raw/historical/", 4, 5 * 1024 * 1024)],
        quarantine={"historical": [ReasonCount("duplicate_key", 2, "{}")], "realtime": []},
        warehouse=[TableState("DB.PUBLIC.DAILY", 117, "LOADED_AT", "2026-12-02", 0.5, ["synthetic"])],
        dbt=DbtTests("build", "2026-12-02T00:59:00Z", {"pass": 40, "fail": 1},
                     [{"test": "test.market.x", "status": "fail", "message": "1 row"}]),
    )  # fmt: skip

    html = build_report(frames, tmp_path, inspection=inspection).index_html.read_text()

    quality = html[html.index('<section id="quality">') : html.index('<section id="inspector">')]
    for cell in ("high_below_low", "<td>3</td>", "duplicate_key", "test.market.x", "<td>40</td>"):
        assert cell in quality, f"{cell} in the data-quality section"
    assert "&lt;b&gt;" in quality, "samples are escaped"
    inspector = html[html.index('<section id="inspector">') :]
    for cell in ("<td>bars</td>", "raw-batch", "<td>7</td>", "5.0 MiB", "DB.PUBLIC.DAILY"):
        assert cell in inspector, f"{cell} in the inspector section"
    assert "synthetic (generated by the seeded synthetic source" in html
    assert "nothing is quarantined" not in html, "the quarantine table has a row"


def test_without_an_inspection_the_report_has_no_such_sections(
    frames: MartFrames, tmp_path: Path
) -> None:
    html = build_report(frames, tmp_path).index_html.read_text()
    assert 'id="quality"' not in html and 'id="data-source"' not in html
