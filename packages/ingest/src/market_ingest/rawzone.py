"""Raw-zone layout: object keys, Hive partitions and the Parquet schemas.

Layout (``<raw>`` = ``settings.s3.raw_prefix``, default ``raw``)::

    <raw>/historical/year=YYYY/part-<topic>-p<PPPP>-o<FIRST>-<LAST>.parquet
    <raw>/realtime/date=YYYY-MM-DD/hour=HH/part-<topic>-p<PPPP>-o<FIRST>-<LAST>.parquet

* ``year`` is the *trade_date* year, ``date``/``hour`` the tick's UTC event time, so
  Spark prunes by event time. (One directory per trade_date would mean ~2,500 directories
  of a few hundred rows for a 10-year backfill; ``ingest_date`` would make keys depend on
  the wall clock, so a re-delivery on another day would duplicate rows.)
* ``FIRST``-``LAST`` is the Kafka offset *window* the object belongs to: windows are
  fixed, offset-aligned ranges ``[k*W, (k+1)*W - 1]`` (``W`` = ``window_rows``), so the
  key depends only on (topic, partition, window) and on the record's own event time,
  never on when or how often the data was consumed. An object holds the valid records of
  its window whose event time falls in its Hive partition; offsets are zero-padded to 20
  digits so keys sort by offset.
* The window size is a run option, and a group reset forgets the one the offsets were
  committed with, so a window may be written over objects of *another* size. Writing a
  window therefore removes its offsets from every other object of the same (topic,
  partition, Hive partition) whose window overlaps it (:func:`without_offsets`): each
  offset stays in exactly one object whatever sizes successive runs used.
* Partition columns (``year``, ``date``, ``hour``) live in the path only; Spark's
  partition discovery adds them (as int / date / int).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from market_ingest.records import Kind

Stream = Literal["historical", "realtime"]
STREAM_KIND: dict[str, Kind] = {"historical": "daily_bar", "realtime": "tick"}

METADATA_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "ingested_at",
)
_UTC_US = pa.timestamp("us", tz="UTC")
_METADATA_FIELDS = [
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("kafka_timestamp", _UTC_US),  # broker/producer timestamp of the message
    pa.field("ingested_at", _UTC_US, nullable=False),  # when this consumer read it
]

SCHEMAS: dict[str, pa.Schema] = {
    "historical": pa.schema(
        [
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("trade_date", pa.date32(), nullable=False),
            pa.field("open", pa.float64(), nullable=False),
            pa.field("high", pa.float64(), nullable=False),
            pa.field("low", pa.float64(), nullable=False),
            pa.field("close", pa.float64(), nullable=False),
            pa.field("volume", pa.int64(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("schema_version", pa.int32(), nullable=False),
            *_METADATA_FIELDS,
        ]
    ),
    "realtime": pa.schema(
        [
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("ts", _UTC_US, nullable=False),
            pa.field("price", pa.float64(), nullable=False),
            pa.field("volume", pa.int64(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("schema_version", pa.int32(), nullable=False),
            *_METADATA_FIELDS,
        ]
    ),
}


def window_of(offset: int, window_rows: int) -> tuple[int, int]:
    """The fixed offset window ``(first, last)`` containing ``offset``."""
    first = (offset // window_rows) * window_rows
    return first, first + window_rows - 1


def object_key(
    raw_prefix: str,
    stream: Stream,
    partition_path: str,
    *,
    topic: str,
    partition: int,
    first: int,
    last: int,
) -> str:
    """Deterministic key of one raw object (see the module docstring)."""
    prefix = objects_prefix(raw_prefix, stream, partition_path, topic=topic, partition=partition)
    return f"{prefix}{first:020d}-{last:020d}.parquet"


def objects_prefix(
    raw_prefix: str, stream: Stream, partition_path: str, *, topic: str, partition: int
) -> str:
    """Key prefix shared by every object of (topic, partition) in one Hive partition."""
    name = f"part-{topic}-p{partition:04d}-o"
    return "/".join(p.strip("/") for p in (raw_prefix, stream, partition_path, name) if p)


_WINDOW_SUFFIX = re.compile(r"(\d{20})-(\d{20})\.parquet")


def window_in_key(key: str, prefix: str) -> tuple[int, int] | None:
    """The offset window ``(first, last)`` named by ``key`` below ``prefix``, else None."""
    match = _WINDOW_SUFFIX.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
    return (int(match[1]), int(match[2])) if match else None


def without_offsets(table: pa.Table, first: int, last: int) -> pa.Table:
    """``table`` minus its rows whose ``kafka_offset`` lies in ``[first, last]``."""
    offsets = table.column("kafka_offset")
    return table.filter(pc.or_(pc.less(offsets, first), pc.greater(offsets, last)))


def to_table(
    stream: Stream,
    frame: pd.DataFrame,
    *,
    topic: str,
    partition: int,
    offsets: np.ndarray,
    timestamps_ms: np.ndarray,
    ingested_at: datetime,
) -> pa.Table:
    """Arrow table in the raw schema from canonical rows plus their Kafka coordinates."""
    n = len(frame)
    cols: dict[str, pa.Array] = {
        "symbol": pa.array(frame["symbol"].to_numpy(), pa.string()),
    }
    if stream == "historical":
        cols["trade_date"] = pa.array(
            frame["trade_date"].to_numpy().astype("datetime64[D]"), pa.date32()
        )
        for name in ("open", "high", "low", "close"):
            cols[name] = pa.array(frame[name].to_numpy(), pa.float64())
    else:
        ts = frame["ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        cols["ts"] = pa.array(ts.astype("datetime64[us]"), _UTC_US)
        cols["price"] = pa.array(frame["price"].to_numpy(), pa.float64())
    cols["volume"] = pa.array(frame["volume"].to_numpy(), pa.int64())
    cols["source"] = pa.array(frame["source"].to_numpy(), pa.string())
    cols["schema_version"] = pa.array(frame["schema_version"].to_numpy(), pa.int32())
    cols["kafka_topic"] = pa.array(np.full(n, topic, dtype=object), pa.string())
    cols["kafka_partition"] = pa.array(np.full(n, partition, dtype=np.int32), pa.int32())
    cols["kafka_offset"] = pa.array(offsets, pa.int64())
    cols["kafka_timestamp"] = pa.array(
        timestamps_ms.astype("datetime64[ms]").astype("datetime64[us]"), _UTC_US
    )
    stamp = np.datetime64(ingested_at.replace(tzinfo=None), "us")
    cols["ingested_at"] = pa.array(np.full(n, stamp), _UTC_US)
    return pa.Table.from_pydict(cols, schema=SCHEMAS[stream])


def split_by_partition(stream: Stream, table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """``(hive_path, rows)`` groups of ``table`` by event-time partition, sorted."""
    if table.num_rows == 0:
        return
    if stream == "historical":
        days = table.column("trade_date").to_numpy().astype("datetime64[D]")
        labels = np.char.add("year=", days.astype("datetime64[Y]").astype(str))
    else:
        ts = table.column("ts").to_numpy().astype("datetime64[h]")
        text = np.datetime_as_string(ts, unit="h")  # 2024-01-02T14
        labels = np.char.add(
            np.char.add("date=", np.char.partition(text, "T")[:, 0]),
            np.char.add("/hour=", np.char.partition(text, "T")[:, 2]),
        )
    uniq, inverse = np.unique(labels, return_inverse=True)
    for i, label in enumerate(uniq.tolist()):
        yield label, table.filter(pa.array(inverse == i))


def parquet_bytes(table: pa.Table) -> bytes:
    """Snappy Parquet (Spark's default codec), dictionary-encoded strings."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy", use_dictionary=True)
    return sink.getvalue()
