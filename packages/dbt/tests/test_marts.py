"""Every mart column equals an independent pandas computation on the same source rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import Fakesnow, SourceData

from market_dbt.runner import DbtRunner

pytestmark = pytest.mark.integration

ANALYTICS = "STOCKMARKETBATCH.ANALYTICS"
# dbt_project.yml vars
MOMENTUM_PCT, VOL_LOW, VOL_NORMAL, VOL_ELEVATED = 0.05, 0.10, 0.30, 0.60
SPIKE_MULTIPLIER, BASELINE_WINDOWS = 2.0, 4
PRICE_TOLERANCE = 1e-6


def tolerant_sign(diff: pd.Series) -> pd.Series:
    """-1 / 0 / 1 with |diff| <= PRICE_TOLERANCE counted as 0; NaN stays NaN."""
    return np.sign(diff).where(diff.abs() > PRICE_TOLERANCE, 0.0).where(diff.notna())


def wilder_rsi(close: pd.Series, period: int = 14) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Textbook recursive Wilder averages: seed = mean of the first 14 changes."""
    change = close.diff().to_numpy()
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_gain, avg_loss = np.full(len(close), np.nan), np.full(len(close), np.nan)
    for i in range(period, len(close)):
        if i == period:
            avg_gain[i], avg_loss[i] = gains[1 : i + 1].mean(), losses[1 : i + 1].mean()
        else:
            avg_gain[i] = (avg_gain[i - 1] * (period - 1) + gains[i]) / period
            avg_loss[i] = (avg_loss[i - 1] * (period - 1) + losses[i]) / period
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = np.where(
            avg_loss == 0,
            np.where(avg_gain == 0, 50.0, 100.0),
            100 - 100 / (1 + avg_gain / avg_loss),
        )
    rsi[np.isnan(avg_gain)] = np.nan
    return (
        pd.Series(avg_gain, close.index),
        pd.Series(avg_loss, close.index),
        pd.Series(rsi, close.index),
    )


def label(conditions: list[tuple[pd.Series, str]], default: str) -> pd.Series:
    return pd.Series(
        np.select(
            [c.fillna(False).to_numpy(bool) for c, _ in conditions],
            [v for _, v in conditions],
            default,
        ),
        index=conditions[0][0].index,
    )


