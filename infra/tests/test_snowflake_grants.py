"""Least privilege, proven on a run: every statement each job issues is allowed by its role.

The emulator enforces no grants, so this test makes the check Snowflake would make. A
private fakesnow server records every statement with the session's user and role
(``market_devstack.fakesnow_server --statement-log``); then, as a deployment runs them:

1. ``market-load init`` as the admin (SYSADMIN): databases, schemas, tables;
2. ``market-load historical`` / ``realtime`` as ``MARKET_LOADER_SVC`` (role MARKET_LOADER)
   from processed files in the shared stack's MinIO;
3. ``market-dbt build`` as ``MARKET_DBT_SVC`` (role MARKET_TRANSFORMER);
4. the marts read as the reader (what a BI tool issues), role MARKET_READER.

Every job authenticates with a key pair (the only method infra/snowflake/roles.sql gives its
service users). Each recorded statement is mapped to the privileges Snowflake requires for
it; the test fails when a statement needs a privilege roles.sql does not grant to the
issuing role, and when roles.sql grants a privilege no statement used (issue #16 item 5).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Outside Pants (plain pytest, importlib mode) the sibling helper is not on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from privileges import (
    REPO,
    ROLES_SQL,
    Checker,
    RoleModel,
    Statement,
    parse_roles_sql,
    read_log,
    recording_fakesnow,
    strip_comments,
    write_key_pair,
)

pytestmark = pytest.mark.integration

pytest_plugins = ["market_testing.pytest_plugin"]

ADMIN_ROLE = "SYSADMIN"
# The roles this run exercises; MARKET_CI (slim CI) is checked by test_dbt_slim_ci_workflow.py.
JOB_ROLES = {"MARKET_LOADER", "MARKET_TRANSFORMER", "MARKET_READER"}
SYMBOLS = ["AAPL", "MSFT", "NVDA"]
TRADING_DAYS = 120


@pytest.fixture(scope="module")
def fakesnow_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    with recording_fakesnow(tmp_path_factory.mktemp("fakesnow-grants")) as server:
        yield server


def write_processed_zone(s3: Any, bucket: str, prefix: str) -> None:
    """Processed daily bars and 15-minute windows, as the Spark jobs' files are shaped."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    def put(key: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=buf.getvalue())

    end = dt.date(2025, 6, 30)
    days = [end - dt.timedelta(days=i) for i in range(TRADING_DAYS * 7 // 5 + 7)]
    days = sorted(d for d in days if d.weekday() < 5)[-TRADING_DAYS:]
    for day in days:
        base = [100.0 + 3 * i + (day.toordinal() % 11) for i in range(len(SYMBOLS))]
        put(
            f"historical/trade_date={day.isoformat()}/part-00000.parquet",
            pa.table(
                {
                    "symbol": SYMBOLS,
                    "trade_date": pa.array([day] * len(SYMBOLS), pa.date32()),
                    "open": base,
                    "high": [b + 2 for b in base],
                    "low": [b - 2 for b in base],
                    "close": [b + 1 for b in base],
                    "volume": pa.array([1000 * (i + 1) for i in range(len(SYMBOLS))], pa.int64()),
                    "source": ["synthetic"] * len(SYMBOLS),
                }
            ),
        )
    start = dt.datetime(2025, 6, 30, 13, 30)
    for symbol in SYMBOLS:
        starts = [start + dt.timedelta(minutes=15 * i) for i in range(8)]
        values = [50.0 + i for i in range(len(starts))]
        put(
            f"realtime/date=2025-06-30/{symbol}.parquet",
            pa.table(
                {
                    "symbol": [symbol] * len(starts),
                    "window_start": pa.array(starts, pa.timestamp("us")),
                    "window_end": pa.array(
                        [s + dt.timedelta(minutes=15) for s in starts], pa.timestamp("us")
                    ),
                    "ma_15m": values,
                    "ma_1h": values,
                    "volatility_15m": [0.2] * len(starts),
                    "volume_sum_15m": pa.array([500] * len(starts), pa.int64()),
                    "tick_count": pa.array([15] * len(starts), pa.int64()),
                    "window_open": values,
                    "window_high": [v + 1 for v in values],
                    "window_low": [v - 1 for v in values],
                    "window_close": values,
                }
            ),
        )


@pytest.fixture(scope="module")
def recorded_run(
    fakesnow_log: tuple[int, Path],
    local_stack: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[Statement], RoleModel]:
    """Run init, both loads, dbt build and the reader's queries; the statements they sent."""
    from market_common.clients import s3_client
    from market_testing.pytest_plugin import UniqueNames

    port, statement_log = fakesnow_log
    home = tmp_path_factory.mktemp("grants-run")
    model = parse_roles_sql(ROLES_SQL.read_text())
    prefix = UniqueNames("grants")("lake")
    write_processed_zone(
        s3_client(local_stack.settings), local_stack.settings.s3.bucket, f"{prefix}/processed"
    )
    env = {
        **os.environ,
        "MARKET_SNOWFLAKE__HOST": "127.0.0.1",
        "MARKET_SNOWFLAKE__PORT": str(port),
        "MARKET_SNOWFLAKE__PROTOCOL": "http",
        "MARKET_SNOWFLAKE__WAREHOUSE": "MARKET_WH",
        "MARKET_S3__PROCESSED_PREFIX": f"{prefix}/processed",
        "MARKET_LOG_FORMAT": "console",
    }
    env.pop("MARKET_SNOWFLAKE__PASSWORD", None)

    def run(argv: list[str], **extra: str) -> None:
        proc = subprocess.run(
            argv, env={**env, **extra}, capture_output=True, text=True, timeout=900, check=False
        )
        assert (
            proc.returncode == 0
        ), f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    admin_key = write_key_pair(home / "admin.p8")
    loader_key = write_key_pair(home / "loader.p8")
    dbt_key = write_key_pair(home / "dbt.p8")
    reader_key = write_key_pair(home / "reader.p8")
    admin = {
        "MARKET_SNOWFLAKE__USER": "MARKET_ADMIN",
        "MARKET_SNOWFLAKE__ROLE": ADMIN_ROLE,
        "MARKET_SNOWFLAKE__PRIVATE_KEY_PATH": str(admin_key),
    }
    loader = {
        "MARKET_SNOWFLAKE__USER": model.user_of("MARKET_LOADER"),
        "MARKET_SNOWFLAKE__ROLE": "MARKET_LOADER",
        "MARKET_SNOWFLAKE__PRIVATE_KEY_PATH": str(loader_key),
    }
    project = home / "dbt"
    shutil.copytree(
        REPO / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    dbt = {
        **loader,  # the worker's environment holds the loader's identity too
        "MARKET_DBT__SNOWFLAKE_USER": model.user_of("MARKET_TRANSFORMER"),
        "MARKET_DBT__SNOWFLAKE_ROLE": "MARKET_TRANSFORMER",
        "MARKET_DBT__SNOWFLAKE_PRIVATE_KEY_PATH": str(dbt_key),
        "MARKET_DBT__PROJECT_DIR": str(project),
    }
    # The console scripts' modules (market-load, market-dbt), as the images run them.
    load = [sys.executable, "-m", "market_loaders.cli"]
    run([*load, "init"], **admin)
    run([*load, "historical"], **loader)
    run([*load, "realtime"], **loader)
    run([sys.executable, "-m", "market_dbt.cli", "build"], **dbt)

    from market_common.clients import snowflake_connection
    from market_common.settings import MarketSettings, SnowflakeSettings

    reader = MarketSettings(
        snowflake=SnowflakeSettings(
            user="MARKET_READER_BI", role="MARKET_READER", warehouse="MARKET_WH",
            host="127.0.0.1", port=port, protocol="http", private_key_path=reader_key,
        )  # fmt: skip
    )
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    marts = sorted(
        f"{n['database']}.{n['schema']}.{n['alias']}".upper()
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["schema"].upper() == "ANALYTICS"
    )
    assert marts, "the manifest names the ANALYTICS models"
    conn = snowflake_connection(reader)
    try:
        for relation in marts:
            conn.cursor().execute(f"select * from {relation} limit 10").fetchall()  # noqa: S608
    finally:
        conn.close()
    return read_log(statement_log), model


def test_every_statement_is_allowed_by_its_role_and_every_grant_is_used(
    recorded_run: tuple[list[Statement], RoleModel],
) -> None:
    statements, model = recorded_run
    checker = Checker.of(model)
    denied, issuers = checker.check(statements, skip_roles=frozenset({ADMIN_ROLE}))
    assert set(issuers) == {ADMIN_ROLE, *JOB_ROLES}, f"statements per role: {issuers}"
    assert not denied, "statements need privileges their role lacks:\n" + "\n".join(denied[:30])
    unused = checker.unused(JOB_ROLES)
    assert not unused, "roles.sql grants privileges no statement used:\n" + "\n".join(unused)


def test_the_loader_creates_no_database_or_schema_at_load_time(
    recorded_run: tuple[list[Statement], RoleModel],
) -> None:
    """Regression (#16): every load ran `create database/schema if not exists`."""
    statements, _ = recorded_run
    loader = [s for s in statements if s.role == "MARKET_LOADER"]
    assert loader, "the loads ran as MARKET_LOADER"
    ddl = [
        s.sql
        for s in loader
        if strip_comments(s.sql)
        .lower()
        .startswith(
            (
                "create database",
                "create schema",
                "create or replace database",
                "create or replace schema",
                "alter table",
            )
        )
    ]
    assert ddl == [], f"the loader ran init DDL at load time: {ddl}"
    admin = [strip_comments(s.sql).lower() for s in statements if s.role == ADMIN_ROLE]
    assert any(a.startswith("create database") for a in admin), "init (admin) created the databases"


def test_roles_sql_service_users_use_key_pairs_only() -> None:
    """Regression (#16): compose passed passwords while roles.sql creates key-pair users."""
    text = ROLES_SQL.read_text().lower()
    body = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    assert "password =" not in body.replace("must_change_password =", ""), "no user has a password"
    assert "create user" in body
