"""The report directory: ``index.html``, PNG charts, ``digest.txt``, ``schema_context.json``.

:func:`build_report` takes either a warehouse connection (it reads the marts itself) or
already-read :class:`~market_pipeline.marts.MartFrames`, so the CLI, an Airflow task and
tests share one code path. Output file names are stable; a rebuild overwrites them and
removes symbol charts of symbols no longer in the marts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, select_autoescape

from market_pipeline import charts
from market_pipeline.digest import fmt_pct, fmt_price, latest_session, render_digest
from market_pipeline.marts import Connection, MartFrames, read_marts

CHARTS_DIR = "charts"
INDEX = "index.html"
DIGEST = "digest.txt"
SCHEMA_CONTEXT = "schema_context.json"
BREADTH_PNG = "market_breadth.png"
SIGNALS_PNG = "realtime_signals.png"
TOP_MOVERS = 5


@dataclass(frozen=True)
class ReportPaths:
    """Every file one report build wrote."""

    out_dir: Path
    index_html: Path
    digest: Path
    breadth_chart: Path
    signals_chart: Path
    symbol_charts: dict[str, Path] = field(default_factory=dict)
    schema_context: Path | None = None

    @property
    def charts(self) -> list[Path]:
        return [self.breadth_chart, self.signals_chart, *self.symbol_charts.values()]


def last_day(performance: pd.DataFrame) -> pd.DataFrame:
    """Rows of the most recent trade_date in ``mart_stock_performance``."""
    if performance.empty:
        return performance
    dates = pd.to_datetime(performance["trade_date"])
    return performance[dates == dates.max()]


def top_movers(performance: pd.DataFrame, n: int = TOP_MOVERS) -> pd.DataFrame:
    """Best ``n`` then worst ``n`` daily returns of the last day (ties: symbol A-Z)."""
    day = last_day(performance).dropna(subset=["daily_return_pct"])
    ordered = day.sort_values(["daily_return_pct", "symbol"], ascending=[False, True])
    best = ordered.head(n)
    worst = ordered.drop(best.index).sort_values(["daily_return_pct", "symbol"]).head(n)
    return pd.concat([best, worst]).reset_index(drop=True)


def latest_signals(signals: pd.DataFrame) -> pd.DataFrame:
    """Each symbol's last window of the latest session, symbol A-Z."""
    session = latest_session(signals)
    if session.empty:
        return session
    return session.groupby("symbol", sort=True).tail(1).sort_values("symbol").reset_index(drop=True)


def _html_rows(frame: pd.DataFrame, columns: Mapping[str, Any]) -> list[list[str]]:
    return [[str(fmt(row[col])) for col, fmt in columns.items()] for _, row in frame.iterrows()]


def _flag(value: Any) -> str:
    return "yes" if bool(value) and not pd.isna(value) else ""


TEMPLATE = """{% macro table(header, rows) -%}
<table><thead><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{%- endmacro %}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#1f2937}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.25rem .6rem;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}pre{background:#f9fafb;padding:1rem;overflow-x:auto}
img{max-width:100%;border:1px solid #e5e7eb;margin:.5rem 0}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
</style></head><body>
<h1>{{ title }}</h1>
<p>Generated {{ generated_at }} from {{ symbols|length }} symbols,
{{ n_days }} trading days and {{ n_windows }} realtime windows.</p>
<h2>Daily digest</h2>
<pre>{{ digest }}</pre>
<h2>Top movers ({{ last_day }})</h2>
{{ table(movers_header, movers) }}
<h2>Market breadth</h2>
<img src="{{ breadth }}" alt="Market breadth over time">
<h2>Latest realtime signals</h2>
{{ table(signals_header, signals) }}
<img src="{{ heatmap }}" alt="Realtime signals heatmap">
<h2>Symbols</h2>
<div class="grid">
{% for symbol, src in symbol_charts %}<figure><img src="{{ src }}" alt="{{ symbol }} close, SMA 20/50 and RSI 14"><figcaption>{{ symbol }}</figcaption></figure>
{% endfor %}</div>
{% if schema_context %}<p>Column descriptions for LLM context: <a href="{{ schema_context }}">{{ schema_context }}</a>.</p>{% endif %}
</body></html>
"""


