"""Deterministic synthetic market: geometric Brownian motion per symbol.

Each symbol's drift and random stream derive from a hash of ``(seed, symbol)``; its price
level, volatility and typical volume come from the shipped, dated reference table
``reference_prices.csv`` (so AAPL trades near $200 and JNJ near $150, with TSLA far more
volatile than KO), or from the same hash for symbols the table does not list. Every path
is walked from a fixed anchor date and pinned to the reference close on the table's
``as_of`` day. So a bar depends only on (seed, symbol, date): a one-day run reproduces the
same bar as a ten-year backfill, and adding a symbol to the universe does not change the
others. All arithmetic is numpy over (days x symbols).

Ticks of a session are a Brownian bridge from that day's synthetic open to its close,
scaled to stay inside its high/low: the realtime feed and the daily bar of the same day
agree (a full session ends exactly at the bar's close).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources

import numpy as np
import pandas as pd

from market_ingest.calendar import (
    NEW_YORK,
    NYSE,
    SESSION_MINUTES,
    is_trading_day,
    last_completed_session,
    previous_trading_day,
    session_bounds,
    trading_days,
)
from market_ingest.clock import Clock

ANCHOR = date(2000, 1, 3)  # first trading day of the generated history
REFERENCE_FILE = "reference_prices.csv"
TRADING_DAYS_PER_YEAR = 252
SECONDS_PER_SESSION = SESSION_MINUTES * 60
_SYMBOL_CHUNK = 64  # symbols per vectorised block: bounds memory at ~25 MB per block
_PRICE_FLOOR = 0.01


@dataclass(frozen=True)
class SymbolParams:
    """GBM parameters of one symbol (annualised drift/volatility, price on the pin day)."""

    mu: float
    sigma: float
    price0: float
    volume0: float
    stream: int


@dataclass(frozen=True)
class ReferenceLevel:
    """One row of the shipped reference table (see the comment at its top)."""

    close: float
    annual_volatility: float
    avg_daily_volume: float


@dataclass(frozen=True)
class ReferenceTable:
    """The dated reference levels: paths are pinned to ``levels[s].close`` on ``as_of``."""

    as_of: date
    levels: Mapping[str, ReferenceLevel]


class ReferenceTableError(ValueError):
    """The shipped reference table is malformed (one as_of date, positive levels)."""


@functools.cache
def reference_table() -> ReferenceTable:
    """The table shipped beside this module, read once per process."""
    text = resources.files(__package__ or "market_ingest.sources").joinpath(REFERENCE_FILE)
    with text.open() as handle:
        frame = pd.read_csv(handle, comment="#")
    dates = frame["as_of"].unique()
    numbers = frame[["close", "annual_volatility", "avg_daily_volume"]]
    if len(dates) != 1 or not (numbers > 0).all().all() or frame["symbol"].duplicated().any():
        raise ReferenceTableError(
            f"{REFERENCE_FILE} needs one as_of date, unique symbols and positive levels; "
            f"got as_of={list(dates)}"
        )
    return ReferenceTable(
        as_of=date.fromisoformat(str(dates[0])),
        levels={
            str(symbol): ReferenceLevel(float(close), float(volatility), float(volume))
            for symbol, close, volatility, volume in zip(
                frame["symbol"].tolist(),
                frame["close"].tolist(),
                frame["annual_volatility"].tolist(),
                frame["avg_daily_volume"].tolist(),
                strict=True,
            )
        },
    )


def symbol_params(symbol: str, seed: int) -> SymbolParams:
    """Hashed drift and stream; level, volatility and volume from the reference table."""
    digest = hashlib.blake2b(f"{seed}|{symbol}".encode(), digest_size=16).digest()
    u = np.frombuffer(digest[:8], dtype=np.uint16) / 65535.0
    level = reference_table().levels.get(symbol)
    return SymbolParams(
        mu=0.12 * float(u[0]),
        sigma=level.annual_volatility if level else 0.15 + 0.30 * float(u[1]),
        price0=(
            level.close
            if level
            else float(np.exp(np.log(10.0) + (np.log(400.0) - np.log(10.0)) * u[2]))
        ),
        volume0=(
            level.avg_daily_volume
            if level
            else float(np.exp(np.log(2e5) + (np.log(5e7) - np.log(2e5)) * u[3]))
        ),
        stream=int.from_bytes(digest[8:], "little"),
    )


def _round_ohlc(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, ...]:
    o, h, lo, c = (np.round(np.maximum(x, _PRICE_FLOOR), 4) for x in (o, h, lo, c))
    # Rounding can break low <= open/close <= high by a tick: widen the range instead.
    h = np.maximum.reduce([h, o, c])
    lo = np.minimum.reduce([lo, o, c])
    return o, h, lo, c


class SyntheticSource:
    """Seeded GBM daily bars and ticks (the default source; no network)."""

    name = "synthetic"
    calendar = NYSE

    def __init__(self, *, seed: int = 42, chunk_days: int = 21) -> None:
        self.seed = seed
        self.chunk_days = chunk_days

    # ------------------------------------------------------------------ daily bars

    def _block(
        self, symbols: Sequence[str], n_days: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """OHLCV arrays of shape (n_days, len(symbols)) from the anchor on."""
        params = [symbol_params(s, self.seed) for s in symbols]
        z = np.stack(
            [
                np.random.default_rng([self.seed, p.stream]).standard_normal((n_days, 5))
                for p in params
            ],
            axis=1,
        )  # (days, symbols, 5)
        dt = 1.0 / TRADING_DAYS_PER_YEAR
        mu = np.array([p.mu for p in params])
        sigma = np.array([p.sigma for p in params])
        vol_dt = sigma * np.sqrt(dt)
        log_ret = (mu - 0.5 * sigma**2) * dt + vol_dt * z[:, :, 0]
        price0 = np.array([p.price0 for p in params])
        walk = np.cumsum(log_ret, axis=0)
        ref = min(self._reference_index(), n_days - 1)
        close = price0 * np.exp(walk - walk[ref])
        prev_close = np.vstack([close[:1] * np.exp(-log_ret[:1]), close[:-1]])
        open_ = prev_close * np.exp(0.25 * vol_dt * z[:, :, 1])
        high = np.maximum(open_, close) * np.exp(0.5 * vol_dt * np.abs(z[:, :, 2]))
        low = np.minimum(open_, close) * np.exp(-0.5 * vol_dt * np.abs(z[:, :, 3]))
        o, h, lo, c = _round_ohlc(open_, high, low, close)
        volume0 = np.array([p.volume0 for p in params])
        volume = volume0 * np.exp(0.35 * z[:, :, 4]) * (1.0 + 8.0 * np.abs(log_ret))
        return o, h, lo, c, np.maximum(volume.astype(np.int64), 1)

    @staticmethod
    def _reference_index() -> int:
        return len(trading_days(ANCHOR, reference_table().as_of)) - 1

    def daily_frame(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """All bars of ``[start, end]`` in one frame, ordered by (trade_date, symbol)."""
        if start < ANCHOR:
            raise ValueError(f"synthetic history starts on {ANCHOR}; got start={start}")
        all_days = trading_days(ANCHOR, max(end, reference_table().as_of))
        last = int(np.searchsorted(all_days, np.datetime64(end, "D"), side="right"))
        first = int(np.searchsorted(all_days, np.datetime64(start, "D")))
        days = all_days[first:last]
        n_sym = len(symbols)
        if len(days) == 0 or n_sym == 0:
            return _empty_daily()
        cols = {k: np.empty((len(days), n_sym)) for k in ("open", "high", "low", "close")}
        volume = np.empty((len(days), n_sym), dtype=np.int64)
        for j in range(0, n_sym, _SYMBOL_CHUNK):
            block = self._block(symbols[j : j + _SYMBOL_CHUNK], len(all_days))
            sl = slice(j, j + _SYMBOL_CHUNK)
            for key, arr in zip(("open", "high", "low", "close"), block[:4], strict=True):
                cols[key][:, sl] = arr[first:last]
            volume[:, sl] = block[4][first:last]
        # Row-major ravel of (days, symbols) gives date-major order.
        return pd.DataFrame(
            {
                "symbol": np.tile(np.asarray(symbols, dtype=object), len(days)),
                "trade_date": np.repeat(days.astype("datetime64[ns]"), n_sym),
                **{k: v.ravel() for k, v in cols.items()},
                "volume": volume.ravel(),
                "source": self.name,
            }
        )

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> Iterator[pd.DataFrame]:
        frame = self.daily_frame(symbols, start, end)
        rows = self.chunk_days * max(len(symbols), 1)
        for i in range(0, len(frame), rows):
            yield frame.iloc[i : i + rows].reset_index(drop=True)

    # ------------------------------------------------------------------ ticks

    def ticks(
        self,
        symbols: Sequence[str],
        *,
        clock: Clock,
        session_minutes: int = SESSION_MINUTES,
        stop: threading.Event | None = None,
        interval_s: float = 1.0,
        steps_per_frame: int | None = None,
    ) -> Iterator[pd.DataFrame]:
        """One tick per symbol every ``interval_s`` for ``session_minutes``.

        Simulated clocks replay the last completed session (so no tick is in the future);
        the wall clock starts now. Prices follow that session day's synthetic daily bar
        (the previous trading day's on a closed day): from its open, inside its high/low,
        ending at its close when the whole session is emitted.
        """
        start = clock.now() if clock.paced else self._session_start(clock.now())
        steps = int(session_minutes * 60 / interval_s)
        per_frame = steps_per_frame or (1 if clock.paced else max(1, 60 // max(len(symbols), 1)))
        day = start.astimezone(NEW_YORK).date()
        if not is_trading_day(day):
            day = previous_trading_day(day)
        bar = self.daily_frame(symbols, day, day).set_index("symbol").reindex(list(symbols))
        stream = int.from_bytes(
            hashlib.blake2b("|".join(symbols).encode(), digest_size=8).digest(), "little"
        )
        rng = np.random.default_rng([self.seed, stream, day.toordinal()])
        sigma = np.array([symbol_params(s, self.seed).sigma for s in symbols])
        full_session = max(int(SECONDS_PER_SESSION / interval_s), steps)
        prices = session_path(bar, sigma, full_session, rng)
        volume0 = np.array([symbol_params(s, self.seed).volume0 for s in symbols])
        vol_per_step = volume0 * interval_s / SECONDS_PER_SESSION
        sym_arr = np.asarray(symbols, dtype=object)
        base = pd.Timestamp(start).tz_convert("UTC").floor("s")
        for k0 in range(0, steps, per_frame):
            if stop is not None and stop.is_set():
                return
            n = min(per_frame, steps - k0)
            volume = rng.poisson(np.broadcast_to(vol_per_step, (n, len(symbols))) + 1.0)
            offsets = (np.arange(k0, k0 + n) * interval_s * 1e6).astype("timedelta64[us]")
            ts = base + pd.to_timedelta(np.repeat(offsets, len(symbols)))
            clock.sleep_until(ts[-1].to_pydatetime(), stop)
            yield pd.DataFrame(
                {
                    "symbol": np.tile(sym_arr, n),
                    "ts": ts,
                    "price": prices[k0 : k0 + n].ravel() / PRICE_UNITS,
                    "volume": np.maximum(volume.ravel(), 1).astype(np.int64),
                    "source": self.name,
                }
            )

    @staticmethod
    def _session_start(now: datetime) -> datetime:
        return session_bounds(last_completed_session(now))[0].astimezone(UTC)


PRICE_UNITS = 10_000  # ticks are kept as integer 1/10,000 dollars: the bars' 4 decimals


def session_path(
    bar: pd.DataFrame, sigma: np.ndarray, steps: int, rng: np.random.Generator
) -> np.ndarray:
    """Tick prices in 1/PRICE_UNITS dollars, shape (steps, symbols), for one day's bars.

    ``bar`` is indexed by symbol with open/high/low/close columns. Per symbol: a Brownian
    bridge in log price from the open (first step) to the close (last step) with its daily
    volatility, shrunk where needed so that no point leaves [low, high], then rounded like
    the bars, so every tick lies within the day's range and the last one is the close.
    Worked in blocks of symbols and stored as int32, so a 500-symbol one-second session
    stays near 50 MB.
    """
    out = np.empty((steps, len(bar)), dtype=np.int32)
    t = (np.arange(1, steps + 1, dtype=np.float64) / steps)[:, None]
    z = rng.standard_normal((steps, len(bar)))
    for j in range(0, len(bar), _SYMBOL_CHUNK):
        cols = slice(j, j + _SYMBOL_CHUNK)
        day = bar.iloc[cols]
        log_open, log_close = np.log(day["open"].to_numpy()), np.log(day["close"].to_numpy())
        log_high, log_low = np.log(day["high"].to_numpy()), np.log(day["low"].to_numpy())
        walk = np.cumsum(z[:, cols] / np.sqrt(steps), axis=0)
        bridge = (walk - t * walk[-1]) * (sigma[cols] / np.sqrt(TRADING_DAYS_PER_YEAR))
        trend = log_open + (log_close - log_open) * t
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(bridge > 0, (log_high - trend) / bridge, (log_low - trend) / bridge)
        scale = np.clip(np.min(np.where(bridge != 0, room, np.inf), axis=0), 0.0, 1.0)
        path = np.exp(trend + scale * bridge)
        path[-1] = day["close"].to_numpy()
        clipped = np.clip(path, day["low"].to_numpy(), day["high"].to_numpy())
        out[:, cols] = np.round(clipped * PRICE_UNITS).astype(np.int32)
    return out


def _empty_daily() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series([], dtype=object),
            "trade_date": pd.Series([], dtype="datetime64[ns]"),
            **{k: pd.Series([], dtype="float64") for k in ("open", "high", "low", "close")},
            "volume": pd.Series([], dtype="int64"),
            "source": pd.Series([], dtype=object),
        }
    )
