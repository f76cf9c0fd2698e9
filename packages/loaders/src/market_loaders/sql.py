"""SQL text of the loader, generated from validated identifiers only.

Every database/schema/table/column name goes through ``validate_identifier`` (via
:class:`TableRef` and :class:`~market_loaders.datasets.Column`), and every *value* is a bind
parameter (``?``, qmark style) or travels inside the staged Parquet files, so no data ever
becomes SQL text. The statements stay in the subset that both Snowflake and the fakesnow
emulator run identically (fakesnow limits are listed in market_loaders.loader).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from market_common.identifiers import qualified, validate_identifier
from market_loaders.datasets import Dataset

# Bookkeeping columns of the staging table: which file a row came from and its position,
# so that the MERGE source keeps exactly one row per natural key (the latest one).
SOURCE_OBJECT = "LOADER_SOURCE_OBJECT"
SOURCE_SEQ = "LOADER_SOURCE_SEQ"
SOURCE_ROW = "LOADER_SOURCE_ROW"
STAGING_EXTRA_COLUMNS: tuple[tuple[str, str], ...] = (
    (SOURCE_OBJECT, "VARCHAR"),
    (SOURCE_SEQ, "NUMBER(38,0)"),
    (SOURCE_ROW, "NUMBER(38,0)"),
)

AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("TARGET_TABLE", "VARCHAR NOT NULL"),
    ("OBJECT_KEY", "VARCHAR NOT NULL"),
    ("ETAG", "VARCHAR"),
    ("SIZE_BYTES", "NUMBER(38,0)"),
    ("ROW_COUNT", "NUMBER(38,0)"),
    ("LOADED_AT", "TIMESTAMP_NTZ NOT NULL"),
    ("RUN_ID", "VARCHAR"),
)

# PUT takes a file URL, not a bind parameter: only our own temp paths, with no quoting chars.
_SAFE_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9_./\-*]+$")


@dataclass(frozen=True)
class TableRef:
    """A validated ``DATABASE.SCHEMA.NAME`` reference."""

    database: str
    schema: str
    name: str

    def __post_init__(self) -> None:
        for part in (self.database, self.schema, self.name):
            validate_identifier(part)

    @property
    def fqn(self) -> str:
        return qualified(self.database, self.schema, self.name)

    def sibling(self, name: str) -> TableRef:
        """Another object in the same schema."""
        return TableRef(self.database, self.schema, name)


def create_database(database: str) -> str:
    return f"create database if not exists {validate_identifier(database)}"


def create_schema(database: str, schema: str) -> str:
    return f"create schema if not exists {qualified(database, schema)}"


def use_schema(database: str, schema: str) -> str:
    # CREATE DATABASE/SCHEMA switch the session's context; make it explicit again.
    return f"use schema {qualified(database, schema)}"


def select_columns(database: str, schema: str, tables: int) -> str:
    """``(table, column)`` of ``tables`` named tables (bind parameters) in one schema."""
    marks = ", ".join("?" for _ in range(tables))
    return (
        f"select table_name, column_name from {validate_identifier(database)}"  # noqa: S608
        f".information_schema.columns where table_schema = ? and table_name in ({marks})"
    )


def _column_defs(dataset: Dataset) -> str:
    return ", ".join(
        f"{c.name} {c.sql_type}{'' if c.nullable else ' NOT NULL'}" for c in dataset.columns
    )


def create_target_table(target: TableRef, dataset: Dataset) -> str:
    return f"create table if not exists {target.fqn} ({_column_defs(dataset)})"


def add_missing_columns(target: TableRef, dataset: Dataset) -> list[str]:
    """Upgrade a table created by the seed (without the columns added since) in place."""
    return [
        f"alter table {target.fqn} add column if not exists {c.name} {c.sql_type}"
        for c in dataset.columns
        if c.added
    ]


def create_audit_table(audit: TableRef) -> str:
    cols = ", ".join(f"{name} {sql_type}" for name, sql_type in AUDIT_COLUMNS)
    return f"create table if not exists {audit.fqn} ({cols})"


def staging_columns(dataset: Dataset) -> tuple[tuple[str, str], ...]:
    """(name, type) of the staging table: the target's columns plus the bookkeeping ones."""
    return (*((c.name, c.sql_type) for c in dataset.columns), *STAGING_EXTRA_COLUMNS)


def create_staging_table(staging: TableRef, dataset: Dataset) -> str:
    # Transient: no fail-safe storage for a table that lives for one load.
    cols = ", ".join(f"{name} {sql_type}" for name, sql_type in staging_columns(dataset))
    return f"create transient table if not exists {staging.fqn} ({cols})"


def drop_table(table: TableRef) -> str:
    return f"drop table if exists {table.fqn}"


def create_stage(stage: TableRef) -> str:
    # Temporary: Snowflake drops it (and its files) when the session ends.
    return f"create temporary stage if not exists {stage.fqn}"


def put_files(local_glob: Path, stage: TableRef) -> str:
    """PUT local Parquet files (a path or glob we created) onto the stage."""
    path = local_glob.as_posix()
    if not _SAFE_LOCAL_PATH.fullmatch(path):
        raise ValueError(f"refusing to PUT {path!r}: only plain absolute temp paths are staged")
    return f"put 'file://{path}' @{stage.fqn} overwrite = true"


def copy_into_staging(staging: TableRef, stage: TableRef) -> str:
    return (
        f"copy into {staging.fqn} from @{stage.fqn} "
        "file_format = (type = parquet) match_by_column_name = case_insensitive purge = true"
    )


def merge(target: TableRef, staging: TableRef, dataset: Dataset) -> str:
    """ONE MERGE on the natural key; matched rows are updated only when a value changed.

    The source keeps the latest row per key (latest file, then last row in it), so a key
    present in several staged files cannot make the MERGE nondeterministic. Updating only on
    a real difference keeps the load timestamp stable across re-runs.
    """
    key = dataset.key
    compared = dataset.compared_columns
    ts = dataset.load_ts_column
    all_cols = [c.name for c in dataset.columns]
    source_cols = ", ".join(all_cols)
    partition = ", ".join(key)
    on = " and ".join(f"t.{k} = s.{k}" for k in key)
    changed = " or ".join(f"t.{c} is distinct from s.{c}" for c in compared)
    updates = ", ".join(f"{c} = s.{c}" for c in (*compared, ts))
    insert_values = ", ".join(f"s.{c}" for c in all_cols)
    # Validated identifiers only; no values.
    return (
        f"merge into {target.fqn} as t using ("  # noqa: S608
        f"select {source_cols} from {staging.fqn} "
        f"qualify row_number() over (partition by {partition} "
        f"order by {SOURCE_SEQ} desc, {SOURCE_ROW} desc) = 1"
        f") as s on {on} "
        f"when matched and ({changed}) then update set {updates} "
        f"when not matched then insert ({source_cols}) values ({insert_values})"
    )


def select_audit(audit: TableRef) -> str:
    # Validated identifiers; the value is a bind parameter.
    return (
        f"select OBJECT_KEY, ETAG, SIZE_BYTES, ROW_COUNT, LOADED_AT from {audit.fqn} "  # noqa: S608
        "where TARGET_TABLE = ?"
    )


def insert_audit(audit: TableRef) -> str:
    names = ", ".join(name for name, _ in AUDIT_COLUMNS)
    marks = ", ".join("?" for _ in AUDIT_COLUMNS)
    return f"insert into {audit.fqn} ({names}) values ({marks})"  # noqa: S608 - binds only
