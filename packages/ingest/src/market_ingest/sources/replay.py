"""Replay: re-emit records from CSV/Parquet files (exports, raw-zone objects, fixtures).

Files holding ``trade_date`` are daily bars, files holding ``ts`` are ticks. Kafka
metadata columns written by the raw-zone consumers are dropped, so raw objects can be
replayed as they are; any other column is kept and, if unknown, rejected by the contract.
:meth:`ReplaySource.symbols` and :meth:`ReplaySource.first_trade_date` describe the files,
so a replay's universe and backfill window default to what the user's files hold.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from market_ingest.calendar import NYSE, get_calendar
from market_ingest.clock import Clock
from market_ingest.errors import ReplayInputError
from market_ingest.rawzone import METADATA_COLUMNS


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        elif path.suffix.lower() in {".csv", ".gz"}:
            frame = pd.read_csv(path, dtype={"symbol": str, "source": str}, keep_default_na=True)
        else:
            raise ReplayInputError(f"{path}: unsupported file type (use .csv or .parquet)")
    except (OSError, ValueError) as exc:
        raise ReplayInputError(f"cannot read replay file {path}: {exc}") from exc
    return frame.drop(columns=[c for c in METADATA_COLUMNS if c in frame.columns])


def _parse_time(frame: pd.DataFrame, column: str, *, utc: bool) -> pd.DataFrame:
    col = frame[column]
    if col.dtype == object:
        parsed = pd.to_datetime(col, utc=utc, errors="coerce", format="ISO8601")
        if parsed.notna().all():  # otherwise keep the text: the contract names the bad value
            frame = frame.assign(**{column: parsed})
    return frame


class ReplaySource:
    """Reads the given files in order; ``chunk_rows`` bounds each emitted frame.

    ``calendar`` is the data's trading calendar (exchange_calendars code, e.g. ``24/7`` for
    crypto): it decides the default backfill end (the last completed session), not which
    rows are replayed.
    """

    name = "replay"

    def __init__(
        self, paths: Sequence[Path], *, chunk_rows: int = 50_000, calendar: str = NYSE
    ) -> None:
        get_calendar(calendar)  # an unknown code fails here, naming the valid ones
        files: list[Path] = []
        for p in paths:
            p = Path(p)
            if p.is_dir():
                files.extend(sorted(q for q in p.rglob("*") if q.suffix in {".csv", ".parquet"}))
            elif p.is_file():
                files.append(p)
            else:
                raise ReplayInputError(f"replay path {p} does not exist")
        if not files:
            raise ReplayInputError("no replay files given: pass --replay-path FILE_OR_DIR")
        self.files = files
        self.chunk_rows = chunk_rows
        self.calendar = calendar

    @functools.cached_property
    def _described(self) -> tuple[tuple[str, ...], date | None]:
        symbols: set[str] = set()
        first: pd.Timestamp | None = None
        for path in self.files:
            frame = _read(path)
            if "symbol" in frame.columns:
                symbols.update(str(s).strip().upper() for s in frame["symbol"].dropna())
            if "trade_date" in frame.columns:
                dates = pd.to_datetime(frame["trade_date"], errors="coerce").dropna()
                if len(dates) and (first is None or dates.min() < first):
                    first = dates.min()
        return tuple(sorted(s for s in symbols if s)), first.date() if first is not None else None

    def symbols(self) -> list[str]:
        """Every distinct ticker in the files (upper-cased, sorted): the replay's universe."""
        return list(self._described[0])

    def first_trade_date(self) -> date | None:
        """The earliest parseable ``trade_date`` of the daily files (None: ticks only)."""
        return self._described[1]

    def _frames(self, column: str) -> Iterator[pd.DataFrame]:
        for path in self.files:
            frame = _read(path)
            if column not in frame.columns:
                continue
            frame = _parse_time(frame, column, utc=column == "ts")
            for i in range(0, len(frame), self.chunk_rows):
                yield frame.iloc[i : i + self.chunk_rows].reset_index(drop=True)

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> Iterator[pd.DataFrame]:
        """Daily rows within ``[start, end]`` (rows whose date does not parse are kept for
        the contract to reject). Symbols are not filtered: unknown ones go to the DLQ."""
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        for frame in self._frames("trade_date"):
            if pd.api.types.is_datetime64_dtype(frame["trade_date"]):
                frame = frame[(frame["trade_date"] >= lo) & (frame["trade_date"] <= hi)]
            yield frame

    def ticks(
        self,
        symbols: Sequence[str],
        *,
        clock: Clock,
        session_minutes: int = 390,
        stop: threading.Event | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Tick rows in file order; a paced clock spaces frames as their timestamps were."""
        first_ts: pd.Timestamp | None = None
        started = clock.now()
        for frame in self._frames("ts"):
            if stop is not None and stop.is_set():
                return
            if clock.paced and pd.api.types.is_datetime64_any_dtype(frame["ts"]) and len(frame):
                first_ts = first_ts if first_ts is not None else frame["ts"].iloc[0]
                for _, group in frame.groupby("ts", sort=True):
                    clock.sleep_until(started + (group["ts"].iloc[0] - first_ts), stop)
                    if stop is not None and stop.is_set():
                        return
                    yield group.reset_index(drop=True)
            else:
                yield frame
