"""Small literal mart frames for unit tests (columns as dbt builds them, lower-case)."""

from __future__ import annotations

import pandas as pd


def daily_summary() -> pd.DataFrame:
    """Three trading days; the last one (2024-03-06) has a clear top gainer and loser."""
    return pd.DataFrame(
        {
            "trade_date": pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-06"]),
            "symbols_count": [3, 3, 3],
            "symbols_with_return": [2, 3, 3],
            "advancers": [1, 1, 2],
            "decliners": [1, 2, 1],
            "unchanged": [0, 0, 0],
            "avg_return_pct": [0.15, -0.4321, 1.234],
            "top_gainer_symbol": ["AAA", "CCC", "BBB"],
            "top_gainer_return_pct": [1.1, 0.25, 3.4567],
            "top_loser_symbol": ["BBB", "AAA", "CCC"],
            "top_loser_return_pct": [-0.8, -1.05, -2.5],
            "total_volume": [3_000_000, 3_100_000, 4_250_000],
            "avg_annualised_volatility_pct": [21.5, 22.0, 24.75],
            "golden_cross_count": [0, 0, 1],
            "death_cross_count": [0, 1, 0],
            "overbought_count": [0, 1, 2],
            "oversold_count": [1, 0, 0],
            "advance_decline_ratio": [1.0, 0.5, 2.0],
            "pct_advancing": [50.0, 33.333, 66.667],
        }
    )


def realtime_signals() -> pd.DataFrame:
    """Two symbols x three 15-minute windows on 2024-03-06 plus one older window."""
    starts = pd.to_datetime(
        ["2024-03-05 20:45", "2024-03-06 14:30", "2024-03-06 14:30", "2024-03-06 14:45",
         "2024-03-06 14:45", "2024-03-06 15:00", "2024-03-06 15:00"]  # fmt: skip
    )
    symbols = ["AAA", "AAA", "BBB", "AAA", "BBB", "AAA", "BBB"]
    momentum = ["NEUTRAL", "UNKNOWN", "UNKNOWN", "BULLISH", "BEARISH", "BULLISH", "NEUTRAL"]
    regime = ["LOW", "UNKNOWN", "LOW", "NORMAL", "HIGH", "ELEVATED", "LOW"]
    spike = [False, False, False, True, False, True, False]
    alert = [False, False, False, False, False, True, False]
    close = [100.0, 101.0, 50.0, 101.5, 49.5, 102.25, 49.75]
    delta = [None, 0.1, -0.2, 0.495, -1.0, 0.739, 0.505]
    summaries = [
        f"{s} {t:%Y-%m-%d %H:%M} UTC | close {c:.2f} | momentum {m} | volatility {r}"
        + (" | volume spike" if v else "")
        + (" | ALERT" if a else "")
        for s, t, c, m, r, v, a in zip(
            symbols, starts, close, momentum, regime, spike, alert, strict=True
        )
    ]
    return pd.DataFrame(
        {
            "symbol": symbols,
            "window_start_at": starts,
            "window_end_at": starts + pd.Timedelta(minutes=15),
            "sector": ["Tech" if s == "AAA" else "Energy" for s in symbols],
            "window_close_price": close,
            "price_delta_pct": delta,
            "momentum_signal": momentum,
            "volatility_regime": regime,
            "is_volume_spike": spike,
            "is_multi_signal_alert": alert,
            "alert_count": [int(v) + int(a) for v, a in zip(spike, alert, strict=True)],
            "signal_summary": summaries,
        }
    )


def stock_performance(days: int = 60) -> pd.DataFrame:
    """Three symbols with ``days`` bars each: linear trends, SMA/RSI columns filled in."""
    dates = pd.bdate_range("2024-01-01", periods=days)
    frames = []
    for offset, (symbol, slope) in enumerate((("AAA", 0.5), ("BBB", -0.3), ("CCC", 0.1))):
        close = pd.Series([100.0 + 10 * offset + slope * i for i in range(days)])
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "trade_date": dates,
                    "close_price": close,
                    "daily_return_pct": 100 * close.pct_change(),
                    "sma_20d": close.rolling(20).mean(),
                    "sma_50d": close.rolling(50).mean(),
                    "rsi_14": [None] * 14 + [50 + 10 * offset] * (days - 14),
                    "ma_trend": "BULLISH" if slope > 0 else "BEARISH",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
