"""What each processed-zone dataset looks like and where it lands in Snowflake.

A :class:`Dataset` is the schema contract between the Spark jobs' output (lower-case
columns, ``date=YYYY-MM-DD`` Hive partitions) and the warehouse table (the seed's upper-case
column names, plus columns added since, appended at the end so existing tables can be
upgraded with ``ALTER TABLE … ADD COLUMN IF NOT EXISTS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from market_common.identifiers import validate_identifier
from market_common.settings import SnowflakeSettings

# The only SQL types a column may have: the DDL is generated from these strings.
SQL_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "FLOAT": pa.float64(),
    "NUMBER(38,0)": pa.int64(),
    "TIMESTAMP_NTZ": pa.timestamp("us"),
}


@dataclass(frozen=True)
class Column:
    """One target column; ``sources`` are processed-zone names tried in order (column, then partition)."""

    name: str
    sql_type: str
    sources: tuple[str, ...] = ()
    nullable: bool = True
    # True for columns the seed's table did not have: added to existing tables on upgrade.
    added: bool = False

    def __post_init__(self) -> None:
        validate_identifier(self.name)
        if self.sql_type not in SQL_TYPES:
            raise ValueError(f"column {self.name}: unsupported SQL type {self.sql_type!r}")

    @property
    def arrow_type(self) -> pa.DataType:
        return SQL_TYPES[self.sql_type]


@dataclass(frozen=True)
class Dataset:
    """A processed-zone dataset and its target table (columns in DDL order)."""

    name: str
    subdir: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    load_ts_column: str
    # Structured Streaming file sinks commit files through ``_spark_metadata``.
    uses_commit_log: bool
    database_of: Callable[[SnowflakeSettings], str]
    table_of: Callable[[SnowflakeSettings], str]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name}: duplicate column names")
        missing = [k for k in (*self.key, self.load_ts_column) if k not in names]
        if missing:
            raise ValueError(f"dataset {self.name}: key/load columns {missing} not in columns")

    @property
    def value_columns(self) -> tuple[Column, ...]:
        """Columns filled from the processed zone (all but the load timestamp)."""
        return tuple(c for c in self.columns if c.name != self.load_ts_column)

    @property
    def compared_columns(self) -> tuple[str, ...]:
        """Non-key value columns: a row is "changed" when one of these differs."""
        return tuple(c.name for c in self.value_columns if c.name not in self.key)


HISTORICAL = Dataset(
    name="historical",
    subdir="historical",
    columns=(
        Column("SYMBOL", "VARCHAR", ("symbol",), nullable=False),
        Column("DATE", "DATE", ("trade_date", "date"), nullable=False),
        Column("DAILY_OPEN", "FLOAT", ("open",)),
        Column("DAILY_HIGH", "FLOAT", ("high",)),
        Column("DAILY_LOW", "FLOAT", ("low",)),
        Column("DAILY_CLOSE", "FLOAT", ("close",)),
        Column("DAILY_VOLUME", "NUMBER(38,0)", ("volume",)),
        Column("BATCH_LOAD_TIMESTAMP", "TIMESTAMP_NTZ", nullable=False),
        Column("SOURCE", "VARCHAR", ("source",), added=True),
    ),
    key=("SYMBOL", "DATE"),
    load_ts_column="BATCH_LOAD_TIMESTAMP",
    uses_commit_log=False,
    database_of=lambda sf: sf.batch_database,
    table_of=lambda sf: sf.batch_table,
)

REALTIME = Dataset(
    name="realtime",
    subdir="realtime",
    columns=(
        Column("SYMBOL", "VARCHAR", ("symbol",), nullable=False),
        Column("WINDOW_START", "TIMESTAMP_NTZ", ("window_start",), nullable=False),
        Column("WINDOW_END", "TIMESTAMP_NTZ", ("window_end",)),
        Column("MA_15M", "FLOAT", ("ma_15m",)),
        Column("MA_1H", "FLOAT", ("ma_1h",)),
        Column("VOLATILITY_15M", "FLOAT", ("volatility_15m",)),
        Column("VOLUME_SUM_15M", "NUMBER(38,0)", ("volume_sum_15m",)),
        Column("LOAD_TIMESTAMP", "TIMESTAMP_NTZ", nullable=False),
        Column("TICK_COUNT", "NUMBER(38,0)", ("tick_count",), added=True),
        Column("WINDOW_OPEN", "FLOAT", ("window_open",), added=True),
        Column("WINDOW_HIGH", "FLOAT", ("window_high",), added=True),
        Column("WINDOW_LOW", "FLOAT", ("window_low",), added=True),
        Column("WINDOW_CLOSE", "FLOAT", ("window_close",), added=True),
    ),
    key=("SYMBOL", "WINDOW_START"),
    load_ts_column="LOAD_TIMESTAMP",
    uses_commit_log=True,
    database_of=lambda sf: sf.stream_database,
    table_of=lambda sf: sf.stream_table,
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (HISTORICAL, REALTIME)}
