"""The terminal summary printed at the end of a run (rich tables)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from market_dags import steps
from market_pipeline.digest import fmt_count, fmt_pct, fmt_price
from market_pipeline.report import last_day, top_movers
from market_pipeline.run import FAILED_DBT, RunResult


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def steps_table(result: RunResult) -> Table:
    table = _table(f"Steps ({result.seconds:.0f} s)", "step", "status", "seconds")
    for step in result.steps:
        status = "ran" if step.status == "ran" else "[dim]up to date[/dim]"
        table.add_row(step.name, status, f"{step.seconds:.1f}")
    return table


def _produced(result: RunResult, step: str) -> str:
    outcome = result.step(step)
    if outcome is None:
        return "n/a"
    sent = fmt_count(outcome.result.get("sent"))
    return sent if outcome.status == "ran" else f"{sent} (earlier run)"


def layers_table(result: RunResult) -> Table:
    s = result.settings
    table = _table(
        "Rows per layer", "layer", "historical (daily bars)", "realtime (ticks / windows)"
    )
    table.add_row(
        "Kafka produced (this run)",
        _produced(result, steps.FETCH_HISTORICAL),
        _produced(result, steps.COLLECT_TICKS),
    )
    counts = result.counts
    if counts is not None:
        table.add_row(
            "Kafka topic messages",
            fmt_count(counts.kafka.get(s.kafka.batch_topic)),
            fmt_count(counts.kafka.get(s.kafka.realtime_topic)),
        )
        for label, layer in (
            ("raw rows", counts.raw),
            ("processed rows", counts.processed),
            ("quarantined rows", counts.quarantined),
        ):
            table.add_row(label, fmt_count(layer["historical"]), fmt_count(layer["realtime"]))
        wh = counts.warehouse
        table.add_row(
            "warehouse rows",
            fmt_count(wh.get(s.snowflake.batch_table)),
            fmt_count(wh.get(s.snowflake.stream_table)),
        )
    if result.frames is not None:
        f = result.frames
        table.add_row("mart_stock_performance rows", fmt_count(len(f.performance)), "")
        table.add_row("mart_daily_summary rows", fmt_count(len(f.daily_summary)), "")
        table.add_row("mart_realtime_signals rows", "", fmt_count(len(f.realtime_signals)))
    return table


def movers_table(performance: pd.DataFrame) -> Table:
    movers = top_movers(performance)
    day = pd.Timestamp(movers["trade_date"].max()).date() if len(movers) else "n/a"
    table = _table(f"Top movers {day}", "symbol", "close", "return", "RSI 14", "trend")
    for _, row in movers.iterrows():
        ret = row["daily_return_pct"]
        colour = "green" if ret > 0 else "red" if ret < 0 else "white"
        table.add_row(
            row["symbol"],
            fmt_price(row["close_price"]),
            f"[{colour}]{fmt_pct(ret)}[/{colour}]",
            fmt_pct(row["rsi_14"], signed=False).rstrip("%"),
            str(row["ma_trend"]),
        )
    return table


def _value_counts(series: pd.Series) -> str:
    counts = series.value_counts().sort_index()
    return ", ".join(f"{label} {n}" for label, n in counts.items()) or "none"


def signals_table(result: RunResult) -> Table:
    from market_pipeline.digest import latest_session

    table = _table("Signals", "signal", "count")
    if result.frames is None:
        return table
    day = last_day(result.frames.performance)
    for column in ("ma_cross_signal", "ma_trend", "rsi_signal"):
        if column in day:
            table.add_row(f"{column} (last day)", _value_counts(day[column]))
    session = latest_session(result.frames.realtime_signals)
    if len(session):
        table.add_row("momentum (last session)", _value_counts(session["momentum_signal"]))
        table.add_row(
            "volatility regime (last session)", _value_counts(session["volatility_regime"])
        )
        table.add_row(
            "volume spikes (last session)",
            fmt_count(session["is_volume_spike"].fillna(False).astype(bool).sum()),
        )
        table.add_row(
            "multi-signal alerts (last session)",
            fmt_count(session["is_multi_signal_alert"].fillna(False).astype(bool).sum()),
        )
    return table


def _sum(result: RunResult, step: str, key: str) -> int:
    outcome = result.step(step)
    return int(outcome.result.get(key, 0)) if outcome else 0


def quality_table(result: RunResult) -> Table:
    table = _table("Data quality", "check", "result")
    dbt = result.dbt
    if dbt is not None:
        failed = dbt.count("test", *FAILED_DBT)
        passed = dbt.count("test", "pass")
        colour = "red" if failed else "green"
        table.add_row("dbt tests passed", f"[green]{passed}[/green]")
        table.add_row("dbt tests warned", fmt_count(dbt.count("test", "warn")))
        table.add_row("dbt tests failed/errored", f"[{colour}]{failed}[/{colour}]")
        stale = dbt.count("source", *FAILED_DBT)
        table.add_row(
            "sources past their freshness limit", f"[{'red' if stale else 'green'}]{stale}[/]"
        )
        table.add_row(
            "dbt models / seeds built",
            f"{dbt.count('model', 'success')} / {dbt.count('seed', 'success')}",
        )
    s, counts = result.settings, result.counts
    if counts is not None:
        table.add_row(
            f"DLQ messages ({s.kafka.dlq_topic})", fmt_count(counts.kafka.get(s.kafka.dlq_topic))
        )
        table.add_row("quarantined rows (historical / realtime)",
                      f"{fmt_count(counts.quarantined['historical'])} / {fmt_count(counts.quarantined['realtime'])}")  # fmt: skip
    dead = sum(
        _sum(result, step, "dead_lettered")
        for step in (steps.FETCH_HISTORICAL, steps.COLLECT_TICKS, steps.CONSUME_BATCH,
                     steps.ARCHIVE_TICKS)  # fmt: skip
    )
    table.add_row("dead-lettered by producers/consumers (these steps)", fmt_count(dead))
    loads = [o for o in map(result.step, (steps.LOAD_HISTORICAL, steps.LOAD_REALTIME)) if o]
    if loads:
        rejected = sum(len(o.result.get("files_rejected") or []) for o in loads)
        table.add_row("loader files rejected", fmt_count(rejected))
    if dbt is not None:
        for failure in dbt.failures[:10]:
            table.add_row("[red]failed[/red]", escape(failure))
    return table


def outputs_table(result: RunResult) -> Table:
    table = _table("Outputs", "file", "path")
    paths = result.report
    if paths is None:
        return table
    table.add_row("report", str(paths.index_html))
    table.add_row("digest", str(paths.digest))
    if paths.schema_context is not None:
        table.add_row("schema context", str(paths.schema_context))
    table.add_row("charts", f"{len(paths.charts)} PNG in {paths.breadth_chart.parent}")
    return table


def render_summary(result: RunResult) -> Group:
    """Every summary table, in reading order."""
    parts: list[Any] = [steps_table(result), layers_table(result)]
    if result.frames is not None:
        parts += [movers_table(result.frames.performance), signals_table(result)]
    parts += [quality_table(result), outputs_table(result)]
    return Group(*parts)


def print_summary(result: RunResult, console: Console) -> None:
    console.print()
    console.print(render_summary(result))
