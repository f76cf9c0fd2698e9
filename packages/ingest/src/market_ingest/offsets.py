"""Offset bookkeeping of the raw-zone consumer, apart from its I/O.

Per assigned partition, a :class:`PartitionBook` knows which offset windows are buffered,
which are written (durable), which dead letters still wait for the DLQ's acknowledgement,
and so which offset may be committed. Nothing here talks to Kafka or the object store,
so the rules of the delivery guarantee (see :mod:`market_ingest.consumer`) are stated, and
tested, in one place:

* a window is due for writing once complete (a later offset was seen), or on a timed /
  final flush while it holds unwritten rows;
* the durable offset advances only over written windows, in offset order;
* the commit target is the durable offset, capped at the lowest offset whose dead letter
  is not acknowledged: a dead letter is never committed past (at-least-once DLQ);
* the window size is recorded in the commit metadata and a partition keeps the size it
  was committed with, so a run with another ``--window-rows`` writes the same object keys
  and raw holds each record once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from market_ingest.rawzone import window_of

_METADATA_KEY = "window_rows"


@dataclass
class Window:
    """The buffered rows of one offset window of one partition."""

    first: int
    last: int
    tables: list[pa.Table] = field(default_factory=list)
    max_offset: int = -1  # highest offset seen (valid or not)
    dirty: bool = False  # rows/offsets not yet covered by a write
    written_rows: int = 0  # rows already in the raw zone from this window (provisional)

    def table(self) -> pa.Table | None:
        """All buffered rows, or ``None`` when the window holds no valid record."""
        tables = [t for t in self.tables if t.num_rows]
        return pa.concat_tables(tables) if tables else None


@dataclass
class Letter:
    """A dead letter sent but not yet acknowledged (``future``: the producer's)."""

    key: bytes | None
    value: bytes
    future: Any


@dataclass
class PartitionBook:
    """Buffered windows, durable/committed offsets and unacknowledged dead letters."""

    window_rows: int
    dlq_floor: int  # offsets below this were dead-lettered by an earlier run
    committed: int | None = None
    durable: int | None = None  # next offset whose predecessors are all durable
    windows: dict[int, Window] = field(default_factory=dict)
    unacked: dict[int, Letter] = field(default_factory=dict)

    def window(self, wid: int) -> Window:
        """The buffer of window ``wid`` (created on first use)."""
        if wid not in self.windows:
            self.windows[wid] = Window(*window_of(wid * self.window_rows, self.window_rows))
        return self.windows[wid]

    def due(self, position: int | None, *, include_open: bool) -> Iterator[tuple[Window, bool]]:
        """``(window, complete)`` for each window to write now, in offset order.

        The caller writes a dirty window, then calls :meth:`written`; stopping half-way
        (a failed write) leaves the durable offset where the last written window ends.
        """
        for wid in sorted(self.windows):
            window = self.windows[wid]
            complete = position is not None and position > window.last
            if complete or (include_open and window.dirty):
                yield window, complete

    def written(self, window: Window, *, complete: bool) -> None:
        """Record that ``window`` is in the raw zone (all rows seen so far)."""
        window.dirty = False
        if complete:
            self.durable = window.last + 1
            del self.windows[window.first // self.window_rows]
        else:
            self.durable = window.max_offset + 1

    def commit_target(self) -> int | None:
        """The offset to commit now, or ``None`` if there is nothing new to commit."""
        if self.durable is None:
            return None
        target = min([self.durable, *self.unacked])
        return target if target != self.committed else None

    def metadata(self) -> str:
        """Commit metadata recording this partition's window size."""
        return json.dumps({_METADATA_KEY: self.window_rows})


def window_rows_from(metadata: str | None, default: int) -> int:
    """The window size a partition was committed with, else ``default``."""
    try:
        value = json.loads(metadata or "{}").get(_METADATA_KEY)
    except (ValueError, AttributeError):
        return default
    return value if isinstance(value, int) and value > 0 else default
