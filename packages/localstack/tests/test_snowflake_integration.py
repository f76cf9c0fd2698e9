"""Tables, MERGE and persistence through snowflake-connector-python on fakesnow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from market_localstack import stack
from market_localstack.pytest_plugin import UniqueNames
from market_localstack.stack import StackInfo

pytestmark = pytest.mark.integration

EXPECTED = [("AAPL", 190.5, 3), ("MSFT", 410.0, 1), ("NVDA", 120.25, 2)]


def _read(conn: Any, db: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(f"select symbol, close, version from {db}.public.prices order by symbol")
    return [(s, float(c), int(v)) for s, c, v in cur.fetchall()]


def test_merge_and_persist_across_restart(
    local_stack: StackInfo,
    snowflake_conn_factory: Callable[..., Any],
    unique_name: UniqueNames,
) -> None:
    db = unique_name.ident("DB")
    conn = snowflake_conn_factory()
    cur = conn.cursor()
    cur.execute(f"create database {db}")
    # Real Snowflake creates PUBLIC with the database; fakesnow does not.
    cur.execute(f"create schema if not exists {db}.public")
    cur.execute(
        f"create table {db}.public.prices (symbol varchar, close double, version integer)"
    )
    cur.execute(
        f"insert into {db}.public.prices values ('AAPL', 180.0, 1), ('MSFT', 410.0, 1)"
    )
    cur.execute(
        f"""
        merge into {db}.public.prices t
        using (
            select 'AAPL' as symbol, 190.5 as close, 3 as version
            union all select 'NVDA', 120.25, 2
        ) s
        on t.symbol = s.symbol
        when matched then update set close = s.close, version = s.version
        when not matched then insert (symbol, close, version) values (s.symbol, s.close, s.version)
        """
    )
    assert _read(conn, db) == EXPECTED
    conn.close()

    # Restart only the emulator: Kafka/MinIO may be in use by concurrent tests.
    stack.down(local_stack.settings, only="snowflake")
    restarted = stack.ensure_up(local_stack.settings, only="snowflake")
    assert restarted.services["snowflake"].healthy

    # fakesnow 0.12.1 cannot DROP DATABASE: the few-KB test databases stay in the state dir.
    assert _read(snowflake_conn_factory(), db) == EXPECTED


def test_connect_with_database_and_schema(
    snowflake_conn_factory: Callable[..., Any], unique_name: UniqueNames
) -> None:
    db = unique_name.ident("DB")
    conn = snowflake_conn_factory(database=db, schema="PUBLIC")
    cur = conn.cursor()
    cur.execute("create table t (id int, name varchar)")
    cur.executemany("insert into t values (%s, %s)", [(1, "a"), (2, "b")])
    cur.execute("select count(*), current_database() from t")
    assert cur.fetchone() == (2, db)
