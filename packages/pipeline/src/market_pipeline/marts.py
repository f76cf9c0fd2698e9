"""Read the dbt marts into pandas: the one input of the report, the digest and the summary.

Marts live in ``<batch_database>.ANALYTICS`` (see dbt/dbt_project.yml and
macros/generate_schema_name.sql: the local and prod targets use custom schemas as-is).
Frames get lower-case column names, floats instead of ``Decimal`` and pandas timestamps,
so downstream code never depends on which driver (Snowflake, fakesnow) produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import pandas as pd

from market_common.identifiers import qualified

MARTS_SCHEMA = "ANALYTICS"
PERFORMANCE = "mart_stock_performance"
DAILY_SUMMARY = "mart_daily_summary"
REALTIME_SIGNALS = "mart_realtime_signals"
MART_NAMES: tuple[str, ...] = (PERFORMANCE, DAILY_SUMMARY, REALTIME_SIGNALS)
# Grain order of each mart: rows come back sorted, so every consumer is deterministic.
ORDER_BY = {
    PERFORMANCE: ("symbol", "trade_date"),
    DAILY_SUMMARY: ("trade_date",),
    REALTIME_SIGNALS: ("window_start_at", "symbol"),
}
DATE_COLUMNS = ("trade_date",)
TIMESTAMP_COLUMNS = ("window_start_at", "window_end_at", "loaded_at")


class MartNotBuiltError(RuntimeError):
    """A mart table is missing: dbt has not built it in this database yet."""


class Cursor(Protocol):
    description: Sequence[Sequence[Any]] | None

    def execute(self, sql: str) -> Any: ...

    def fetchall(self) -> list[Sequence[Any]]: ...


class Connection(Protocol):
    """A DB-API connection (snowflake.connector, fakesnow, duckdb)."""

    def cursor(self) -> Any: ...


@dataclass(frozen=True)
class MartFrames:
    """The three marts as frames (lower-case columns, grain-ordered)."""

    performance: pd.DataFrame
    daily_summary: pd.DataFrame
    realtime_signals: pd.DataFrame

    def by_name(self) -> dict[str, pd.DataFrame]:
        return {
            PERFORMANCE: self.performance,
            DAILY_SUMMARY: self.daily_summary,
            REALTIME_SIGNALS: self.realtime_signals,
        }


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Lower-case columns, Decimal → float, dates → Timestamp (naive), timestamps → UTC-naive."""
    out = frame.rename(columns=str.lower).copy()
    for column in out.columns:
        series = out[column]
        if series.dtype == object and series.map(lambda v: isinstance(v, Decimal)).any():
            out[column] = pd.to_numeric(series.map(lambda v: float(v) if v is not None else None))
    for column in DATE_COLUMNS:
        if column in out:
            out[column] = pd.to_datetime(out[column])
    for column in TIMESTAMP_COLUMNS:
        if column in out:
            stamps = pd.to_datetime(out[column], utc=True)
            out[column] = stamps.dt.tz_localize(None)
    return out


def query_frame(connection: Connection, sql: str) -> pd.DataFrame:
    """Run ``sql`` and return the result as a frame (no driver-specific pandas helpers)."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql)
        columns = [str(c[0]) for c in cursor.description or ()]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
    finally:
        cursor.close()


def mart_relation(database: str, name: str, schema: str = MARTS_SCHEMA) -> str:
    return qualified(database, schema, name.upper())


def read_mart(
    connection: Connection, database: str, name: str, *, schema: str = MARTS_SCHEMA
) -> pd.DataFrame:
    """One mart, normalised and sorted by its grain."""
    relation = mart_relation(database, name, schema)
    order = ", ".join(ORDER_BY[name])
    try:
        sql = f"select * from {relation} order by {order}"  # noqa: S608 - validated names
        frame = query_frame(connection, sql)
    except Exception as exc:  # driver-specific "does not exist" errors have no common class
        if "does not exist" in str(exc).lower() or "not found" in str(exc).lower():
            raise MartNotBuiltError(
                f"{relation} does not exist: run `dbt build` (market-dbt build) against "
                f"database {database} first"
            ) from exc
        raise
    return normalise(frame).reset_index(drop=True)


def read_marts(connection: Connection, database: str, *, schema: str = MARTS_SCHEMA) -> MartFrames:
    """All three marts from ``<database>.<schema>``."""
    return MartFrames(
        performance=read_mart(connection, database, PERFORMANCE, schema=schema),
        daily_summary=read_mart(connection, database, DAILY_SUMMARY, schema=schema),
        realtime_signals=read_mart(connection, database, REALTIME_SIGNALS, schema=schema),
    )
