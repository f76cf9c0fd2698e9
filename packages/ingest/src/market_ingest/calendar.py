"""NYSE trading calendar: weekdays minus exchange holidays (computed, not downloaded).

Rules follow NYSE Rule 7.2: a Saturday holiday is observed on Friday and a Sunday holiday
on Monday, except that New Year's Day falling on a Saturday is not observed (the prior
Friday is a trading day). Juneteenth is a holiday from 2022. One-off closures (national
days of mourning, Hurricane Sandy, 9/11) are listed explicitly.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
SESSION_MINUTES = 390

SPECIAL_CLOSURES: frozenset[date] = frozenset(
    {
        date(2001, 9, 11), date(2001, 9, 12), date(2001, 9, 13), date(2001, 9, 14),
        date(2004, 6, 11),  # Reagan
        date(2007, 1, 2),  # Ford
        date(2012, 10, 29), date(2012, 10, 30),  # Hurricane Sandy
        date(2018, 12, 5),  # G. H. W. Bush
        date(2025, 1, 9),  # Carter
    }
)  # fmt: skip


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    lo = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * lo) // 451
    month, day = divmod(h + lo - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=256)
def nyse_holidays(year: int) -> frozenset[date]:
    """Full-day NYSE closures in ``year``."""
    days = set()
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # Saturday New Year is not observed on Dec 31
        days.add(_observed(new_year))
    days.add(_nth_weekday(year, 1, 0, 3))  # Martin Luther King Jr. Day
    days.add(_nth_weekday(year, 2, 0, 3))  # Washington's Birthday
    days.add(_easter(year) - timedelta(days=2))  # Good Friday
    days.add(_last_weekday(year, 5, 0))  # Memorial Day
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    days.add(_observed(date(year, 7, 4)))
    days.add(_nth_weekday(year, 9, 0, 1))  # Labor Day
    days.add(_nth_weekday(year, 11, 3, 4))  # Thanksgiving
    days.add(_observed(date(year, 12, 25)))
    days |= {d for d in SPECIAL_CLOSURES if d.year == year}
    return frozenset(d for d in days if d.year == year)


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in nyse_holidays(day.year)


def trading_days(start: date, end: date) -> np.ndarray:
    """NYSE trading days in ``[start, end]`` as ``datetime64[D]``, ascending."""
    if end < start:
        return np.array([], dtype="datetime64[D]")
    holidays = [
        np.datetime64(d, "D") for y in range(start.year, end.year + 1) for d in nyse_holidays(y)
    ]
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    mask = np.is_busday(days, holidays=holidays)
    return days[mask]


def previous_trading_day(day: date) -> date:
    """The last trading day strictly before ``day``."""
    d = day - timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def session_bounds(day: date) -> tuple[datetime, datetime]:
    """Regular session open/close of ``day`` as aware New York datetimes."""
    return (
        datetime.combine(day, SESSION_OPEN, tzinfo=NEW_YORK),
        datetime.combine(day, SESSION_CLOSE, tzinfo=NEW_YORK),
    )


def last_completed_session(now: datetime) -> date:
    """Most recent trading day whose regular session has closed by ``now``."""
    local = now.astimezone(NEW_YORK)
    day = local.date()
    if is_trading_day(day) and local >= session_bounds(day)[1]:
        return day
    return previous_trading_day(day)
