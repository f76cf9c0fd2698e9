"""Alpha Vantage source against a loopback HTTP server answering with recorded responses.

The server is a real ``http.server`` on 127.0.0.1: the source's own urllib request, query
string, JSON decoding, throttling and tenacity retries all run. Sleeps are injected and
recorded (the rate limiter's waits are asserted, never waited for).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from market_ingest.clock import SimulatedClock
from market_ingest.errors import SourceDataError, SourceUnavailableError
from market_ingest.records import validate_frame
from market_ingest.sources.alphavantage import (
    AlphaVantageKeyMissingError,
    AlphaVantageSource,
    api_key_from_env,
)

DATA = Path(__file__).parent / "data" / "alphavantage"
KEY = "test-key-not-a-secret"


class Recorded(BaseHTTPRequestHandler):
    """``?function=F&symbol=S`` → ``F_S.json``; symbol LIMITED answers the rate-limit note
    first; unknown files answer the API's "Invalid API call" error (HTTP 200, like the API)."""

    requests: list[dict[str, str]] = []
    limited_once: set[str] = set()

    def do_GET(self) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
        type(self).requests.append(query)
        symbol = query.get("symbol", "")
        if query.get("apikey") != KEY:
            body = {"Error Message": "the parameter apikey is invalid or missing."}
        elif symbol.startswith("LIMITED") and symbol not in type(self).limited_once:
            type(self).limited_once.add(symbol)
            body = json.loads((DATA / "rate_limit_note.json").read_text())
        else:
            real = symbol.removeprefix("LIMITED") or symbol
            path = DATA / f"{query.get('function')}_{real}.json"
            source = path if path.is_file() else DATA / "error_invalid_symbol.json"
            body = json.loads(source.read_text())
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    Recorded.requests, Recorded.limited_once = [], set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/query"
    finally:
        httpd.shutdown()
        httpd.server_close()


class FakeTime:
    """A monotonic clock that only moves when the source sleeps (records every sleep)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def _source(base_url: str, clock: FakeTime, **kwargs: object) -> AlphaVantageSource:
    return AlphaVantageSource(
        api_key=KEY, base_url=base_url, sleep=clock.sleep, monotonic=clock.monotonic, **kwargs
    )


def test_daily_bars_match_the_recorded_series_and_pass_the_contract(server: str) -> None:
    clock = FakeTime()
    frames = list(
        _source(server, clock).daily_bars(["IBM", "MSFT"], date(2024, 5, 1), date(2024, 5, 31))
    )
    bars = pd.concat(frames, ignore_index=True)

    recorded = json.loads((DATA / "TIME_SERIES_DAILY_IBM.json").read_text())["Time Series (Daily)"]
    may = {d: v for d, v in recorded.items() if d.startswith("2024-05")}
    ibm = bars[bars["symbol"] == "IBM"].set_index(
        bars.loc[bars["symbol"] == "IBM", "trade_date"].dt.strftime("%Y-%m-%d")
    )
    assert sorted(ibm.index) == sorted(may), "every May bar, nothing outside the range"
    for day, values in may.items():
        assert ibm.loc[day, "close"] == float(values["4. close"])
        assert ibm.loc[day, "volume"] == int(values["5. volume"])
    checked = validate_frame(
        "daily_bar", bars.assign(schema_version=1), now=datetime(2024, 6, 1, tzinfo=UTC)
    )
    assert not checked.rejects and len(checked.frame) == len(bars)
    assert [r["function"] for r in Recorded.requests] == ["TIME_SERIES_DAILY"] * 2
    assert clock.sleeps == [pytest.approx(12.0)], "the second call waited for the free tier"


def test_intraday_becomes_ticks_of_the_last_regular_session_in_utc(server: str) -> None:
    clock = FakeTime()
    ticks = pd.concat(
        _source(server, clock, min_interval_s=0.0).ticks(
            ["IBM"], clock=SimulatedClock(datetime(2024, 6, 1, tzinfo=UTC)), session_minutes=30
        )
    )
    assert len(ticks) == 30, "one tick per minute of the first 30 minutes of the session"
    assert ticks["ts"].min() == pd.Timestamp("2024-05-31T13:30:00Z"), "09:30 New York in UTC"
    recorded = json.loads((DATA / "TIME_SERIES_INTRADAY_IBM.json").read_text())
    first = recorded["Time Series (1min)"]["2024-05-31 09:30:00"]
    assert ticks["price"].iloc[0] == float(first["4. close"])
    checked = validate_frame(
        "tick", ticks.assign(schema_version=1), now=datetime(2024, 6, 1, tzinfo=UTC)
    )
    assert not checked.rejects


def test_rate_limit_note_is_retried_with_backoff(server: str) -> None:
    clock = FakeTime()
    bars = pd.concat(
        _source(server, clock).daily_bars(["LIMITEDIBM"], date(2024, 5, 1), date(2024, 5, 31))
    )
    assert len(bars) > 0 and len(Recorded.requests) == 2, "one refused call, one retry"
    assert sum(clock.sleeps) >= 12.0, "the retry backed off at least one free-tier interval"


def test_an_invalid_symbol_is_a_data_error_naming_it(server: str) -> None:
    with pytest.raises(SourceDataError, match="'NOPE'.*Invalid API call"):
        list(_source(server, FakeTime()).daily_bars(["NOPE"], date(2024, 5, 1), date(2024, 5, 31)))
    assert len(Recorded.requests) == 1, "errors that retrying cannot fix are not retried"


def test_unreachable_host_fails_clearly_after_the_retries() -> None:
    clock = FakeTime()
    source = _source("http://127.0.0.1:9/query", clock, attempts=3, timeout_s=2.0)  # discard port
    with pytest.raises(SourceUnavailableError, match="unreachable after 3 attempts"):
        list(source.daily_bars(["IBM"], date(2024, 5, 1), date(2024, 5, 31)))
    assert source.calls == 3


def test_the_key_comes_from_the_environment() -> None:
    assert api_key_from_env({"MARKET_ALPHAVANTAGE_API_KEY": " k1 "}) == "k1"
    assert api_key_from_env({"ALPHAVANTAGE_API_KEY": "k2"}) == "k2"
    with pytest.raises(AlphaVantageKeyMissingError, match="MARKET_ALPHAVANTAGE_API_KEY"):
        api_key_from_env({})
