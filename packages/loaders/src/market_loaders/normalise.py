"""Processed-zone Parquet → staging-table-shaped Arrow (columnar, no per-row Python).

Spark writes timestamps as INT96/nanoseconds and may leave ``trade_date`` only in the Hive
path; the staging table wants microsecond UTC ``TIMESTAMP_NTZ``, the seed's column names and
the bookkeeping columns of :mod:`market_loaders.sql`. Rows without a natural key cannot be
merged and are dropped (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from market_loaders.datasets import SQL_TYPES, Column, Dataset
from market_loaders.errors import FileSchemaError
from market_loaders.sql import SOURCE_OBJECT, SOURCE_ROW, SOURCE_SEQ, staging_columns


@dataclass(frozen=True)
class Normalised:
    table: pa.Table
    rows_read: int
    rows_rejected: int


def staging_schema(dataset: Dataset) -> pa.Schema:
    return pa.schema([(name, SQL_TYPES[sql_type]) for name, sql_type in staging_columns(dataset)])


def _from_partition(column: Column, raw: str, rows: int) -> pa.Array:
    value: object
    try:
        if column.sql_type == "DATE":
            value = date.fromisoformat(raw)
        elif column.sql_type == "VARCHAR":
            value = raw
        else:
            raise ValueError(f"partition values cannot fill a {column.sql_type} column")
    except ValueError as exc:
        raise FileSchemaError(f"column {column.name}: partition value {raw!r}: {exc}") from exc
    return pa.array([value] * rows, type=column.arrow_type)


def _cast(column: Column, values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    target = column.arrow_type
    if pa.types.is_timestamp(values.type) and values.type.tz is not None:
        # Arrow stores tz-aware timestamps as UTC instants: dropping the zone keeps UTC.
        values = pc.cast(values, pa.timestamp(values.type.unit))
    if pa.types.is_timestamp(values.type) and pa.types.is_timestamp(target):
        # INT96/nanosecond timestamps: Snowflake keeps microseconds at most in the stage file.
        return pc.cast(values, target, safe=False)
    if pa.types.is_floating(target) and pa.types.is_decimal(values.type):
        return pc.cast(values, target, safe=False)
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FileSchemaError(
            f"column {column.name}: cannot convert {values.type} to {column.sql_type}: {exc}"
        ) from exc


def normalise(
    table: pa.Table,
    dataset: Dataset,
    *,
    partitions: dict[str, str],
    object_key: str,
    sequence: int,
    load_ts: datetime,
) -> Normalised:
    """Shape one file's rows like the staging table; raise :class:`FileSchemaError` if impossible."""
    rows = table.num_rows
    arrays: dict[str, pa.ChunkedArray | pa.Array] = {}
    present = set(table.column_names)
    for column in dataset.value_columns:
        source = next((s for s in column.sources if s in present), None)
        if source is not None:
            arrays[column.name] = _cast(column, table.column(source))
            continue
        part = next((s for s in column.sources if s in partitions), None)
        if part is None:
            raise FileSchemaError(
                f"column {column.name}: none of {list(column.sources)} is in the file "
                f"(has {sorted(present)}) or its partition path"
            )
        arrays[column.name] = _from_partition(column, partitions[part], rows)

    ts_type = next(c for c in dataset.columns if c.name == dataset.load_ts_column).arrow_type
    arrays[dataset.load_ts_column] = pa.array([load_ts] * rows, type=ts_type)
    arrays[SOURCE_OBJECT] = pa.array([object_key] * rows, type=pa.string())
    arrays[SOURCE_SEQ] = pa.array([sequence] * rows, type=pa.int64())
    arrays[SOURCE_ROW] = pa.array(range(rows), type=pa.int64())

    schema = staging_schema(dataset)
    out = pa.table([arrays[name] for name in schema.names], schema=schema)
    keep = None
    for key in dataset.key:
        valid = pc.is_valid(out.column(key))
        keep = valid if keep is None else pc.and_(keep, valid)
    if keep is not None:
        out = out.filter(keep)
    return Normalised(table=out, rows_read=rows, rows_rejected=rows - out.num_rows)
