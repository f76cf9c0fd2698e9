"""Deterministic synthetic raw-zone data for tests and benchmarks (pandas, no Spark).

Frames follow the raw-zone contract of :mod:`market_spark.schemas` exactly as
``market_ingest`` writes it, so they can be written with pyarrow and read by the jobs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd


def symbols(n: int) -> list[str]:
    """``n`` distinct valid ticker symbols (``A``, ``B``, …, ``AA``, …)."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        name, k = "", i
        while True:
            name = chr(ord("A") + k % 26) + name
            k = k // 26 - 1
            if k < 0:
                break
        out.append(name)
        i += 1
    return out


def business_days(start: date, count: int) -> list[date]:
    return [d.date() for d in pd.bdate_range(start, periods=count)]


def raw_historical(
    syms: list[str],
    days: list[date],
    *,
    seed: int = 7,
    topic: str = "stock-market-batch",
    ingested_at: datetime = datetime(2024, 6, 1, tzinfo=UTC),
) -> pd.DataFrame:
    """Valid daily bars for every symbol x day, one Kafka delivery each."""
    rng = np.random.default_rng(seed)
    n_sym, n_day = len(syms), len(days)
    drift = rng.normal(0.0003, 0.02, size=(n_sym, n_day))
    close = 20.0 + 200.0 * rng.random((n_sym, 1)) * np.exp(np.cumsum(drift, axis=1))
    open_ = close * (1 + rng.normal(0, 0.01, size=close.shape))
    high = np.maximum(open_, close) * (1 + rng.random(close.shape) * 0.02)
    low = np.minimum(open_, close) * (1 - rng.random(close.shape) * 0.02)
    n = n_sym * n_day
    frame = pd.DataFrame(
        {
            "symbol": np.repeat(np.array(syms, dtype=object), n_day),
            "trade_date": np.tile(np.array(days, dtype=object), n_sym),
            "open": open_.ravel().round(4),
            "high": high.ravel().round(4),
            "low": low.ravel().round(4),
            "close": close.ravel().round(4),
            "volume": rng.integers(1_000, 10_000_000, size=n, dtype=np.int64),
            "source": "synthetic",
            "schema_version": np.int32(1),
            "kafka_topic": topic,
            "kafka_partition": (np.repeat(np.arange(n_sym), n_day) % 3).astype(np.int32),
            "kafka_offset": np.arange(n, dtype=np.int64),
            "ingested_at": pd.Timestamp(ingested_at),
        }
    )
    # Keep the open/close inside [low, high] after rounding.
    frame["high"] = frame[["high", "open", "close"]].max(axis=1)
    frame["low"] = frame[["low", "open", "close"]].min(axis=1)
    return frame


def ticks(
    syms: list[str],
    *,
    start: datetime,
    count: int,
    span: timedelta,
    seed: int = 11,
    topic: str = "stock-market-realtime",
) -> pd.DataFrame:
    """``count`` valid ticks spread over ``span`` from ``start`` (sorted by time).

    Timestamps are whole milliseconds, as ``Tick`` JSON carries them.
    """
    rng = np.random.default_rng(seed)
    offsets_ms = np.sort(rng.integers(0, int(span.total_seconds() * 1000), size=count))
    ts = pd.Timestamp(start) + pd.to_timedelta(offsets_ms, unit="ms")
    sym = rng.choice(np.array(syms, dtype=object), size=count)
    base = {s: 50.0 + 10.0 * i for i, s in enumerate(syms)}
    price = np.array([base[s] for s in sym]) * (1 + rng.normal(0, 0.01, size=count))
    return pd.DataFrame(
        {
            "symbol": sym,
            "ts": ts,
            "price": price.round(4),
            "volume": rng.integers(1, 1_000, size=count, dtype=np.int64),
            "source": "synthetic",
            "schema_version": np.int32(1),
            "kafka_topic": topic,
            "kafka_partition": np.int32(0),
            "kafka_offset": np.arange(count, dtype=np.int64),
            "ingested_at": pd.Timestamp(start) + span,
        }
    )


def tick_json(row: pd.Series | dict) -> bytes:  # type: ignore[type-arg]
    """The Kafka value of a tick, as the producer writes it (``Tick.to_json``)."""
    from market_common.contracts import Tick

    return Tick(
        symbol=row["symbol"],
        ts=pd.Timestamp(row["ts"]).to_pydatetime(),
        price=float(row["price"]),
        volume=int(row["volume"]),
        source=str(row["source"]),
    ).to_json()


def _arrow_schema(kind: str):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    if kind == "historical":
        head = [
            ("symbol", pa.string()),
            ("trade_date", pa.date32()),
            ("open", pa.float64()),
            ("high", pa.float64()),
            ("low", pa.float64()),
            ("close", pa.float64()),
        ]
    else:
        head = [("symbol", pa.string()), ("ts", ts), ("price", pa.float64())]
    return pa.schema(
        [
            *head,
            ("volume", pa.int64()),
            ("source", pa.string()),
            ("schema_version", pa.int32()),
            ("kafka_topic", pa.string()),
            ("kafka_partition", pa.int32()),
            ("kafka_offset", pa.int64()),
            ("ingested_at", ts),
        ]
    )


def to_parquet_bytes(frame: pd.DataFrame, kind: str) -> bytes:
    """Snappy Parquet with the raw zone's Arrow types (µs UTC timestamps), as ingest writes."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(
        frame, schema=_arrow_schema(kind), preserve_index=False, safe=False
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()
