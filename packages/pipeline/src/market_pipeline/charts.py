"""PNG charts from the mart frames (matplotlib's object API on the Agg canvas).

``Figure`` objects are created directly, never through ``pyplot``: no global figure
registry, no GUI backend selection, safe in threads and in Airflow workers. PNGs carry no
software/date metadata, so the same frames give byte-identical files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

DPI = 100
PNG_METADATA = {"Software": None}
RSI_OVERBOUGHT, RSI_OVERSOLD = 70, 30
UP, DOWN, NEUTRAL = "#2e7d32", "#c62828", "#616161"


def chart_stem(symbol: str) -> str:
    """File-name-safe stem for a symbol chart (``BRK.B`` → ``price_BRK_B``)."""
    return "price_" + re.sub(r"[^A-Za-z0-9]+", "_", symbol)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    return path


def _empty(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color=NEUTRAL)


def price_chart(bars: pd.DataFrame, symbol: str, path: Path) -> Path:
    """Close with SMA 20/50 above an RSI-14 panel (70/30 bands) for one symbol."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    rows = bars.sort_values("trade_date")
    if rows.empty:
        _empty(fig, f"{symbol}: no daily bars")
        return _save(fig, path)
    price_ax, rsi_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    dates = pd.to_datetime(rows["trade_date"])
    price_ax.plot(dates, rows["close_price"], color="#1f2937", linewidth=1.2, label="Close")
    price_ax.plot(dates, rows["sma_20d"], color="#2563eb", linewidth=1, label="SMA 20")
    price_ax.plot(dates, rows["sma_50d"], color="#f59e0b", linewidth=1, label="SMA 50")
    price_ax.set_title(f"{symbol}: close with 20/50-day SMA")
    price_ax.set_ylabel("USD")
    price_ax.legend(loc="upper left", frameon=False)
    price_ax.grid(alpha=0.3)
    rsi_ax.plot(dates, rows["rsi_14"], color="#7c3aed", linewidth=1)
    rsi_ax.axhline(RSI_OVERBOUGHT, color=DOWN, linestyle="--", linewidth=0.8)
    rsi_ax.axhline(RSI_OVERSOLD, color=UP, linestyle="--", linewidth=0.8)
    rsi_ax.set_ylim(0, 100)
    rsi_ax.set_ylabel("RSI 14")
    rsi_ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, path)


def breadth_chart(daily: pd.DataFrame, path: Path) -> Path:
    """Advancers vs decliners per day above the cumulative advance-decline line."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    rows = daily.sort_values("trade_date")
    if rows.empty:
        _empty(fig, "no daily summary rows")
        return _save(fig, path)
    bars_ax, line_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1])
    dates = pd.to_datetime(rows["trade_date"])
    advancers = rows["advancers"].astype(float)
    decliners = rows["decliners"].astype(float)
    bars_ax.bar(dates, advancers, color=UP, width=1.0, label="Advancers")
    bars_ax.bar(dates, -decliners, color=DOWN, width=1.0, label="Decliners")
    bars_ax.axhline(0, color=NEUTRAL, linewidth=0.6)
    bars_ax.set_title("Market breadth: advancers (up) and decliners (down) per day")
    bars_ax.set_ylabel("symbols")
    bars_ax.legend(loc="upper left", frameon=False)
    line_ax.plot(dates, (advancers - decliners).cumsum(), color="#1f2937", linewidth=1.2)
    line_ax.set_title("Cumulative advance-decline line")
    line_ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, path)


def signals_heatmap(session: pd.DataFrame, path: Path) -> Path:
    """Symbol x 15-minute window heatmap of price_delta_pct; ``!`` marks multi-signal alerts."""
    n_symbols = session["symbol"].nunique() if "symbol" in session else 0
    fig = Figure(figsize=(12, 1.5 + 0.45 * max(n_symbols, 1)), layout="constrained")
    if not n_symbols:
        _empty(fig, "no realtime windows")
        return _save(fig, path)
    starts = pd.to_datetime(session["window_start_at"])
    frame = session.assign(window=starts.dt.strftime("%H:%M"))
    values = frame.pivot_table(
        index="symbol", columns="window", values="price_delta_pct", aggfunc="first", dropna=False
    ).sort_index()
    alerts = frame.pivot_table(
        index="symbol", columns="window", values="is_multi_signal_alert", aggfunc="max"
    ).reindex(index=values.index, columns=values.columns)
    ax = fig.add_subplot()
    data = values.to_numpy(dtype=float)
    bound = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    norm = TwoSlopeNorm(vmin=-(bound or 1.0), vcenter=0.0, vmax=bound or 1.0)
    image = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="RdYlGn", norm=norm)
    fig.colorbar(image, ax=ax, label="change vs previous window, %")
    ax.set_yticks(range(len(values.index)), labels=list(values.index))
    step = max(1, len(values.columns) // 16)
    ticks = list(range(0, len(values.columns), step))
    ax.set_xticks(ticks, labels=[values.columns[i] for i in ticks], rotation=45)
    for (row, col), flagged in np.ndenumerate(alerts.fillna(False).to_numpy(dtype=bool)):
        if flagged:
            ax.text(col, row, "!", ha="center", va="center", fontsize=9, fontweight="bold")
    ax.set_title(f"Realtime signals {starts.max():%Y-%m-%d} (UTC window start; ! = alert)")
    return _save(fig, path)
