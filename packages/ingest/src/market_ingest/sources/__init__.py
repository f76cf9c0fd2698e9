"""Market-data sources behind one interface, chosen by ``settings.source`` or ``--source``.

A source yields pandas frames, one row per record, in chronological order:

* daily bars: ``symbol, trade_date, open, high, low, close, volume, source``
  (``trade_date`` is the exchange-local calendar date, tz-naive midnight);
* ticks: ``symbol, ts, price, volume, source`` (``ts`` tz-aware UTC).

Frames are *not* trusted: the producer validates every row against the contract.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from market_ingest.calendar import NYSE

if TYPE_CHECKING:
    import pandas as pd

    from market_ingest.clock import Clock

SOURCE_NAMES = ("synthetic", "yfinance", "replay", "alphavantage")


class Source(Protocol):
    name: str
    # The trading calendar of its data (market_ingest.calendar): NYSE days unless it says so.
    calendar: str

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> Iterator[pd.DataFrame]:
        """Daily bars for trading days in ``[start, end]``, date-major chunks."""
        ...

    def ticks(
        self,
        symbols: Sequence[str],
        *,
        clock: Clock,
        session_minutes: int,
        stop: threading.Event | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Realtime ticks; with a paced clock frames arrive as time passes."""
        ...


def make_source(
    name: str,
    *,
    seed: int = 42,
    replay_paths: Sequence[Path] = (),
    download: Any = None,
    sleep: Any = None,
    calendar: str | None = None,
) -> Source:
    """Build the named source; ``download``/``sleep`` are yfinance's injectable collaborators.

    ``calendar`` (an exchange_calendars code) is the replayed data's trading calendar; the
    synthetic and yfinance sources trade NYSE days whatever it says.
    """
    if name == "synthetic":
        from market_ingest.sources.synthetic import SyntheticSource

        return SyntheticSource(seed=seed)
    if name == "yfinance":
        from market_ingest.sources.yahoo import YahooSource

        kwargs: dict[str, Any] = {}
        if download is not None:
            kwargs["download"] = download
        if sleep is not None:
            kwargs["sleep"] = sleep
        return YahooSource(**kwargs)
    if name == "alphavantage":
        from market_ingest.sources.alphavantage import AlphaVantageSource

        return AlphaVantageSource()  # key from MARKET_ALPHAVANTAGE_API_KEY
    if name == "replay":
        from market_ingest.sources.replay import ReplaySource

        return ReplaySource(replay_paths, calendar=calendar or NYSE)
    raise ValueError(f"unknown source {name!r}: choose one of {', '.join(SOURCE_NAMES)}")
