"""Synthetic generator invariants, determinism and the trading calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from market_ingest.calendar import is_trading_day, nyse_holidays, trading_days
from market_ingest.clock import SimulatedClock
from market_ingest.records import validate_frame
from market_ingest.sources.synthetic import SyntheticSource
from market_ingest.universe import benchmark_universe

SYMBOLS = ["AAPL", "MSFT", "NVDA", "BRK.B"]
START, END = date(2021, 1, 1), date(2023, 12, 31)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return SyntheticSource(seed=42).daily_frame(SYMBOLS, START, END)


def test_ohlc_consistent_and_volumes_positive(bars: pd.DataFrame) -> None:
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo > 0).all()
    assert ((lo <= o) & (o <= h) & (lo <= c) & (c <= h)).all()
    assert (bars["volume"] > 0).all() and bars["volume"].dtype == np.int64


def test_only_trading_days(bars: pd.DataFrame) -> None:
    days = {d.date() for d in bars["trade_date"]}
    assert all(d.weekday() < 5 for d in days)
    holidays = {h for y in (2021, 2022, 2023) for h in nyse_holidays(y)}
    assert not days & holidays
    # every symbol on every trading day, nothing else
    expected = {pd.Timestamp(d).date() for d in trading_days(START, END)}
    assert days == expected and len(bars) == len(expected) * len(SYMBOLS)


def test_rows_pass_the_contract(bars: pd.DataFrame) -> None:
    checked = validate_frame(
        "daily_bar",
        bars.assign(schema_version=1),
        now=datetime(2024, 1, 2, tzinfo=UTC),
        universe=SYMBOLS,
    )
    assert not checked.rejects and len(checked.frame) == len(bars)


def test_same_seed_same_frames_other_seed_differs(bars: pd.DataFrame) -> None:
    again = SyntheticSource(seed=42).daily_frame(SYMBOLS, START, END)
    pd.testing.assert_frame_equal(bars, again)
    other = SyntheticSource(seed=43).daily_frame(SYMBOLS, START, END)
    assert not np.allclose(bars["close"].to_numpy(), other["close"].to_numpy())


def test_bar_depends_only_on_seed_symbol_and_date(bars: pd.DataFrame) -> None:
    one = SyntheticSource(seed=42).daily_frame(["MSFT"], date(2022, 3, 1), date(2022, 3, 10))
    same = bars[(bars.symbol == "MSFT") & bars.trade_date.between("2022-03-01", "2022-03-10")]
    pd.testing.assert_frame_equal(one.reset_index(drop=True), same.reset_index(drop=True))


def test_chunks_are_date_major(bars: pd.DataFrame) -> None:
    chunks = list(SyntheticSource(seed=42, chunk_days=5).daily_bars(SYMBOLS, START, END))
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, bars)
    assert joined["trade_date"].is_monotonic_increasing


def test_known_holidays() -> None:
    # Independent facts from the NYSE calendar.
    for day in (
        date(2024, 3, 29),
        date(2022, 6, 20),
        date(2021, 12, 24),
        date(2023, 1, 2),
        date(2025, 1, 9),
    ):
        assert not is_trading_day(day), day
    assert is_trading_day(date(2021, 12, 31)), "New Year 2022 (Saturday) is not observed on Friday"
    assert is_trading_day(date(2021, 6, 18)), "Juneteenth only from 2022"


def test_simulated_ticks_are_fast_deterministic_and_in_the_past() -> None:
    now = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)  # Monday before the open
    src = SyntheticSource(seed=1)
    frames = list(src.ticks(["AAPL", "MSFT"], clock=SimulatedClock(now), session_minutes=5))
    again = list(src.ticks(["AAPL", "MSFT"], clock=SimulatedClock(now), session_minutes=5))
    ticks = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(ticks, pd.concat(again, ignore_index=True))
    assert len(ticks) == 5 * 60 * 2
    assert ticks["ts"].max() < now
    # last completed session is Friday 2024-05-31, opening 13:30 UTC
    assert ticks["ts"].min() == pd.Timestamp("2024-05-31T13:30:00Z")
    assert (ticks["price"] > 0).all() and (ticks["volume"] > 0).all()
    checked = validate_frame(
        "tick", ticks.assign(schema_version=1), now=now, universe=["AAPL", "MSFT"]
    )
    assert not checked.rejects


def test_benchmark_universe_is_deterministic_and_valid() -> None:
    from market_common.identifiers import is_valid_symbol

    u = benchmark_universe(500)
    assert u == benchmark_universe(500) and len(set(u)) == 500
    assert all(is_valid_symbol(s) for s in u)
    assert benchmark_universe(500, seed=1) != u


def test_trading_days_empty_range() -> None:
    assert len(trading_days(date(2024, 1, 2), date(2024, 1, 1))) == 0
    assert len(trading_days(date(2024, 1, 6), date(2024, 1, 7))) == 0  # a weekend
