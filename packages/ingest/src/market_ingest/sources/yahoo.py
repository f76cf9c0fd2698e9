"""Yahoo Finance through yfinance: daily history and the latest 1-minute bars.

Adjusted-price policy: ``auto_adjust=True`` everywhere, so open/high/low/close are
split- *and* dividend-adjusted (Yahoo's "Adj Close" basis) and volume is split-adjusted.
A backfill re-run later may therefore see slightly different historical prices after a
new dividend; the raw zone keeps what was fetched, with its ingestion time.

``yf.download`` does not raise on network failure: it logs per-ticker errors and returns
an empty frame. :func:`yahoo_download` captures those log records and raises
:class:`YahooRateLimited` / :class:`YahooUnreachable` instead, which :class:`YahooSource`
retries with exponential backoff and finally reports as
:class:`~market_ingest.errors.SourceUnavailableError`. Tests inject ``download`` (frames
shaped like yfinance's) and ``sleep``; nothing here touches the network in tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd

from market_common.logging import get_logger
from market_common.retry import retry
from market_ingest.calendar import NEW_YORK, NYSE, SESSION_MINUTES
from market_ingest.clock import Clock
from market_ingest.errors import SourceDataError, SourceUnavailableError

log = get_logger(__name__)

Download = Callable[..., pd.DataFrame | None]

_PRICE_COLUMNS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Volume": "volume",
}
_RATE_LIMIT_MARKERS = ("rate limit", "too many requests", "yfratelimiterror", "429")
_NETWORK_MARKERS = (
    "could not resolve host", "failed to perform", "dnserror", "timed out", "timeout",
    "connection", "curl: (", "network is unreachable", "ssl",
)  # fmt: skip


class YahooRateLimited(RuntimeError):
    """Yahoo answered 429 / rate-limited: back off and retry."""


class YahooUnreachable(ConnectionError):
    """Yahoo Finance could not be reached (DNS, TLS, timeout, connection refused)."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    YahooRateLimited,
    YahooUnreachable,
    ConnectionError,
    TimeoutError,
    OSError,
)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def yahoo_download(*, yf_download: Download | None = None, **kwargs: Any) -> pd.DataFrame:
    """``yf.download`` that raises on rate limits and network failure instead of logging.

    ``yf_download`` replaces ``yfinance.download`` (tests); everything else is passed on.
    """
    if yf_download is None:
        import yfinance as yf

        yf_download = yf.download
    try:
        from yfinance.exceptions import YFRateLimitError
    except ImportError:  # older yfinance
        YFRateLimitError = YahooRateLimited

    capture = _Capture()
    yf_log = logging.getLogger("yfinance")
    yf_log.addHandler(capture)
    try:
        frame = yf_download(**kwargs)
    except YFRateLimitError as exc:
        raise YahooRateLimited(str(exc)) from exc
    finally:
        yf_log.removeHandler(capture)
    text = " ".join(capture.messages).lower()
    if any(m in text for m in _RATE_LIMIT_MARKERS):
        raise YahooRateLimited(text[:300])
    if any(m in text for m in _NETWORK_MARKERS):
        raise YahooUnreachable(text[:300])
    return frame if frame is not None else pd.DataFrame()


def normalise_download(frame: pd.DataFrame | None, *, intraday: bool) -> pd.DataFrame:
    """Long-format records from a ``yf.download`` frame.

    Accepts (Price, Ticker) or (Ticker, Price) MultiIndex columns (``group_by="column"``
    or ``"ticker"``) and flat single-ticker columns are rejected (we always pass a list).
    Daily bars keep the exchange-local date; intraday timestamps become UTC (a naive
    intraday index is taken to be New York time, as yfinance uses exchange time).
    Rows where a ticker has no prices at all (not yet listed, halted) are dropped; rows
    with *some* prices missing are kept so the contract sends them to the DLQ.
    """
    if frame is None or frame.empty:
        return _empty(intraday)
    if not isinstance(frame.columns, pd.MultiIndex) or frame.columns.nlevels != 2:
        raise SourceDataError(
            "yfinance returned flat columns; expected a (Price, Ticker) MultiIndex "
            "(call yf.download with a list of tickers and multi_level_index=True)"
        )
    names = list(frame.columns.names)
    level0 = set(frame.columns.get_level_values(0))
    price_level = 0 if ("Close" in level0 or names[0] == "Price") else 1
    ticker_level = 1 - price_level
    stacked = frame.stack(level=ticker_level, future_stack=True)
    stacked.index = stacked.index.set_names(["when", "symbol"])
    missing = [c for c in _PRICE_COLUMNS if c not in stacked.columns]
    if missing:
        raise SourceDataError(
            f"yfinance frame lacks columns {missing}; got {list(stacked.columns)}"
        )
    out = pd.DataFrame(stacked[list(_PRICE_COLUMNS)]).rename(columns=_PRICE_COLUMNS).reset_index()
    out = out.dropna(subset=["open", "high", "low", "close"], how="all")
    when = pd.DatetimeIndex(out["when"])
    if intraday:
        when = when.tz_localize(NEW_YORK) if when.tz is None else when
        out["ts"] = when.tz_convert("UTC")
    else:
        # The bar's date in exchange time; never shift it through UTC.
        local = when.tz_convert(NEW_YORK).tz_localize(None) if when.tz is not None else when
        out["trade_date"] = local.normalize()
    # Volume is float in yfinance frames (NaN-able); integral values become int64 here.
    vol = out["volume"]
    if vol.notna().all() and (vol == vol.round()).all():
        out["volume"] = vol.astype("int64")
    out["symbol"] = out["symbol"].astype(str).str.upper()
    out["source"] = "yfinance"
    if intraday:
        out = out.rename(columns={"close": "price"})[["symbol", "ts", "price", "volume", "source"]]
        return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    cols = ["symbol", "trade_date", "open", "high", "low", "close", "volume", "source"]
    return out[cols].sort_values(["trade_date", "symbol"], kind="stable").reset_index(drop=True)


