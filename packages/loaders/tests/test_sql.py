"""SQL generation: identifiers are validated and the MERGE has the intended shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from market_common.identifiers import InvalidIdentifierError
from market_common.settings import load_settings
from market_loaders import sql
from market_loaders.datasets import HISTORICAL, REALTIME, Column, Dataset
from market_loaders.sql import TableRef


@pytest.mark.parametrize("bad", ["X; drop table Y", "a.b", "1ABC", "T'--", ""])
def test_table_ref_rejects_non_identifiers(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        TableRef("DB", "PUBLIC", bad)
    with pytest.raises(InvalidIdentifierError):
        TableRef(bad, "PUBLIC", "T")


def test_settings_reject_injected_table_names() -> None:
    with pytest.raises(ValueError, match="not a valid identifier"):
        load_settings(snowflake={"batch_table": "DAILY; drop table X"})


def test_column_names_are_validated() -> None:
    with pytest.raises(InvalidIdentifierError):
        Column("A B", "FLOAT")
    with pytest.raises(ValueError, match="unsupported SQL type"):
        Column("A", "FLOAT); drop table x; --")


@pytest.mark.parametrize("dataset", [HISTORICAL, REALTIME], ids=lambda d: d.name)
def test_merge_shape(dataset: Dataset) -> None:
    target = TableRef("DB", "PUBLIC", "T")
    staging = TableRef("DB", "PUBLIC", "T__STG_1")
    text = sql.merge(target, staging, dataset)
    assert text.count("merge into") == 1, "exactly one MERGE statement"
    assert text.startswith(f"merge into {target.fqn} as t using (")
    on = re.search(r"\) as s on (.*?) when matched", text)
    assert on is not None
    assert on.group(1) == " and ".join(
        f"t.{k} = s.{k}" for k in dataset.key
    ), "joins on the natural key"
    assert f"partition by {', '.join(dataset.key)}" in text, "source deduplicated per natural key"
    changed = re.search(r"when matched and \((.*?)\) then update", text)
    assert changed is not None
    compared = {m for m in re.findall(r"t\.(\w+) is distinct from s\.\1", changed.group(1))}
    assert compared == set(dataset.compared_columns), "updates only when a non-key value changed"
    assert not set(dataset.key) & compared
    update = text.split(" then update set ", 1)[1].split(" when not matched", 1)[0]
    assert f"{dataset.load_ts_column} = s.{dataset.load_ts_column}" in update
    assert not any(f"{k} = s.{k}" in update.split(", ") for k in dataset.key), "keys never updated"
    assert "?" not in text and "%s" not in text, "no bind values: data travels in the stage"


def test_merge_inserts_every_column() -> None:
    text = sql.merge(TableRef("D", "S", "T"), TableRef("D", "S", "X"), HISTORICAL)
    inserted = text.split("when not matched then insert (", 1)[1].split(")", 1)[0].split(", ")
    assert inserted == [c.name for c in HISTORICAL.columns]


def test_ddl_uses_only_declared_types_and_upgrades_added_columns() -> None:
    target = TableRef("DB", "PUBLIC", "T")
    ddl = sql.create_target_table(target, REALTIME)
    for column in REALTIME.columns:
        assert f"{column.name} {column.sql_type}" in ddl
    alters = sql.add_missing_columns(target, REALTIME)
    assert [a.split(" if not exists ", 1)[1].split()[0] for a in alters] == [
        c.name for c in REALTIME.columns if c.added
    ]


def test_audit_statements_bind_values() -> None:
    audit = TableRef("DB", "PUBLIC", "LOAD_AUDIT")
    insert = sql.insert_audit(audit)
    assert insert.count("?") == len(sql.AUDIT_COLUMNS)
    assert sql.select_audit(audit).endswith("where TARGET_TABLE = ?")


@pytest.mark.parametrize("path", ["/tmp/x'; drop", "relative/path", "/tmp/a b/*.parquet"])
def test_put_refuses_unsafe_paths(path: str) -> None:
    with pytest.raises(ValueError, match="refusing to PUT"):
        sql.put_files(Path(path), TableRef("D", "S", "ST"))


def test_put_accepts_temp_glob() -> None:
    stmt = sql.put_files(Path("/tmp/market-load-abc_1/*.parquet"), TableRef("D", "S", "ST"))
    assert stmt == "put 'file:///tmp/market-load-abc_1/*.parquet' @D.S.ST overwrite = true"
