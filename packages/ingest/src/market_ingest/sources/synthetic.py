"""Deterministic synthetic market: geometric Brownian motion per symbol.

Each symbol's drift, volatility, starting price and typical volume derive from a hash
of ``(seed, symbol)``, and its random stream is its own generator seeded the same way,
walked from a fixed anchor date. So a bar depends only on (seed, symbol, date): a
one-day run reproduces the same bar as a ten-year backfill, and adding a symbol to the
universe does not change the others. All arithmetic is numpy over (days x symbols).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from market_ingest.calendar import (
    NEW_YORK,
    NYSE,
    SESSION_MINUTES,
    last_completed_session,
    previous_trading_day,
    session_bounds,
    trading_days,
)
from market_ingest.clock import Clock

ANCHOR = date(2000, 1, 3)  # first trading day of the generated history
# Paths are pinned to each symbol's starting price on this day, so decades of GBM drift
# before or after it stay in a plausible price range.
REFERENCE_DAY = date(2020, 1, 2)
TRADING_DAYS_PER_YEAR = 252
SECONDS_PER_SESSION = SESSION_MINUTES * 60
_SYMBOL_CHUNK = 64  # symbols per vectorised block: bounds memory at ~25 MB per block
_PRICE_FLOOR = 0.01


@dataclass(frozen=True)
class SymbolParams:
    """GBM parameters of one symbol (annualised drift/volatility)."""

    mu: float
    sigma: float
    price0: float
    volume0: float
    stream: int


def symbol_params(symbol: str, seed: int) -> SymbolParams:
    digest = hashlib.blake2b(f"{seed}|{symbol}".encode(), digest_size=16).digest()
    u = np.frombuffer(digest[:8], dtype=np.uint16) / 65535.0
    return SymbolParams(
        mu=-0.02 + 0.17 * float(u[0]),
        sigma=0.15 + 0.30 * float(u[1]),
        price0=float(np.exp(np.log(5.0) + (np.log(400.0) - np.log(5.0)) * u[2])),
        volume0=float(np.exp(np.log(2e5) + (np.log(5e7) - np.log(2e5)) * u[3])),
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
        return len(trading_days(ANCHOR, REFERENCE_DAY)) - 1

    def daily_frame(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """All bars of ``[start, end]`` in one frame, ordered by (trade_date, symbol)."""
        if start < ANCHOR:
            raise ValueError(f"synthetic history starts on {ANCHOR}; got start={start}")
        all_days = trading_days(ANCHOR, max(end, REFERENCE_DAY))
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
        the wall clock starts now. Prices continue from the previous day's synthetic close.
        """
        start = clock.now() if clock.paced else self._session_start(clock.now())
        steps = int(session_minutes * 60 / interval_s)
        per_frame = steps_per_frame or (1 if clock.paced else max(1, 60 // max(len(symbols), 1)))
        prev_day = previous_trading_day(start.astimezone(NEW_YORK).date())
        prev = self.daily_frame(symbols, prev_day, prev_day)
        last_close = (
            prev.groupby("symbol", sort=False)["close"].last().reindex(list(symbols)).to_numpy()
        )
        params = [symbol_params(s, self.seed) for s in symbols]
        sigma = np.array([p.sigma for p in params])
        vol_per_step = np.array([p.volume0 for p in params]) * interval_s / SECONDS_PER_SESSION
        step_sigma = sigma * np.sqrt(interval_s / (TRADING_DAYS_PER_YEAR * SECONDS_PER_SESSION))
        stream = int.from_bytes(
            hashlib.blake2b("|".join(symbols).encode(), digest_size=8).digest(), "little"
        )
        rng = np.random.default_rng([self.seed, stream, start.toordinal()])
        log_price = np.log(last_close)
        sym_arr = np.asarray(symbols, dtype=object)
        base = pd.Timestamp(start).tz_convert("UTC").floor("s")
        for k0 in range(0, steps, per_frame):
            if stop is not None and stop.is_set():
                return
            n = min(per_frame, steps - k0)
            z = rng.standard_normal((n, len(symbols)))
            paths = log_price + np.cumsum(step_sigma * z - 0.5 * step_sigma**2, axis=0)
            log_price = paths[-1]
            volume = rng.poisson(np.broadcast_to(vol_per_step, (n, len(symbols))) + 1.0)
            offsets = (np.arange(k0, k0 + n) * interval_s * 1e6).astype("timedelta64[us]")
            ts = base + pd.to_timedelta(np.repeat(offsets, len(symbols)))
            clock.sleep_until(ts[-1].to_pydatetime(), stop)
            yield pd.DataFrame(
                {
                    "symbol": np.tile(sym_arr, n),
                    "ts": ts,
                    "price": np.round(np.maximum(np.exp(paths.ravel()), _PRICE_FLOOR), 4),
                    "volume": np.maximum(volume.ravel(), 1).astype(np.int64),
                    "source": self.name,
                }
            )

    @staticmethod
    def _session_start(now: datetime) -> datetime:
        return session_bounds(last_completed_session(now))[0].astimezone(UTC)


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