def expected_performance(daily: pd.DataFrame, tickers: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for _, bars in daily.sort_values(["SYMBOL", "DATE"]).groupby("SYMBOL"):
        out = pd.DataFrame(
            {
                "symbol": bars["SYMBOL"], "trade_date": bars["DATE"],
                "open_price": bars["DAILY_OPEN"], "high_price": bars["DAILY_HIGH"],
                "low_price": bars["DAILY_LOW"], "close_price": bars["DAILY_CLOSE"],
                "volume": bars["DAILY_VOLUME"].astype(float),
                "loaded_at": bars["BATCH_LOAD_TIMESTAMP"],
            }
        ).reset_index(drop=True)  # fmt: skip
        close = out["close_price"]
        out["trading_day_number"] = np.arange(1, len(out) + 1)
        out["prev_close_price"] = close.shift()
        out["price_change"] = close - out["prev_close_price"]
        out["daily_return_pct"] = 100 * (close / out["prev_close_price"] - 1)
        out["overnight_gap_pct"] = 100 * (out["open_price"] / out["prev_close_price"] - 1)
        out["intraday_range_pct"] = 100 * (out["high_price"] - out["low_price"]) / out["low_price"]
        for n in (5, 10, 20, 50):
            out[f"sma_{n}d"] = close.rolling(n, min_periods=n).mean()
        out["avg_volume_20d"] = out["volume"].rolling(20, min_periods=20).mean()
        out["volume_vs_avg_20d"] = out["volume"] / out["avg_volume_20d"]
        out["volatility_20d_pct"] = out["daily_return_pct"].rolling(20, min_periods=20).std(ddof=1)
        out["annualised_volatility_pct"] = out["volatility_20d_pct"] * math.sqrt(252)
        _, _, out["rsi_14"] = wilder_rsi(close)
        out["high_52w"] = out["high_price"].rolling(252, min_periods=252).max()
        out["low_52w"] = out["low_price"].rolling(252, min_periods=252).min()
        out["pct_of_52w_range"] = (
            100 * (close - out["low_52w"]) / (out["high_52w"] - out["low_52w"])
        )
        sign = tolerant_sign(out["sma_20d"] - out["sma_50d"])
        prev_sign = sign.shift()
        out["ma_cross_signal"] = label(
            [((sign == 1) & (prev_sign <= 0), "GOLDEN_CROSS"),
             ((sign == -1) & (prev_sign >= 0), "DEATH_CROSS")], "NONE",
        )  # fmt: skip
        out["ma_trend"] = label(
            [(sign.isna(), "INSUFFICIENT_DATA"), (sign == 1, "BULLISH"), (sign == -1, "BEARISH")],
            "NEUTRAL",
        )
        for n in (20, 50):
            sma_sign = tolerant_sign(close - out[f"sma_{n}d"])
            out[f"price_vs_sma_{n}d"] = label(
                [(sma_sign.isna(), "INSUFFICIENT_DATA"), (sma_sign == 1, "ABOVE"),
                 (sma_sign == -1, "BELOW")], "AT",
            )  # fmt: skip
        out["is_high_volume_day"] = (out["volume_vs_avg_20d"] >= 2).fillna(False)
        rsi = out["rsi_14"]
        out["rsi_signal"] = label(
            [(rsi.isna(), "INSUFFICIENT_DATA"), (rsi >= 70, "OVERBOUGHT"), (rsi <= 30, "OVERSOLD")],
            "NEUTRAL",
        )
        frames.append(out)
    perf = pd.concat(frames, ignore_index=True).merge(tickers, on="symbol", how="left")
    perf["sector"] = perf["sector"].fillna("Unknown")
    return perf


def expected_daily_summary(perf: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for trade_date, day in perf.groupby("trade_date"):
        ret = day["daily_return_pct"]
        with_return = day[ret.notna()]
        gainer = with_return.sort_values(["daily_return_pct", "symbol"], ascending=[False, True])
        loser = with_return.sort_values(["daily_return_pct", "symbol"], ascending=[True, True])
        advancers, decliners = int((ret > 0).sum()), int((ret < 0).sum())
        rows.append(
            {
                "trade_date": trade_date,
                "symbols_count": len(day),
                "symbols_with_return": len(with_return),
                "advancers": advancers,
                "decliners": decliners,
                "unchanged": int((ret == 0).sum()),
                "avg_return_pct": ret.mean(),
                "top_gainer_symbol": gainer["symbol"].iloc[0] if len(gainer) else None,
                "top_gainer_return_pct": (
                    gainer["daily_return_pct"].iloc[0] if len(gainer) else np.nan
                ),
                "top_loser_symbol": loser["symbol"].iloc[0] if len(loser) else None,
                "top_loser_return_pct": loser["daily_return_pct"].iloc[0] if len(loser) else np.nan,
                "total_volume": day["volume"].sum(),
                "avg_annualised_volatility_pct": day["annualised_volatility_pct"].mean(),
                "golden_cross_count": int((day["ma_cross_signal"] == "GOLDEN_CROSS").sum()),
                "death_cross_count": int((day["ma_cross_signal"] == "DEATH_CROSS").sum()),
                "overbought_count": int((day["rsi_signal"] == "OVERBOUGHT").sum()),
                "oversold_count": int((day["rsi_signal"] == "OVERSOLD").sum()),
                "advance_decline_ratio": advancers / decliners if decliners else np.nan,
                "pct_advancing": 100 * advancers / len(with_return) if len(with_return) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_realtime(realtime: pd.DataFrame, tickers: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for _, w in realtime.sort_values(["SYMBOL", "WINDOW_START"]).groupby("SYMBOL"):
        out = pd.DataFrame(
            {
                "symbol": w["SYMBOL"], "window_start_at": w["WINDOW_START"],
                "window_end_at": w["WINDOW_END"], "window_open_price": w["WINDOW_OPEN"],
                "window_high_price": w["WINDOW_HIGH"], "window_low_price": w["WINDOW_LOW"],
                "window_close_price": w["WINDOW_CLOSE"], "ma_15m": w["MA_15M"], "ma_1h": w["MA_1H"],
                "volatility_15m": w["VOLATILITY_15M"], "volume_15m": w["VOLUME_SUM_15M"].astype(float),
                "tick_count": w["TICK_COUNT"], "loaded_at": w["LOAD_TIMESTAMP"],
            }
        ).reset_index(drop=True)  # fmt: skip
        out["prev_window_close_price"] = out["window_close_price"].shift()
        out["price_delta"] = out["window_close_price"] - out["prev_window_close_price"]
        out["price_delta_pct"] = 100 * out["price_delta"] / out["prev_window_close_price"]
        out["ma_15m_delta"] = out["ma_15m"] - out["ma_15m"].shift()
        out["ma_spread"] = out["ma_15m"] - out["ma_1h"]
        out["ma_spread_pct"] = 100 * out["ma_spread"] / out["ma_1h"]
        out["volatility_15m_pct"] = 100 * out["volatility_15m"] / out["ma_15m"]
        out["baseline_volume_15m"] = (
            out["volume_15m"].shift().rolling(BASELINE_WINDOWS, min_periods=1).mean()
        )
        out["volume_vs_baseline"] = out["volume_15m"] / out["baseline_volume_15m"]
        frames.append(out)
    rt = pd.concat(frames, ignore_index=True)
    spread, vol = rt["ma_spread_pct"], rt["volatility_15m_pct"]
    rt["momentum_signal"] = label(
        [(spread.isna(), "UNKNOWN"), (spread >= MOMENTUM_PCT, "BULLISH"),
         (spread <= -MOMENTUM_PCT, "BEARISH")], "NEUTRAL",
    )  # fmt: skip
    rt["volatility_regime"] = label(
        [(vol.isna(), "UNKNOWN"), (vol < VOL_LOW, "LOW"), (vol < VOL_NORMAL, "NORMAL"),
         (vol < VOL_ELEVATED, "ELEVATED")], "HIGH",
    )  # fmt: skip
    rt["is_volume_spike"] = (
        rt["volume_15m"] > SPIKE_MULTIPLIER * rt["baseline_volume_15m"]
    ).fillna(False)
    rt["alert_count"] = (
        rt["momentum_signal"].isin(["BULLISH", "BEARISH"]).astype(int)
        + rt["volatility_regime"].isin(["ELEVATED", "HIGH"]).astype(int)
        + rt["is_volume_spike"].astype(int)
    )
    rt["is_multi_signal_alert"] = rt["alert_count"] >= 2
    rt = rt.merge(tickers[["symbol", "sector"]], on="symbol", how="left")
    rt["sector"] = rt["sector"].fillna("Unknown")
    rt["signal_summary"] = [
        f"{r.symbol} {r.window_start_at:%Y-%m-%d %H:%M} UTC | close {r.window_close_price:.2f}"
        f" | momentum {r.momentum_signal} | volatility {r.volatility_regime}"
        + (" | volume spike" if r.is_volume_spike else "")
        + (" | ALERT" if r.is_multi_signal_alert else "")
        for r in rt.itertuples()
    ]
    return rt


def assert_matches(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Same columns, same keys, numbers within 1e-6 (relative for large values), rest exact."""
    assert set(actual.columns) == set(expected.columns), (
        f"columns differ: only in mart {set(actual.columns) - set(expected.columns)}, "
        f"only in pandas {set(expected.columns) - set(actual.columns)}"
    )
    actual = actual.sort_values(keys).reset_index(drop=True)
    expected = expected[list(actual.columns)].sort_values(keys).reset_index(drop=True)
    assert len(actual) == len(expected), "row counts differ"
    for column in actual.columns:
        got, want = actual[column], expected[column]
        if pd.api.types.is_numeric_dtype(want) and not pd.api.types.is_bool_dtype(want):
            got_f = pd.to_numeric(got, errors="raise").astype(float).to_numpy()
            want_f = want.astype(float).to_numpy()
            assert (np.isnan(got_f) == np.isnan(want_f)).all(), f"{column}: null positions differ"
            mask = ~np.isnan(want_f)
            bad = ~np.isclose(got_f[mask], want_f[mask], rtol=1e-9, atol=1e-6)
            assert not bad.any(), (
                f"{column}: {bad.sum()} values differ, e.g. mart {got_f[mask][bad][:3]} "
                f"vs pandas {want_f[mask][bad][:3]}"
            )
        else:
            got_o = got.astype(object).where(got.notna(), None).tolist()
            want_o = want.astype(object).where(want.notna(), None).tolist()
            diffs = [
                (i, g, w) for i, (g, w) in enumerate(zip(got_o, want_o, strict=True)) if g != w
            ]
            assert not diffs, f"{column}: {len(diffs)} values differ, e.g. {diffs[:3]}"


@pytest.fixture(scope="module")
def tickers(prod_runner: DbtRunner) -> pd.DataFrame:
    return pd.read_csv(prod_runner.project.project_dir / "seeds" / "sp500_tickers.csv")[
        ["symbol", "company_name", "sector"]
    ]


@pytest.fixture(scope="module")
def performance(source_data: SourceData, tickers: pd.DataFrame) -> pd.DataFrame:
    return expected_performance(source_data.daily, tickers)


def test_stock_performance_matches_pandas(
    prod_runner: DbtRunner, fakesnow: Fakesnow, performance: pd.DataFrame
) -> None:
    mart = fakesnow.table(f"{ANALYTICS}.MART_STOCK_PERFORMANCE")
    assert mart["sma_50d"].notna().any() and mart["high_52w"].notna().any(), "windows never fill"
    assert_matches(mart, performance, ["symbol", "trade_date"])


def test_daily_summary_matches_pandas(
    prod_runner: DbtRunner, fakesnow: Fakesnow, performance: pd.DataFrame
) -> None:
    mart = fakesnow.table(f"{ANALYTICS}.MART_DAILY_SUMMARY")
    assert mart["unchanged"].astype(int).sum() > 0, "dataset should contain unchanged closes"
    assert_matches(mart, expected_daily_summary(performance), ["trade_date"])


def test_realtime_signals_match_pandas(
    prod_runner: DbtRunner, fakesnow: Fakesnow, source_data: SourceData, tickers: pd.DataFrame
) -> None:
    mart = fakesnow.table(f"{ANALYTICS}.MART_REALTIME_SIGNALS")
    expected = expected_realtime(source_data.realtime, tickers)
    assert expected["is_volume_spike"].any() and expected["is_multi_signal_alert"].any()
    assert set(expected["volatility_regime"]) >= {"LOW", "NORMAL", "ELEVATED", "HIGH"}
    assert_matches(mart, expected, ["symbol", "window_start_at"])
