"""Trading calendars from exchange_calendars: which days trade and when sessions open/close.

The default calendar is NYSE (``XNYS``): exchange holidays, one-off closures (days of
mourning, Hurricane Sandy) and early closes (13:00 on the day after Thanksgiving, most
Christmas Eves and July 3rds) as maintained by the exchange_calendars project, not a
hand-kept list. Every function takes a keyword-only ``calendar``: an exchange_calendars
code such as ``XNYS``, ``XLON``, ``24/5`` (FX: Monday to Friday, around the clock) or
``24/7`` (crypto). Each source declares its calendar (``Source.calendar``; replay takes it
from ``MARKET_CALENDAR``), so an FX or crypto replay is not forced onto NYSE days.

Calendars cover 1990 to the end of next year; a day outside raises
:class:`CalendarRangeError` (the synthetic history starts in 2000).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

NYSE = "XNYS"
NEW_YORK = ZoneInfo("America/New_York")
# NYSE's regular session; early-close days are shorter (see session_bounds).
SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
SESSION_MINUTES = 390
CALENDAR_START = date(1990, 1, 1)


class CalendarRangeError(ValueError):
    """A day before 1990 or after the end of next year: outside the loaded calendars."""


class UnknownCalendarError(ValueError):
    """A calendar code exchange_calendars does not know."""


def calendar_end() -> date:
    """The last day the calendars cover: 31 December of next year."""
    return date(date.today().year + 1, 12, 31)


@lru_cache(maxsize=16)
def get_calendar(calendar: str = NYSE) -> ExchangeCalendar:
    """The exchange_calendars calendar for ``calendar``, built once per process."""
    try:
        return xcals.get_calendar(calendar, start=CALENDAR_START, end=calendar_end())
    except xcals.errors.InvalidCalendarName as exc:
        raise UnknownCalendarError(
            f"unknown trading calendar {calendar!r}: use an exchange_calendars code such as "
            "XNYS (NYSE), XLON, 24/5 (FX) or 24/7 (crypto)"
        ) from exc


def _checked(day: date) -> pd.Timestamp:
    if not CALENDAR_START <= day <= calendar_end():
        raise CalendarRangeError(
            f"{day} is outside the trading calendars ({CALENDAR_START} to {calendar_end()})"
        )
    return pd.Timestamp(day)


def is_trading_day(day: date, *, calendar: str = NYSE) -> bool:
    """Whether ``day`` has a session (early-close days do)."""
    return bool(get_calendar(calendar).is_session(_checked(day)))


def trading_days(start: date, end: date, *, calendar: str = NYSE) -> np.ndarray:
    """Trading days in ``[start, end]`` as ``datetime64[D]``, ascending."""
    if end < start:
        return np.array([], dtype="datetime64[D]")
    sessions = get_calendar(calendar).sessions_in_range(_checked(start), _checked(end))
    return sessions.values.astype("datetime64[D]")


def nyse_holidays(year: int) -> frozenset[date]:
    """Weekdays of ``year`` on which NYSE does not trade (holidays and one-off closures)."""
    weekdays = pd.bdate_range(date(year, 1, 1), date(year, 12, 31))
    sessions = set(trading_days(date(year, 1, 1), date(year, 12, 31)).tolist())
    return frozenset(d.date() for d in weekdays if d.date() not in sessions)


def early_closes(start: date, end: date, *, calendar: str = NYSE) -> list[date]:
    """Trading days in ``[start, end]`` whose session closes early, ascending."""
    cal = get_calendar(calendar)
    closes = cal.early_closes
    return [d.date() for d in closes if _checked(start) <= d <= _checked(end)]


def previous_trading_day(day: date, *, calendar: str = NYSE) -> date:
    """The last trading day strictly before ``day``."""
    before = _checked(day - timedelta(days=1))
    session = get_calendar(calendar).date_to_session(before, direction="previous")
    return session.date()  # type: ignore[no-any-return]


def session_bounds(day: date, *, calendar: str = NYSE) -> tuple[datetime, datetime]:
    """Open and close of ``day``'s session, aware, in the calendar's time zone.

    Early closes are real: NYSE's 2024-11-29 closes at 13:00 New York time.
    """
    cal = get_calendar(calendar)
    session = _checked(day)
    open_, close = cal.session_open(session), cal.session_close(session)
    return (
        open_.tz_convert(cal.tz).to_pydatetime(),
        close.tz_convert(cal.tz).to_pydatetime(),
    )


def session_minutes(day: date, *, calendar: str = NYSE) -> int:
    """Length of ``day``'s session in minutes (390 on a regular NYSE day, 210 on an early close)."""
    open_, close = session_bounds(day, calendar=calendar)
    return int((close - open_).total_seconds() // 60)


def last_completed_session(now: datetime, *, calendar: str = NYSE) -> date:
    """Most recent trading day whose session has closed by ``now`` (aware)."""
    cal = get_calendar(calendar)
    day = now.astimezone(cal.tz).date()
    if is_trading_day(day, calendar=calendar) and now >= session_bounds(day, calendar=calendar)[1]:
        return day
    return previous_trading_day(day, calendar=calendar)