def _empty(intraday: bool) -> pd.DataFrame:
    if intraday:
        return pd.DataFrame(
            {
                "symbol": pd.Series([], dtype=object),
                "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
                "price": pd.Series([], dtype="float64"),
                "volume": pd.Series([], dtype="int64"),
                "source": pd.Series([], dtype=object),
            }
        )
    from market_ingest.sources.synthetic import _empty_daily

    return _empty_daily()


class YahooSource:
    """yfinance-backed source with retries; ``download`` and ``sleep`` are injectable."""

    name = "yfinance"
    calendar = NYSE  # the platform's universe: US listings

    def __init__(
        self,
        *,
        download: Download = yahoo_download,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 5,
        base_delay: float = 2.0,
        max_delay: float = 60.0,
        tickers_per_call: int = 50,
        poll_seconds: float = 60.0,
    ) -> None:
        self._download = download
        self._sleep = sleep
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.tickers_per_call = tickers_per_call
        self.poll_seconds = poll_seconds

    def _fetch(self, tickers: Sequence[str], **kwargs: Any) -> pd.DataFrame | None:
        try:
            return retry(
                lambda: self._download(
                    tickers=list(tickers),
                    auto_adjust=True,
                    actions=False,
                    group_by="column",
                    progress=False,
                    threads=True,
                    multi_level_index=True,
                    **kwargs,
                ),
                attempts=self.attempts,
                base_delay=self.base_delay,
                max_delay=self.max_delay,
                retry_on=TRANSIENT_ERRORS,
                sleep=self._sleep,
                what="yfinance call",
            )
        except TRANSIENT_ERRORS as last:
            what = "rate-limited by" if isinstance(last, YahooRateLimited) else "could not reach"
            raise SourceUnavailableError(
                f"yfinance {what} Yahoo Finance after {self.attempts} attempts "
                f"({type(last).__name__}: {str(last)[:200]}). Check network access to "
                "query2.finance.yahoo.com, wait out a rate limit, or use --source synthetic."
            ) from last

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> Iterator[pd.DataFrame]:
        for i in range(0, len(symbols), self.tickers_per_call):
            chunk = symbols[i : i + self.tickers_per_call]
            # yfinance's `end` is exclusive.
            raw = self._fetch(
                chunk,
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),
                interval="1d",
            )
            frame = normalise_download(raw, intraday=False)
            if frame.empty:
                log.warning("yfinance returned no daily bars", extra={"symbols": len(chunk)})
            yield frame

    def latest_minute_bars(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Today's 1-minute bars (regular session) of ``symbols`` as ticks (price = close)."""
        frames = [
            normalise_download(
                self._fetch(
                    symbols[i : i + self.tickers_per_call],
                    period="1d",
                    interval="1m",
                    prepost=False,
                ),
                intraday=True,
            )
            for i in range(0, len(symbols), self.tickers_per_call)
        ]
        return pd.concat(frames, ignore_index=True) if frames else _empty(True)

    def ticks(
        self,
        symbols: Sequence[str],
        *,
        clock: Clock,
        session_minutes: int = SESSION_MINUTES,
        stop: threading.Event | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Poll the latest minute bars and emit only bars newer than the last emitted.

        With a simulated clock one fetch is emitted at once (Yahoo's last session).
        """
        deadline = clock.now() + timedelta(minutes=session_minutes)
        seen: dict[str, pd.Timestamp] = {}
        while True:
            bars = self.latest_minute_bars(symbols)
            if not bars.empty:
                last_seen = bars["symbol"].map(seen).astype("datetime64[ns, UTC]")
                fresh = bars[last_seen.isna() | (bars["ts"] > last_seen)]
                if not fresh.empty:
                    latest = fresh.groupby("symbol")["ts"].max()
                    seen.update({str(k): v for k, v in latest.items()})
                    yield fresh.reset_index(drop=True)
            if not clock.paced or clock.now() >= deadline or (stop is not None and stop.is_set()):
                return
            clock.sleep_until(clock.now() + timedelta(seconds=self.poll_seconds), stop)
            if stop is not None and stop.is_set():
                return
