"""Trading calendars from exchange_calendars: NYSE with early closes, and per-source choice."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_ingest.calendar import (
    NEW_YORK,
    CalendarRangeError,
    UnknownCalendarError,
    early_closes,
    is_trading_day,
    last_completed_session,
    previous_trading_day,
    session_bounds,
    session_minutes,
    trading_days,
)
from market_ingest.producer import backfill_window
from market_ingest.sources import make_source


def test_nyse_early_closes_end_at_13_new_york_time() -> None:
    # Independent facts (NYSE notices): the day after Thanksgiving and Christmas Eve 2024.
    for day in (date(2024, 11, 29), date(2024, 12, 24), date(2024, 7, 3)):
        open_, close = session_bounds(day)
        assert open_ == datetime.combine(day, time(9, 30), tzinfo=NEW_YORK), day
        assert close == datetime.combine(day, time(13, 0), tzinfo=NEW_YORK), day
        assert session_minutes(day) == 210, day
    assert session_minutes(date(2024, 11, 27)) == 390, "a regular day before Thanksgiving"
    assert early_closes(date(2024, 1, 1), date(2024, 12, 31)) == [
        date(2024, 7, 3),
        date(2024, 11, 29),
        date(2024, 12, 24),
    ]


def test_a_session_that_closed_early_is_complete_by_its_early_close() -> None:
    # 2024-11-29 closed at 13:00 New York = 18:00 UTC; a 16:00 close would say Wednesday.
    at_14_ny = datetime(2024, 11, 29, 19, 0, tzinfo=UTC)
    assert last_completed_session(at_14_ny) == date(2024, 11, 29)
    assert last_completed_session(datetime(2024, 11, 29, 17, 59, tzinfo=UTC)) == date(2024, 11, 27)


def test_nyse_closures_and_dst() -> None:
    assert not is_trading_day(date(2025, 1, 9)), "national day of mourning (President Carter)"
    assert not is_trading_day(date(2012, 10, 30)), "Hurricane Sandy"
    assert previous_trading_day(date(2024, 4, 1)) == date(2024, 3, 28), "Good Friday 2024"
    # DST: the open is 13:30 UTC in summer and 14:30 UTC in winter.
    assert session_bounds(date(2024, 6, 3))[0].astimezone(UTC).hour == 13
    assert session_bounds(date(2024, 12, 2))[0].astimezone(UTC).hour == 14


def test_crypto_and_fx_calendars_trade_other_days() -> None:
    week = (date(2024, 6, 1), date(2024, 6, 9))  # Saturday to the next Sunday
    assert len(trading_days(*week)) == 5
    assert len(trading_days(*week, calendar="24/7")) == 9
    assert len(trading_days(*week, calendar="24/5")) == 5
    assert is_trading_day(date(2024, 7, 4), calendar="24/5"), "FX trades on US holidays"
    saturday_noon = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert last_completed_session(saturday_noon, calendar="24/7") == date(2024, 5, 31)
    assert last_completed_session(datetime(2024, 6, 2, 0, 0, tzinfo=UTC), calendar="24/7") == date(
        2024, 6, 1
    ), "Saturday's crypto session is complete at midnight UTC"
    assert isinstance(trading_days(*week), np.ndarray)
    assert trading_days(*week).dtype == np.dtype("datetime64[D]")


def test_replay_source_names_its_calendar_and_the_backfill_follows_it(tmp_path: Path) -> None:
    bars = tmp_path / "btc.csv"
    pd.DataFrame(
        {"symbol": ["BTC"], "trade_date": ["2024-06-01"], "open": [1.0], "high": [1.0],
         "low": [1.0], "close": [1.0], "volume": [1]}
    ).to_csv(bars, index=False)  # fmt: skip
    sunday = datetime(2024, 6, 2, 12, 0, tzinfo=UTC)

    crypto = make_source("replay", replay_paths=[bars], calendar="24/7")
    assert crypto.calendar == "24/7"
    assert backfill_window(years=None, start=None, end=None, now=sunday, calendar=crypto.calendar)[
        1
    ] == date(2024, 6, 1), "Saturday is the last completed crypto session"

    default = make_source("replay", replay_paths=[bars])
    assert default.calendar == "XNYS"
    assert backfill_window(years=None, start=None, end=None, now=sunday, calendar=default.calendar)[
        1
    ] == date(2024, 5, 31)
    assert make_source("synthetic", calendar="24/7").calendar == "XNYS", "synthetic is NYSE data"


def test_unknown_calendar_and_out_of_range_days_fail_clearly(tmp_path: Path) -> None:
    bars = tmp_path / "x.csv"
    bars.write_text("symbol,trade_date\nAAPL,2024-06-03\n")
    with pytest.raises(UnknownCalendarError, match="unknown trading calendar 'NYSEE'"):
        make_source("replay", replay_paths=[bars], calendar="NYSEE")
    with pytest.raises(CalendarRangeError, match="1989-12-29 is outside the trading calendars"):
        is_trading_day(date(1989, 12, 29))
