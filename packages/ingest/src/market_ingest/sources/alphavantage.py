"""Alpha Vantage: daily and 1-minute intraday series through its HTTP API.

* Key: ``MARKET_ALPHAVANTAGE_API_KEY`` (or Alpha Vantage's own ``ALPHAVANTAGE_API_KEY``);
  without one the source refuses to start (:class:`AlphaVantageKeyMissingError`), before
  any request.
* Rate limits: calls are spaced at least ``min_interval_s`` apart (12 s = the free tier's
  5 calls per minute). An answer with a ``Note``/``Information`` about the call frequency is
  a rate-limit answer, not data: it is retried with exponential backoff (tenacity), like
  connection errors and HTTP 5xx. A daily-quota answer that persists, or a host that stays
  unreachable, ends as :class:`~market_ingest.errors.SourceUnavailableError` naming the URL.
* ``Error Message`` answers (unknown symbol, bad parameters) are not retried:
  :class:`~market_ingest.errors.SourceDataError` naming the symbol.
* Prices are as Alpha Vantage reports them (``TIME_SERIES_DAILY`` is not split-adjusted);
  intraday timestamps are US/Eastern and become UTC; each 1-minute bar becomes one tick
  at its close price and volume.

Tests point ``base_url`` at a loopback HTTP server answering with recorded responses and
inject ``sleep``/``monotonic``; the production path is the same urllib request.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from market_common.logging import get_logger
from market_ingest.calendar import NEW_YORK, NYSE, SESSION_MINUTES, session_bounds
from market_ingest.clock import Clock
from market_ingest.errors import IngestError, SourceDataError, SourceUnavailableError

log = get_logger(__name__)

BASE_URL = "https://www.alphavantage.co/query"
KEY_VARIABLES = ("MARKET_ALPHAVANTAGE_API_KEY", "ALPHAVANTAGE_API_KEY")
FREE_TIER_INTERVAL_S = 12.0  # 5 calls per minute
_FIELDS = {"1. open": "open", "2. high": "high", "3. low": "low", "4. close": "close"}
_VOLUME = "5. volume"


class AlphaVantageKeyMissingError(IngestError):
    """No API key in the environment: the source cannot call Alpha Vantage."""


class AlphaVantageRateLimited(RuntimeError):
    """Alpha Vantage answered with its call-frequency note instead of data: back off."""


class AlphaVantageUnreachable(ConnectionError):
    """The API host could not be reached or answered with an HTTP error."""


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The API key from the first of :data:`KEY_VARIABLES` that is set."""
    env = os.environ if environ is None else environ
    for name in KEY_VARIABLES:
        if env.get(name, "").strip():
            return env[name].strip()
    raise AlphaVantageKeyMissingError(
        f"no Alpha Vantage API key: export {KEY_VARIABLES[0]}=<key> (a free key: "
        "https://www.alphavantage.co/support/#api-key), or use --source synthetic"
    )


