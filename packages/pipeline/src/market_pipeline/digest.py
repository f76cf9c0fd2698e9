"""The daily market digest: plain text from two marts, ready to hand to an LLM.

``render_digest`` is pure and deterministic: the same frames always give the same text
(rows are re-sorted by their grain, no clock, no randomness), so a digest can be diffed,
cached and used as a test oracle. Numbers are formatted one way everywhere: returns and
other percentages with an explicit sign and two decimals (``+1.23%``), prices with two
decimals, counts as integers with thousands separators.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

TREND_SESSIONS = 5
MAX_ALERT_LINES = 10
MOMENTUM_LABELS = ("BULLISH", "BEARISH", "NEUTRAL", "UNKNOWN")
VOLATILITY_LABELS = ("LOW", "NORMAL", "ELEVATED", "HIGH", "UNKNOWN")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def fmt_pct(value: Any, *, signed: bool = True) -> str:
    """``+1.23%`` (or ``1.23%`` unsigned); ``n/a`` for missing values."""
    if _missing(value):
        return "n/a"
    return f"{float(value):+.2f}%" if signed else f"{float(value):.2f}%"


def fmt_count(value: Any) -> str:
    return "n/a" if _missing(value) else f"{int(value):,}"


def fmt_ratio(value: Any) -> str:
    return "n/a" if _missing(value) else f"{float(value):.2f}"


def fmt_price(value: Any) -> str:
    return "n/a" if _missing(value) else f"{float(value):,.2f}"


def fmt_day(value: Any) -> str:
    return "n/a" if _missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def _plural(count: Any, singular: str, plural: str | None = None) -> str:
    word = singular if not _missing(count) and int(count) == 1 else (plural or singular + "s")
    return f"{fmt_count(count)} {word}"


def _mover(symbol: Any, return_pct: Any) -> str:
    return "n/a" if _missing(symbol) else f"{symbol} {fmt_pct(return_pct)}"


def _daily_section(daily: pd.DataFrame) -> list[str]:
    if daily.empty:
        return ["No daily summary rows: the batch marts are empty."]
    daily = daily.sort_values("trade_date").reset_index(drop=True)
    last = daily.iloc[-1]
    lines = [
        f"Session {fmt_day(last['trade_date'])}",
        f"Universe: {_plural(last['symbols_count'], 'symbol')} "
        f"({fmt_count(last['symbols_with_return'])} with a daily return).",
        f"Breadth: {_plural(last['advancers'], 'advancer')}, "
        f"{_plural(last['decliners'], 'decliner')}, {fmt_count(last['unchanged'])} unchanged "
        f"({fmt_pct(last['pct_advancing'], signed=False)} advancing, "
        f"advance/decline ratio {fmt_ratio(last['advance_decline_ratio'])}).",
        f"Average return: {fmt_pct(last['avg_return_pct'])}. "
        f"Total volume: {fmt_count(last['total_volume'])} shares.",
        f"Top gainer: {_mover(last['top_gainer_symbol'], last['top_gainer_return_pct'])}. "
        f"Top loser: {_mover(last['top_loser_symbol'], last['top_loser_return_pct'])}.",
        f"Technical signals: {_plural(last['golden_cross_count'], 'golden cross', 'golden crosses')}, "
        f"{_plural(last['death_cross_count'], 'death cross', 'death crosses')}, "
        f"{fmt_count(last['overbought_count'])} overbought (RSI >= 70), "
        f"{fmt_count(last['oversold_count'])} oversold (RSI <= 30).",
        f"Average annualised volatility: {fmt_pct(last['avg_annualised_volatility_pct'], signed=False)}.",
    ]
    recent = daily.tail(TREND_SESSIONS)
    lines += ["", f"Last {len(recent)} sessions:"]
    for _, row in recent.iterrows():
        lines.append(
            f"  {fmt_day(row['trade_date'])}  adv {fmt_count(row['advancers'])} / "
            f"dec {fmt_count(row['decliners'])}  avg {fmt_pct(row['avg_return_pct'])}  "
            f"best {_mover(row['top_gainer_symbol'], row['top_gainer_return_pct'])}  "
            f"worst {_mover(row['top_loser_symbol'], row['top_loser_return_pct'])}"
        )
    return lines


def _label_counts(values: pd.Series, labels: Iterable[str]) -> str:
    counts = values.value_counts()
    known = [f"{int(counts.get(label, 0))} {label}" for label in labels]
    other = int(counts[[k for k in counts.index if k not in set(labels)]].sum())
    return ", ".join(known + ([f"{other} other"] if other else []))


def latest_session(signals: pd.DataFrame) -> pd.DataFrame:
    """Windows of the most recent trading day (UTC date of the last window), grain-sorted."""
    if signals.empty:
        return signals
    starts = pd.to_datetime(signals["window_start_at"])
    day = starts.max().normalize()
    session = signals[starts.dt.normalize() == day]
    return session.sort_values(["window_start_at", "symbol"]).reset_index(drop=True)


def _signals_section(signals: pd.DataFrame) -> list[str]:
    if signals.empty:
        return ["No realtime windows: the streaming marts are empty."]
    session = latest_session(signals)
    starts = pd.to_datetime(session["window_start_at"])
    last_start = starts.max()
    spikes = int(session["is_volume_spike"].fillna(False).astype(bool).sum())
    alerts = session[session["is_multi_signal_alert"].fillna(False).astype(bool)]
    lines = [
        f"Session {fmt_day(last_start)}: {_plural(len(session), 'window')} of 15 minutes "
        f"across {_plural(session['symbol'].nunique(), 'symbol')}, "
        f"{starts.min():%H:%M}-{last_start:%H:%M} UTC (window starts).",
        f"Momentum: {_label_counts(session['momentum_signal'], MOMENTUM_LABELS)}.",
        f"Volatility regime: {_label_counts(session['volatility_regime'], VOLATILITY_LABELS)}.",
        f"Volume spikes: {spikes}. Multi-signal alerts: {len(alerts)}.",
        "",
        f"Latest window ({last_start:%H:%M} UTC):",
    ]
    latest = session[starts == last_start].sort_values("symbol")
    lines += [f"  {summary}" for summary in latest["signal_summary"]]
    if len(alerts):
        shown = alerts.tail(MAX_ALERT_LINES)
        lines += ["", f"Alerts (latest {len(shown)} of {len(alerts)}):"]
        lines += [f"  {summary}" for summary in shown["signal_summary"]]
    return lines


def render_digest(daily_summary: pd.DataFrame, signals: pd.DataFrame) -> str:
    """The digest text from ``mart_daily_summary`` and ``mart_realtime_signals`` frames.

    Uses the last trading day of the daily summary (plus a short trend) and the most recent
    session of realtime windows. Column names are the marts' (lower-case).
    """
    daily = daily_summary.rename(columns=str.lower)
    realtime = signals.rename(columns=str.lower)
    title = "DAILY MARKET DIGEST"
    lines = [title, "=" * len(title)]
    for heading, body in (
        ("Market breadth and movers (mart_daily_summary)", _daily_section(daily)),
        ("Realtime signals (mart_realtime_signals)", _signals_section(realtime)),
    ):
        lines += ["", heading, "-" * len(heading), *body]
    return "\n".join(lines) + "\n"