def render_html(frames: MartFrames, digest: str, paths: ReportPaths, *, generated_at: str) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    movers = top_movers(frames.performance)
    latest = latest_signals(frames.realtime_signals)

    def rel(path: Path) -> str:
        return path.relative_to(paths.out_dir).as_posix()

    return env.from_string(TEMPLATE).render(
        title="Stock market pipeline report",
        generated_at=generated_at,
        symbols=sorted(frames.performance["symbol"].unique()) if len(frames.performance) else [],
        n_days=frames.daily_summary["trade_date"].nunique() if len(frames.daily_summary) else 0,
        n_windows=len(frames.realtime_signals),
        digest=digest,
        last_day=str(pd.Timestamp(movers["trade_date"].max()).date()) if len(movers) else "n/a",
        movers_header=["Symbol", "Close", "Return", "RSI 14", "Trend"],
        movers=_html_rows(
            movers,
            {
                "symbol": str,
                "close_price": fmt_price,
                "daily_return_pct": fmt_pct,
                "rsi_14": lambda v: fmt_pct(v, signed=False).rstrip("%"),
                "ma_trend": str,
            },
        ),  # fmt: skip
        signals_header=[
            "Symbol",
            "Window (UTC)",
            "Close",
            "Change",
            "Momentum",
            "Volatility",
            "Volume spike",
            "Alert",
        ],  # fmt: skip
        signals=_html_rows(
            latest,
            {
                "symbol": str,
                "window_start_at": lambda v: f"{pd.Timestamp(v):%Y-%m-%d %H:%M}",
                "window_close_price": fmt_price,
                "price_delta_pct": fmt_pct,
                "momentum_signal": str,
                "volatility_regime": str,
                "is_volume_spike": _flag,
                "is_multi_signal_alert": _flag,
            },
        ),  # fmt: skip
        breadth=rel(paths.breadth_chart),
        heatmap=rel(paths.signals_chart),
        symbol_charts=[(s, rel(p)) for s, p in sorted(paths.symbol_charts.items())],
        schema_context=rel(paths.schema_context) if paths.schema_context else None,
    )


def build_report(
    source: MartFrames | Connection,
    out_dir: Path | str,
    *,
    database: str = "STOCKMARKETBATCH",
    schema_context: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> ReportPaths:
    """Write the report for ``source`` (frames, or a connection to read the marts from).

    ``database`` is where dbt built the marts (used only with a connection);
    ``schema_context`` (market_dbt's docs export) is written as ``schema_context.json``.
    """
    frames = source if isinstance(source, MartFrames) else read_marts(source, database)
    out = Path(out_dir)
    chart_dir = out / CHARTS_DIR
    chart_dir.mkdir(parents=True, exist_ok=True)

    symbol_charts: dict[str, Path] = {}
    for symbol, bars in frames.performance.groupby("symbol", sort=True):
        path = chart_dir / f"{charts.chart_stem(str(symbol))}.png"
        symbol_charts[str(symbol)] = charts.price_chart(bars, str(symbol), path)
    for stale in chart_dir.glob("price_*.png"):
        if stale not in symbol_charts.values():
            stale.unlink()

    context_path = None
    if schema_context is not None:
        context_path = out / SCHEMA_CONTEXT
        context_path.write_text(json.dumps(schema_context, indent=2, sort_keys=True) + "\n")

    digest = render_digest(frames.daily_summary, frames.realtime_signals)
    paths = ReportPaths(
        out_dir=out,
        index_html=out / INDEX,
        digest=out / DIGEST,
        breadth_chart=charts.breadth_chart(frames.daily_summary, chart_dir / BREADTH_PNG),
        signals_chart=charts.signals_heatmap(
            latest_session(frames.realtime_signals), chart_dir / SIGNALS_PNG
        ),
        symbol_charts=symbol_charts,
        schema_context=context_path,
    )
    paths.digest.write_text(digest)
    generated_at = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    paths.index_html.write_text(render_html(frames, digest, paths, generated_at=generated_at))
    return paths
