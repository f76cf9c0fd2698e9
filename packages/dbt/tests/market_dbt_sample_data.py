"""Deterministic source data for the dbt tests: the loader tables, generated and inserted.

The tables are created here with the loaders' DDL because dbt only reads them; prices are
rounded to cents like real bars, so formatted values (signal_summary) never hit a rounding tie.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

BATCH_DDL = """
create table if not exists {db}.PUBLIC.DAILY_STOCK_METRICS (
    SYMBOL varchar, DATE date, DAILY_OPEN float, DAILY_HIGH float, DAILY_LOW float,
    DAILY_CLOSE float, DAILY_VOLUME number, BATCH_LOAD_TIMESTAMP timestamp_ntz, SOURCE varchar
)"""
STREAM_DDL = """
create table if not exists {db}.PUBLIC.REALTIME_STOCK_ANALYTICS (
    SYMBOL varchar, WINDOW_START timestamp_ntz, WINDOW_END timestamp_ntz, MA_15M float,
    MA_1H float, VOLATILITY_15M float, VOLUME_SUM_15M number, LOAD_TIMESTAMP timestamp_ntz,
    TICK_COUNT number, WINDOW_OPEN float, WINDOW_HIGH float, WINDOW_LOW float,
    WINDOW_CLOSE float
)"""
BATCH_DB = "STOCKMARKETBATCH"
STREAM_DB = "STOCKMARKETSTREAM"


def utc_now() -> dt.datetime:
    """Naive UTC "now" to the second, as the loaders write TIMESTAMP_NTZ."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def daily_bars(
    days_by_symbol: Mapping[str, int],
    *,
    end_date: dt.date = dt.date(2025, 6, 30),
    loaded_at: dt.datetime,
    seed: int = 7,
) -> pd.DataFrame:
    """Random-walk OHLCV bars on business days ending at ``end_date``, one seed per run."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol, n_days in days_by_symbol.items():
        dates = pd.bdate_range(end=end_date, periods=n_days).date
        closes = np.round(100 * np.exp(np.cumsum(rng.normal(0.0004, 0.018, n_days))), 2)
        # Every 37th day repeats the previous close: "unchanged" must be exercised.
        closes[37::37] = closes[36:-1:37]
        opens = np.round(np.r_[closes[0], closes[:-1]] * (1 + rng.normal(0, 0.006, n_days)), 2)
        wick = np.abs(rng.normal(0, 0.008, n_days))
        frames.append(
            pd.DataFrame(
                {
                    "SYMBOL": symbol,
                    "DATE": dates,
                    "DAILY_OPEN": opens,
                    "DAILY_HIGH": np.round(np.maximum(opens, closes) * (1 + wick), 2),
                    "DAILY_LOW": np.round(np.minimum(opens, closes) * (1 - wick), 2),
                    "DAILY_CLOSE": closes,
                    "DAILY_VOLUME": rng.integers(1_000_000, 50_000_000, n_days),
                    "BATCH_LOAD_TIMESTAMP": loaded_at,
                    "SOURCE": "synthetic",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def realtime_windows(
    symbols: Sequence[str],
    *,
    sessions: Sequence[dt.date] = (dt.date(2025, 6, 26), dt.date(2025, 6, 27)),
    windows_per_session: int = 26,
    loaded_at: dt.datetime,
    seed: int = 11,
) -> pd.DataFrame:
    """15-minute windows from 13:30 UTC per session, with volume spikes and varied volatility."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for symbol in symbols:
        price = float(rng.uniform(50, 500))
        for session in sessions:
            open_at = dt.datetime.combine(session, dt.time(13, 30))
            for i in range(windows_per_session):
                start = open_at + dt.timedelta(minutes=15 * i)
                first = price
                price = price * (1 + rng.normal(0, 0.003))
                high, low = max(first, price) * 1.001, min(first, price) * 0.999
                ma_15m = (first + price + high + low) / 4
                volume = int(rng.integers(50_000, 150_000))
                if rng.random() < 0.1:
                    volume *= 4
                rows.append(
                    {
                        "SYMBOL": symbol,
                        "WINDOW_START": start,
                        "WINDOW_END": start + dt.timedelta(minutes=15),
                        "MA_15M": ma_15m,
                        "MA_1H": ma_15m * (1 + rng.normal(0, 0.002)),
                        "VOLATILITY_15M": ma_15m * rng.uniform(0.0002, 0.009),
                        "VOLUME_SUM_15M": volume,
                        "LOAD_TIMESTAMP": loaded_at,
                        "TICK_COUNT": int(rng.integers(20, 200)),
                        "WINDOW_OPEN": round(first, 2),
                        "WINDOW_HIGH": round(high, 2),
                        "WINDOW_LOW": round(low, 2),
                        "WINDOW_CLOSE": round(price, 2),
                    }
                )
    return pd.DataFrame(rows)


def _python_value(value: Any) -> Any:
    """numpy / pandas scalars as the plain Python types the connector can bind."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _insert(cursor: Any, table: str, frame: pd.DataFrame, chunk: int = 2000) -> None:
    """executemany in chunks: the connector folds each chunk into one multi-row INSERT."""
    columns = ", ".join(frame.columns)
    placeholders = ", ".join(["%s"] * len(frame.columns))
    records = [tuple(map(_python_value, row)) for row in frame.itertuples(index=False, name=None)]
    for i in range(0, len(records), chunk):
        cursor.executemany(
            f"insert into {table} ({columns}) values ({placeholders})",  # noqa: S608
            records[i : i + chunk],
        )


def load_sources(
    connection: Any, daily: pd.DataFrame | None, realtime: pd.DataFrame | None
) -> None:
    """(Re)create the loader tables of the given frames and fill them; ``None`` skips one."""
    cursor = connection.cursor()
    for db, ddl, table, frame in (
        (BATCH_DB, BATCH_DDL, "DAILY_STOCK_METRICS", daily),
        (STREAM_DB, STREAM_DDL, "REALTIME_STOCK_ANALYTICS", realtime),
    ):
        if frame is None:
            continue
        cursor.execute(f"create database if not exists {db}")
        cursor.execute(f"create schema if not exists {db}.PUBLIC")
        cursor.execute(f"drop table if exists {db}.PUBLIC.{table}")
        cursor.execute(ddl.format(db=db))
        _insert(cursor, f"{db}.PUBLIC.{table}", frame)
    cursor.close()