class AlphaVantageSource:
    """Daily bars (``TIME_SERIES_DAILY``) and ticks from 1-minute bars (``TIME_SERIES_INTRADAY``)."""

    name = "alphavantage"
    calendar = NYSE  # Alpha Vantage's equity series: US listings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = BASE_URL,
        min_interval_s: float = FREE_TIER_INTERVAL_S,
        attempts: int = 4,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key or api_key_from_env()
        self.base_url = base_url
        self.min_interval_s = min_interval_s
        self.attempts = attempts
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_call: float | None = None
        self.calls = 0

    # ------------------------------------------------------------------ HTTP

    def _throttle(self) -> None:
        if self._last_call is not None:
            wait = self.min_interval_s - (self._monotonic() - self._last_call)
            if wait > 0:
                self._sleep(wait)
        self._last_call = self._monotonic()

    def _get_once(self, params: Mapping[str, str]) -> dict[str, Any]:
        self._throttle()
        query = urllib.parse.urlencode({**params, "apikey": self.api_key})
        self.calls += 1
        try:
            with urllib.request.urlopen(  # noqa: S310 - base_url is http(s) by configuration
                f"{self.base_url}?{query}", timeout=self.timeout_s
            ) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise AlphaVantageUnreachable(f"HTTP {exc.code} from {self.base_url}") from exc
            raise SourceDataError(f"Alpha Vantage answered HTTP {exc.code}: {exc.reason}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise AlphaVantageUnreachable(f"{self.base_url}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise SourceDataError(f"Alpha Vantage answered with non-JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise SourceDataError(f"Alpha Vantage answered with {type(body).__name__}, not JSON")
        note = body.get("Note") or body.get("Information")
        if note:
            raise AlphaVantageRateLimited(str(note))
        if "Error Message" in body:
            raise SourceDataError(
                f"Alpha Vantage refused {params.get('function')} for "
                f"{params.get('symbol')!r}: {body['Error Message']}"
            )
        return body

    def _get(self, params: Mapping[str, str]) -> dict[str, Any]:
        """One API call with throttling and retries; SourceUnavailableError when exhausted."""
        retrying = Retrying(
            retry=retry_if_exception_type((AlphaVantageRateLimited, AlphaVantageUnreachable)),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=max(self.min_interval_s, 1.0), max=120),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._get_once, params)
        except AlphaVantageRateLimited as exc:
            raise SourceUnavailableError(
                f"Alpha Vantage kept rate-limiting after {self.attempts} attempts ({exc}); "
                "wait for the quota to reset or use a premium key"
            ) from exc
        except AlphaVantageUnreachable as exc:
            raise SourceUnavailableError(
                f"Alpha Vantage unreachable after {self.attempts} attempts: {exc}; check the "
                "network/proxy, or use --source synthetic / replay offline"
            ) from exc

    # ------------------------------------------------------------------ series

    def _series(self, symbol: str, function: str, **extra: str) -> pd.DataFrame:
        body = self._get({"function": function, "symbol": symbol, **extra})
        key = next((k for k in body if k.startswith("Time Series")), None)
        if key is None:
            raise SourceDataError(
                f"Alpha Vantage {function} for {symbol!r} has no time series "
                f"(keys: {sorted(body)})"
            )
        frame = pd.DataFrame.from_dict(body[key], orient="index")
        if frame.empty:
            return frame
        out = frame.rename(columns=_FIELDS)[list(_FIELDS.values())].astype(float)
        out["volume"] = frame[_VOLUME].astype("int64")
        out.index = pd.to_datetime(out.index)
        return out.sort_index()

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> Iterator[pd.DataFrame]:
        """One frame per symbol with its bars in ``[start, end]`` (full history is fetched
        when the range reaches back more than ~100 trading days)."""
        compact = (date.today() - start).days < 140
        for symbol in symbols:
            series = self._series(
                symbol, "TIME_SERIES_DAILY", outputsize="compact" if compact else "full"
            )
            if series.empty:
                continue
            window = series[
                (series.index >= pd.Timestamp(start)) & (series.index <= pd.Timestamp(end))
            ]
            yield pd.DataFrame(
                {
                    "symbol": symbol,
                    "trade_date": window.index.astype("datetime64[ns]"),
                    **{c: window[c].to_numpy() for c in ("open", "high", "low", "close")},
                    "volume": window["volume"].to_numpy(),
                    "source": self.name,
                }
            ).reset_index(drop=True)

    def ticks(
        self,
        symbols: Sequence[str],
        *,
        clock: Clock,
        session_minutes: int = SESSION_MINUTES,
        stop: threading.Event | None = None,
    ) -> Iterator[pd.DataFrame]:
        """The last session in the data: one tick per 1-minute bar (close, volume), UTC,
        the first ``session_minutes`` of it; a paced clock spaces them in real time."""
        frames = []
        for symbol in symbols:
            if stop is not None and stop.is_set():
                return
            series = self._series(symbol, "TIME_SERIES_INTRADAY", interval="1min")
            if series.empty:
                continue
            local = pd.DatetimeIndex(series.index).tz_localize(NEW_YORK)
            day = local[-1].date()
            opens_at = pd.Timestamp(session_bounds(day)[0])
            keep = (local.date == day) & (local >= opens_at)
            keep &= local < opens_at + pd.Timedelta(minutes=session_minutes)
            frames.append(
                pd.DataFrame(
                    {
                        "symbol": symbol,
                        "ts": local[keep].tz_convert("UTC"),
                        "price": series["close"].to_numpy()[keep],
                        "volume": series["volume"].to_numpy()[keep],
                        "source": self.name,
                    }
                )
            )
        if not frames:
            return
        ticks = pd.concat(frames, ignore_index=True).sort_values(["ts", "symbol"], kind="stable")
        for _, minute in ticks.groupby("ts", sort=True):
            if stop is not None and stop.is_set():
                return
            if clock.paced:
                clock.sleep_until(minute["ts"].iloc[0].to_pydatetime(), stop)
            yield minute.reset_index(drop=True)
