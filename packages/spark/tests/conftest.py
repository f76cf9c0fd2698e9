"""Shared test helpers: a Spark session factory and independent pandas references.

The references recompute expected results with pandas from the same input rows, never
from Spark, so a wrong Spark transform cannot agree with them by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from market_common.identifiers import is_valid_symbol
from market_common.settings import MarketSettings, load_settings

pytest_plugins = ["market_testing.pytest_plugin"]


@pytest.fixture(scope="module")
def spark_settings() -> MarketSettings:
    """Settings the module's session is built from; integration files override this."""
    return load_settings()


@pytest.fixture(scope="module")
def spark(spark_settings: MarketSettings) -> Iterator[SparkSession]:
    """One small local session per test file (2 cores, UI off): each start costs ~10 s.

    Connector packages are always included: the JVM outlives ``stop()``, so whichever file
    starts it first decides the classpath for all later files in the same process.
    """
    from market_spark.session import build_session

    tuned = spark_settings.model_copy(
        update={
            "spark": spark_settings.spark.model_copy(
                update={"master": "local[2]", "shuffle_partitions": 2}
            )
        }
    )
    session = build_session(tuned, app_name="market-spark-tests", ui_enabled=False)
    yield session
    session.stop()


def plant_bad_bars(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Append corrupted copies of valid bars and re-deliveries; return planted reasons."""
    base = raw.iloc[:20].copy()
    planted: list[tuple[str, dict[str, object]]] = [
        ("missing_field", {"symbol": None}),
        ("missing_field", {"trade_date": None}),
        ("invalid_symbol", {"symbol": "bad sym"}),
        ("missing_field", {"close": np.nan}),
        ("unsupported_schema_version", {"schema_version": 2}),
        ("non_finite", {"high": np.inf}),
        ("non_positive_price", {"low": 0.0}),
        ("non_positive_price", {"open": -1.0, "low": -1.0}),
        ("high_below_low", {"high": 1.0, "low": 2.0, "open": 1.5, "close": 1.5}),
        ("price_outside_range", {"open": 10_000.0}),
        ("negative_volume", {"volume": -5}),
        ("out_of_bounds", {"volume": 2**63 - 1}),
        ("out_of_bounds", {"close": 1e308, "high": 1e308}),
        ("future_timestamp", {"trade_date": date(2030, 1, 2)}),
    ]
    bad = []
    for i, (_, changes) in enumerate(planted):
        row = base.iloc[i].to_dict() | changes
        row["kafka_offset"] = 10_000_000 + i
        bad.append(row)
    # Re-deliveries: the higher offset (the later publication) wins; on the same offset (a
    # re-consumed record) the later ingested_at.
    later = raw.iloc[20:25].copy()
    later["close"] = later["low"]
    later["ingested_at"] = later["ingested_at"] + pd.Timedelta(hours=1)
    tie = raw.iloc[30:33].copy()
    tie["close"] = tie["high"]
    tie["kafka_offset"] = tie["kafka_offset"] + 20_000_000
    stale = raw.iloc[40:42].copy()
    stale["close"] = stale["open"]
    stale["ingested_at"] = stale["ingested_at"] - pd.Timedelta(days=1)
    # A correction (higher offset) published before a group reset re-consumed the original
    # (same offset, newer ingested_at): the correction must still win.
    corrected = raw.iloc[50:53].copy()
    corrected["close"] = corrected["open"]
    corrected["kafka_offset"] = corrected["kafka_offset"] + 30_000_000
    reconsumed = raw.iloc[50:53].copy()
    reconsumed["ingested_at"] = reconsumed["ingested_at"] + pd.Timedelta(days=2)
    out = pd.concat(
        [raw, pd.DataFrame(bad), later, tie, stale, corrected, reconsumed], ignore_index=True
    )
    counts: dict[str, int] = {}
    for reason, _ in planted:
        counts[reason] = counts.get(reason, 0) + 1
    return out, counts


def reference_historical(raw: pd.DataFrame, *, today: date) -> tuple[pd.DataFrame, pd.Series]:
    """(processed rows, quarantine counts by reason) computed with pandas."""
    df = raw.copy()
    prices = df[["open", "high", "low", "close"]]
    # Written independently of market_common.contract_spec, in the contract's order.
    required = ["schema_version", "symbol", "trade_date", *prices.columns, "volume", "source"]
    checks = [
        ("unsupported_schema_version", df["schema_version"].notna() & (df["schema_version"] != 1)),
        ("missing_field", df[required].isna().any(axis=1)),
        ("invalid_symbol", ~df["symbol"].map(lambda s: isinstance(s, str) and is_valid_symbol(s))),
        ("non_finite", ~np.isfinite(prices.astype(float)).all(axis=1)),
        ("non_positive_price", (prices <= 0).any(axis=1)),
        ("negative_volume", df["volume"] < 0),
        (
            "out_of_bounds",
            ((prices < 1e-4) | (prices > 1e7)).any(axis=1) | (df["volume"] > 10**12),
        ),
        ("high_below_low", df["high"] < df["low"]),
        (
            "price_outside_range",
            (df["open"] < df["low"])
            | (df["open"] > df["high"])
            | (df["close"] < df["low"])
            | (df["close"] > df["high"]),
        ),
        ("future_timestamp", df["trade_date"].map(lambda d: d is not None and d > today)),
    ]
    reason = pd.Series([None] * len(df), index=df.index, dtype=object)
    for name, mask in reversed(checks):
        reason = reason.mask(mask.fillna(False).astype(bool), name)
    valid = df[reason.isna()]
    latest = (
        valid.sort_values(["kafka_offset", "kafka_partition", "ingested_at"])
        .groupby(["symbol", "trade_date"], as_index=False)
        .tail(1)
    )
    cols = [
        "symbol",
        "trade_date",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "source",
        "ingested_at",
    ]
    processed = latest[cols].sort_values(["trade_date", "symbol"]).reset_index(drop=True)
    return processed, reason.dropna().value_counts().sort_index()


def reference_windows(ticks: pd.DataFrame) -> pd.DataFrame:
    """15-minute window metrics + trailing-hour mean computed directly from ticks."""
    t = ticks.sort_values(["ts", "kafka_partition", "kafka_offset"]).copy()
    t["ts"] = pd.to_datetime(t["ts"], utc=True)
    t["window_start"] = t["ts"].dt.floor("15min")
    rows = []
    for (sym, start), g in t.groupby(["symbol", "window_start"], sort=True):
        end = start + pd.Timedelta(minutes=15)
        s = t[t["symbol"] == sym]
        hour = s[(s["ts"] >= end - pd.Timedelta(hours=1)) & (s["ts"] < end)]
        rows.append(
            {
                "symbol": sym,
                "window_start": start,
                "window_end": end,
                "ma_15m": g["price"].mean(),
                "ma_1h": hour["price"].mean(),
                "volatility_15m": g["price"].std(ddof=1) if len(g) > 1 else np.nan,
                "volume_sum_15m": int(g["volume"].sum()),
                "tick_count": len(g),
                "window_open": g["price"].iloc[0],
                "window_high": g["price"].max(),
                "window_low": g["price"].min(),
                "window_close": g["price"].iloc[-1],
            }
        )
    return pd.DataFrame(rows)


def assert_frames_close(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Same key set, exact integers/strings, floats within 1e-9 relative (summation order)."""
    a = actual.sort_values(keys).reset_index(drop=True)
    e = expected.sort_values(keys).reset_index(drop=True)
    assert list(a[keys].astype(str).itertuples(index=False)) == list(
        e[keys].astype(str).itertuples(index=False)
    ), "row keys differ"
    for col in e.columns:
        if col in keys:
            continue
        if pd.api.types.is_float_dtype(e[col]) or pd.api.types.is_float_dtype(a[col]):
            np.testing.assert_allclose(
                a[col].astype(float), e[col].astype(float), rtol=1e-9, equal_nan=True, err_msg=col
            )
        else:
            assert a[col].astype(str).tolist() == e[col].astype(str).tolist(), col


@pytest.fixture
def references() -> dict[str, Callable[..., object]]:
    return {
        "plant_bad_bars": plant_bad_bars,
        "historical": reference_historical,
        "windows": reference_windows,
        "assert_close": assert_frames_close,
    }
