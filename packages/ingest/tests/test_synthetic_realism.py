"""Synthetic data looks like the tickers: reference levels, volatilities, coherent ticks.

The reference table is read independently here (pandas on the shipped CSV), not through
the module under test, so a broken loader cannot agree with itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_common.settings import DEFAULT_SYMBOLS
from market_ingest.clock import SimulatedClock
from market_ingest.sources import synthetic
from market_ingest.sources.synthetic import SyntheticSource

TABLE = pd.read_csv(
    Path(synthetic.__file__).with_name("reference_prices.csv"), comment="#"
).set_index("symbol")
AS_OF = date.fromisoformat(TABLE["as_of"].iloc[0])


def test_every_default_symbol_has_a_dated_reference_level() -> None:
    assert set(DEFAULT_SYMBOLS) <= set(TABLE.index), "the default universe is all referenced"
    assert TABLE["as_of"].nunique() == 1, "one date for the whole table"


@pytest.fixture(scope="module")
def two_years() -> pd.DataFrame:
    start = AS_OF - timedelta(days=365)
    return SyntheticSource(seed=42).daily_frame(
        list(DEFAULT_SYMBOLS), start, AS_OF + timedelta(days=365)
    )


def test_paths_pass_through_the_reference_close(two_years: pd.DataFrame) -> None:
    on_day = two_years[two_years["trade_date"] == pd.Timestamp(AS_OF)].set_index("symbol")
    assert len(on_day) == len(DEFAULT_SYMBOLS), f"{AS_OF} is a trading day with every symbol"
    for symbol in DEFAULT_SYMBOLS:
        assert on_day.loc[symbol, "close"] == pytest.approx(TABLE.loc[symbol, "close"], abs=1e-4)


def test_prices_stay_near_real_levels_for_two_years(two_years: pd.DataFrame) -> None:
    closes = two_years.groupby("symbol")["close"].agg(["min", "max"])
    ref = TABLE["close"].reindex(closes.index)
    # A year either side of the pin at up to 66 % volatility: within 0.3x..3x of the level
    # (the seed's JNJ at $1.20-$4.20 against a real ~$150 is 0.01x).
    assert (closes["min"] > 0.3 * ref).all(), closes.assign(ref=ref)
    assert (closes["max"] < 3.0 * ref).all(), closes.assign(ref=ref)


def test_realised_volatility_matches_the_table(two_years: pd.DataFrame) -> None:
    wide = two_years.pivot(index="trade_date", columns="symbol", values="close")
    realised = np.log(wide).diff().std() * np.sqrt(252)
    expected = TABLE.loc[realised.index, "annual_volatility"]
    ratio = realised / expected
    assert ratio.between(0.8, 1.25).all(), pd.DataFrame({"realised": realised, "table": expected})
    assert realised["TSLA"] > 2 * realised["JNJ"], "TSLA is far more volatile than JNJ"


def test_a_full_session_of_ticks_agrees_with_that_days_bar() -> None:
    now = datetime(2025, 7, 1, 22, 0, tzinfo=UTC)  # after the close of Tuesday 2025-07-01
    symbols = [*DEFAULT_SYMBOLS, "ZZZT"]  # ZZZT: not in the table, hashed parameters
    source = SyntheticSource(seed=7)
    ticks = pd.concat(source.ticks(symbols, clock=SimulatedClock(now), session_minutes=390))
    bar = source.daily_frame(symbols, date(2025, 7, 1), date(2025, 7, 1)).set_index("symbol")

    per_symbol = ticks.sort_values("ts").groupby("symbol")["price"]
    summary = pd.DataFrame(
        {"low": per_symbol.min(), "high": per_symbol.max(), "last": per_symbol.last()}
    )
    assert len(ticks) == 390 * 60 * len(symbols)
    assert (summary["low"] >= bar.loc[summary.index, "low"]).all(), "no tick below the low"
    assert (summary["high"] <= bar.loc[summary.index, "high"]).all(), "no tick above the high"
    assert (summary["last"] == bar.loc[summary.index, "close"]).all(), "ends at the close"
    first = ticks.sort_values("ts").groupby("symbol")["price"].first()
    assert np.allclose(first, bar.loc[first.index, "open"], rtol=0.005), "starts at the open"
    moves = ticks.pivot(index="ts", columns="symbol", values="price").nunique()
    assert (moves > 1000).all(), "ticks move through the day instead of sitting on a clip"


def test_ticks_are_deterministic_by_seed() -> None:
    now = datetime(2025, 7, 1, 22, 0, tzinfo=UTC)

    def session(seed: int) -> pd.DataFrame:
        frames = SyntheticSource(seed=seed).ticks(
            ["AAPL", "KO"], clock=SimulatedClock(now), session_minutes=30
        )
        return pd.concat(frames, ignore_index=True)

    pd.testing.assert_frame_equal(session(3), session(3))
    assert not session(3)["price"].equals(session(4)["price"])
