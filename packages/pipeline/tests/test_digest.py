"""render_digest on small literal frames: every number traced back to the frame."""

from __future__ import annotations

import mart_samples
import pandas as pd

from market_pipeline.digest import fmt_pct, render_digest


def _last(daily: pd.DataFrame) -> pd.Series:
    return daily.sort_values("trade_date").iloc[-1]


def test_names_the_last_days_movers_with_formatted_returns() -> None:
    daily = mart_samples.daily_summary()
    last = _last(daily)
    text = render_digest(daily, mart_samples.realtime_signals())
    gainer = f"Top gainer: {last['top_gainer_symbol']} {last['top_gainer_return_pct']:+.2f}%"
    loser = f"Top loser: {last['top_loser_symbol']} {last['top_loser_return_pct']:+.2f}%"
    assert gainer in text, f"digest should name the last day's top gainer as {gainer!r}"
    assert loser in text, f"digest should name the last day's top loser as {loser!r}"
    assert f"Session {last['trade_date']:%Y-%m-%d}" in text


def test_breadth_counts_match_the_last_row() -> None:
    daily = mart_samples.daily_summary()
    last = _last(daily)
    text = render_digest(daily, mart_samples.realtime_signals())
    assert f"{last['advancers']} advancers" in text
    assert f"{last['decliners']} decliner" in text
    assert f"{last['pct_advancing']:.2f}% advancing" in text
    assert f"advance/decline ratio {last['advance_decline_ratio']:.2f}" in text
    assert f"Total volume: {last['total_volume']:,} shares" in text


def test_row_order_does_not_matter() -> None:
    daily, signals = mart_samples.daily_summary(), mart_samples.realtime_signals()
    shuffled = render_digest(
        daily.sample(frac=1, random_state=3), signals.sample(frac=1, random_state=5)
    )
    assert shuffled == render_digest(daily, signals)


def test_realtime_section_counts_the_latest_session_only() -> None:
    signals = mart_samples.realtime_signals()
    starts = pd.to_datetime(signals["window_start_at"])
    session = signals[starts.dt.date == starts.max().date()]
    text = render_digest(mart_samples.daily_summary(), signals)
    momentum = session["momentum_signal"].value_counts()
    assert f"{momentum['BULLISH']} BULLISH, {momentum['BEARISH']} BEARISH" in text
    assert f"Volume spikes: {int(session['is_volume_spike'].sum())}." in text
    assert f"Multi-signal alerts: {int(session['is_multi_signal_alert'].sum())}." in text
    assert f"{len(session)} windows" in text
    latest = session[pd.to_datetime(session["window_start_at"]) == starts.max()]
    for line in latest["signal_summary"]:
        assert f"  {line}\n" in text, "every symbol's latest window summary is listed"
    older = signals[starts.dt.date != starts.max().date()]["signal_summary"]
    assert not any(line in text for line in older), "windows of earlier sessions are left out"


def test_trend_lists_the_last_sessions_in_date_order() -> None:
    daily = mart_samples.daily_summary()
    text = render_digest(daily, mart_samples.realtime_signals())
    positions = [text.index(f"  {d:%Y-%m-%d}  adv") for d in daily["trade_date"]]
    assert positions == sorted(positions)


def test_empty_marts_give_an_explanatory_digest() -> None:
    daily = mart_samples.daily_summary().iloc[0:0]
    signals = mart_samples.realtime_signals().iloc[0:0]
    text = render_digest(daily, signals)
    assert "batch marts are empty" in text
    assert "streaming marts are empty" in text


def test_missing_values_print_as_na() -> None:
    daily = mart_samples.daily_summary()
    daily.loc[daily.index[-1], "advance_decline_ratio"] = None
    assert "advance/decline ratio n/a" in render_digest(daily, mart_samples.realtime_signals())
    assert fmt_pct(float("nan")) == "n/a"
