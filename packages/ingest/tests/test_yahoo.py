"""yfinance normalisation and retry behaviour on constructed yfinance-shaped frames."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from market_ingest.clock import SimulatedClock
from market_ingest.errors import SourceUnavailableError
from market_ingest.sources.yahoo import (
    YahooRateLimited,
    YahooSource,
    YahooUnreachable,
    normalise_download,
    yahoo_download,
)

TICKERS = ["AAPL", "MSFT"]
PRICES = ["Close", "High", "Low", "Open", "Volume"]


def yf_frame(index: pd.DatetimeIndex, *, seed: int = 0, ticker_first: bool = False) -> pd.DataFrame:
    """A frame shaped like ``yf.download(TICKERS, group_by=...)`` (yfinance >= 0.2.5x)."""
    rng = np.random.default_rng(seed)
    cols = pd.MultiIndex.from_product([PRICES, TICKERS], names=["Price", "Ticker"])
    data = {}
    for price, ticker in cols:
        data[(price, ticker)] = (
            rng.integers(1_000, 9_000, len(index)).astype(float)
            if price == "Volume"
            else rng.uniform(100, 110, len(index))
        )
    frame = pd.DataFrame(data, index=index, columns=cols)
    if ticker_first:
        frame = frame.swaplevel(axis=1).sort_index(axis=1)
        frame.columns.names = ["Ticker", "Price"]
    return frame


DAILY_INDEX = pd.DatetimeIndex(["2024-05-30", "2024-05-31", "2024-06-03"], name="Date")
INTRADAY_INDEX = pd.date_range(
    "2024-06-03 09:30", periods=4, freq="1min", tz="America/New_York", name="Datetime"
)


def test_daily_normalisation_maps_every_cell() -> None:
    raw = yf_frame(DAILY_INDEX)
    out = normalise_download(raw, intraday=False)
    assert list(out.columns) == [
        "symbol",
        "trade_date",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "source",
    ]
    assert len(out) == len(DAILY_INDEX) * len(TICKERS)
    for row in out.itertuples():
        when = pd.Timestamp(row.trade_date)
        for ours, theirs in (
            ("open", "Open"),
            ("high", "High"),
            ("low", "Low"),
            ("close", "Close"),
        ):
            assert getattr(row, ours) == raw.loc[when, (theirs, row.symbol)]
        assert row.volume == raw.loc[when, ("Volume", row.symbol)]
    assert out["volume"].dtype == np.int64 and (out["source"] == "yfinance").all()
    assert out["trade_date"].dt.tz is None, "daily bars keep the exchange-local date"


def test_ticker_first_orientation_is_equivalent() -> None:
    a = normalise_download(yf_frame(DAILY_INDEX, seed=3), intraday=False)
    b = normalise_download(yf_frame(DAILY_INDEX, seed=3, ticker_first=True), intraday=False)
    pd.testing.assert_frame_equal(a, b)


def test_intraday_is_utc() -> None:
    raw = yf_frame(INTRADAY_INDEX)
    out = normalise_download(raw, intraday=True)
    assert str(out["ts"].dt.tz) == "UTC"
    assert set(out["ts"]) == set(INTRADAY_INDEX.tz_convert("UTC"))
    first = out[(out.symbol == "MSFT")].iloc[0]
    assert first["price"] == raw[("Close", "MSFT")].iloc[0]


def test_empty_and_unlisted_rows() -> None:
    empty = yf_frame(DAILY_INDEX).iloc[0:0]
    assert normalise_download(empty, intraday=False).empty
    assert normalise_download(None, intraday=True).empty
    raw = yf_frame(DAILY_INDEX)
    for price in PRICES:
        raw.loc[DAILY_INDEX[0], (price, "MSFT")] = np.nan  # not yet listed
    raw.loc[DAILY_INDEX[1], ("Open", "AAPL")] = np.nan  # partial: kept for the DLQ
    out = normalise_download(raw, intraday=False)
    assert len(out) == len(DAILY_INDEX) * len(TICKERS) - 1
    assert out["open"].isna().sum() == 1


class Script:
    """A download function that fails a scripted number of times, then answers."""

    def __init__(self, failures: list[BaseException], frame: pd.DataFrame | None) -> None:
        self.failures = list(failures)
        self.frame = frame
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> pd.DataFrame | None:
        self.calls.append(kwargs)
        if self.failures:
            raise self.failures.pop(0)
        return self.frame


def test_retries_with_exponential_backoff() -> None:
    sleeps: list[float] = []
    script = Script(
        [YahooRateLimited("429"), YahooUnreachable("dns"), TimeoutError()], yf_frame(DAILY_INDEX)
    )
    src = YahooSource(download=script, sleep=sleeps.append, base_delay=1.5, attempts=5)
    frames = list(src.daily_bars(TICKERS, date(2024, 5, 30), date(2024, 6, 3)))
    # The shared retry policy: doubling from base_delay, plus a jitter of at most base_delay.
    assert [lo <= s <= lo + 1.5 for s, lo in zip(sleeps, [1.5, 3.0, 6.0], strict=True)] == [
        True
    ] * 3
    assert len(frames) == 1 and len(frames[0]) == 6
    call = script.calls[-1]
    assert (
        call["auto_adjust"] is True and call["end"] == "2024-06-04"
    ), "end is exclusive in yfinance"


def test_unreachable_raises_a_clear_error() -> None:
    sleeps: list[float] = []
    script = Script([YahooUnreachable("Could not resolve host")] * 10, None)
    src = YahooSource(download=script, sleep=sleeps.append, attempts=4, base_delay=10, max_delay=15)
    with pytest.raises(
        SourceUnavailableError, match="yfinance could not reach Yahoo Finance after 4 attempts"
    ):
        list(src.daily_bars(TICKERS, date(2024, 5, 30), date(2024, 6, 3)))
    assert len(sleeps) == 3 and 10 <= sleeps[0] <= 15 and sleeps[1:] == [15, 15]


def test_empty_answer_is_not_an_error() -> None:
    src = YahooSource(download=Script([], pd.DataFrame()), sleep=lambda s: None)
    frames = list(src.daily_bars(TICKERS, date(2024, 6, 1), date(2024, 6, 2)))
    assert all(f.empty for f in frames)


def _logging_download(message: str) -> Any:
    def fake(**kwargs: Any) -> pd.DataFrame:
        logging.getLogger("yfinance").error(message)  # what yf.download does on failure
        return yf_frame(DAILY_INDEX).iloc[0:0]

    return fake


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            "['AAPL']: DNSError('Failed to perform, curl: (6) Could not resolve host')",
            YahooUnreachable,
        ),
        ("['AAPL']: YFRateLimitError('Too Many Requests. Rate limited.')", YahooRateLimited),
    ],
)
def test_yahoo_download_turns_logged_failures_into_errors(
    message: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        yahoo_download(yf_download=_logging_download(message), tickers=TICKERS)


def test_simulated_ticks_emit_the_latest_bars_once() -> None:
    src = YahooSource(download=Script([], yf_frame(INTRADAY_INDEX)), sleep=lambda s: None)
    frames = list(
        src.ticks(
            TICKERS, clock=SimulatedClock(datetime(2024, 6, 3, 20, tzinfo=UTC)), session_minutes=5
        )
    )
    assert len(frames) == 1 and len(frames[0]) == len(INTRADAY_INDEX) * len(TICKERS)
    assert list(frames[0].columns) == ["symbol", "ts", "price", "volume", "source"]
