"""Least privilege, proven on a run: every statement each job issues is allowed by its role.

The emulator enforces no grants, so this test makes the check Snowflake would make. A
private fakesnow server records every statement with the session's user and role
(``market_localstack.fakesnow_server --statement-log``); then, as a deployment runs them:

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

pytest_plugins = ["market_localstack.pytest_plugin"]

REPO = Path(__file__).resolve().parents[2]
ROLES_SQL = REPO / "infra" / "snowflake" / "roles.sql"
ADMIN_ROLE = "SYSADMIN"
SYMBOLS = ["AAPL", "MSFT", "NVDA"]
TRADING_DAYS = 120


# ---- The privilege model: roles.sql's grants, and what Snowflake checks per statement.


@dataclass(frozen=True)
class Privilege:
    """``privilege`` on the object ``kind`` ``name`` (``TABLE`` in ``DB.SCHEMA`` for the
    ``on all/future tables in schema`` grants: ``name`` is then the schema)."""

    privilege: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.privilege} on {self.kind} {self.name}"


@dataclass
class RoleModel:
    grants: dict[str, set[Privilege]]
    users: dict[str, str]  # user -> role granted to it
    owners: dict[tuple[str, str], str]  # (kind, name) -> owning role

    def user_of(self, role: str) -> str:
        return next(u for u, r in self.users.items() if r == role)


def _names(text: str) -> str:
    return text.strip().strip('"').upper()


def parse_roles_sql(text: str) -> RoleModel:
    """The grants of infra/snowflake/roles.sql (its statement forms only; others fail)."""
    import re

    body = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    model = RoleModel(grants={}, users={}, owners={})
    on_object = re.compile(
        r"grant (?P<privs>[a-z ,]+?) on (?P<kind>warehouse|database|schema) (?P<name>\S+) "
        r"to role (?P<role>\S+)(?: copy current grants)?"
    )
    in_schema = re.compile(
        r"grant (?P<privs>[a-z ,]+?) on (?:all|future) (?P<kind>tables|views) in schema "
        r"(?P<name>\S+) to role (?P<role>\S+)"
    )
    to_user = re.compile(r"grant role (?P<role>\S+) to user (?P<user>\S+)")
    for raw in body.split(";"):
        statement = " ".join(raw.split()).lower()
        if not statement.startswith("grant "):
            continue
        if match := to_user.fullmatch(statement):
            model.users[_names(match["user"])] = _names(match["role"])
        elif re.fullmatch(r"grant role \S+ to role \S+", statement):
            continue  # the role hierarchy under SYSADMIN (admins keep control)
        elif match := in_schema.fullmatch(statement) or on_object.fullmatch(statement):
            role = _names(match["role"])
            kind = {"tables": "TABLE", "views": "VIEW"}.get(match["kind"], match["kind"].upper())
            for privilege in (p.strip().upper() for p in match["privs"].split(",")):
                if privilege == "OWNERSHIP":
                    model.owners[(kind, _names(match["name"]))] = role
                else:
                    model.grants.setdefault(role, set()).add(
                        Privilege(privilege, kind, _names(match["name"]))
                    )
        else:
            raise AssertionError(f"roles.sql statement the model does not read: {statement}")
    return model


WAREHOUSE = "MARKET_WH"


def _strip_comments(sql: str) -> str:
    import re

    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return " ".join(line.split("--", 1)[0] for line in sql.splitlines()).strip()


def _qualify(name: str, database: str | None, schema: str | None) -> str:
    parts = [_names(p) for p in name.split(".")]
    if len(parts) == 1:
        parts = [_names(database or "?"), _names(schema or "?"), *parts]
    elif len(parts) == 2:
        parts = [_names(database or "?"), *parts]
    return ".".join(parts)


def _parents(fqn: str) -> list[Privilege]:
    """Every object privilege also needs USAGE on the database and schema holding it."""
    database, schema, _ = fqn.split(".")
    return [
        Privilege("USAGE", "DATABASE", database),
        Privilege("USAGE", "SCHEMA", f"{database}.{schema}"),
    ]


def _read_tables(
    expr: Any, database: str | None, schema: str | None, *, skip: set[str]
) -> list[str]:
    """Fully qualified tables/views a parsed statement reads (CTE names excluded)."""
    from sqlglot import exp

    ctes = {cte.alias_or_name.upper() for cte in expr.find_all(exp.CTE)}
    out = []
    for table in expr.find_all(exp.Table):
        if not table.name or (not table.db and table.name.upper() in ctes):
            continue
        name = ".".join(p for p in (table.catalog, table.db, table.name) if p)
        fqn = _qualify(name, database, schema)
        if fqn not in skip and fqn not in out:
            out.append(fqn)
    return out


@dataclass
class Checker:
    """Replays the statements in order and holds what Snowflake would check for each.

    ``owners`` grows as roles create objects (the creator owns them); ``kinds`` tells a
    view from a table, because ``on all/future tables`` grants do not cover views.
    """

    model: RoleModel
    owners: dict[str, str]
    kinds: dict[str, str]
    used: set[tuple[str, Privilege]]

    @classmethod
    def of(cls, model: RoleModel) -> Checker:
        owners = {name: role for (_, name), role in model.owners.items()}
        return cls(model=model, owners=owners, kinds={}, used=set())

    def needs(self, statement: Statement) -> list[Privilege]:
        """The privileges ``statement`` needs (and records the objects it creates)."""
        import re

        import sqlglot
        from sqlglot import exp

        text = _strip_comments(statement.sql)
        low = text.lower()
        db, sc = statement.database, statement.schema
        ident = r"([A-Za-z0-9_.$\"]+)"
        if not low or re.match(r"(begin|commit|rollback|alter session|show parameters)\b", low):
            return []
        if m := re.match(rf"show (?:terse )?schemas in database {ident}", text, re.I):
            return [Privilege("USAGE", "DATABASE", _names(m[1]))]
        if m := re.match(rf"show (?:terse )?objects in (?:schema )?{ident}", text, re.I):
            database, schema = _qualify(m[1] + ".X", db, sc).split(".")[:2]
            return _parents(f"{database}.{schema}.X")
        if m := re.match(rf"use schema {ident}", text, re.I):
            return _parents(_qualify(m[1] + ".X", db, sc))
        if re.match(r"create (?:or replace )?database", low):
            return [Privilege("CREATE DATABASE", "ACCOUNT", "ACCOUNT")]
        if m := re.match(rf"create (?:or replace )?schema (?:if not exists )?{ident}", text, re.I):
            database, schema = _qualify(m[1] + ".X", db, sc).split(".")[:2]
            self.owners.setdefault(f"{database}.{schema}", statement.role or "?")
            return [
                Privilege("USAGE", "DATABASE", database),
                Privilege("CREATE SCHEMA", "DATABASE", database),
            ]
        if m := re.match(
            rf"create (?:or replace )?(?:temporary |temp )?stage (?:if not exists )?{ident}",
            text,
            re.I,
        ):
            fqn = _qualify(m[1], db, sc)
            self.owners.setdefault(fqn, statement.role or "?")
            self.kinds[fqn] = "STAGE"
            return [*_parents(fqn), Privilege("CREATE STAGE", "SCHEMA", fqn.rsplit(".", 1)[0])]
        if m := re.match(rf"put \S+ @{ident}", text, re.I):
            return [
                *_parents(_qualify(m[1], db, sc)),
                Privilege("WRITE", "STAGE", _qualify(m[1], db, sc)),
            ]
        if m := re.match(rf"copy into {ident} from @{ident}", text, re.I):
            table, stage = _qualify(m[1], db, sc), _qualify(m[2], db, sc)
            return [Privilege("USAGE", "WAREHOUSE", WAREHOUSE), *_parents(table),
                    Privilege("INSERT", self.kinds.get(table, "TABLE"), table),
                    Privilege("READ", "STAGE", stage)]  # fmt: skip
        if m := re.match(rf"(?:drop|alter) (table|view) (?:if exists )?{ident}", text, re.I):
            fqn = _qualify(m[2], db, sc)
            if fqn not in self.owners:
                return []  # `drop … if exists` of an object that is not there
            # A dropped object keeps its owner here: a later re-create replaces it.
            return [*_parents(fqn), Privilege("OWNERSHIP", self.kinds.get(fqn, "TABLE"), fqn)]
        if m := re.match(rf"(?:describe|desc) (?:table|view) {ident}", text, re.I):
            fqn = _qualify(m[1], db, sc)
            return [*_parents(fqn), Privilege("SELECT", self.kinds.get(fqn, "TABLE"), fqn)]
        expr = sqlglot.parse_one(text, read="snowflake")
        if isinstance(expr, exp.Create):
            kind = str(expr.args.get("kind") or "TABLE").upper()
            target = expr.this.this if isinstance(expr.this, exp.Schema) else expr.this
            fqn = _qualify(
                ".".join(p for p in (target.catalog, target.db, target.name) if p), db, sc
            )
            reads = _read_tables(expr, db, sc, skip={fqn})
            needs = [*_parents(fqn), Privilege(f"CREATE {kind}", "SCHEMA", fqn.rsplit(".", 1)[0])]
            if fqn in self.owners and expr.args.get("replace"):
                needs.append(Privilege("OWNERSHIP", self.kinds.get(fqn, kind), fqn))
            self.owners[fqn] = statement.role or "?"
            self.kinds[fqn] = kind
            return needs + self._reads(reads)
        writes: list[Privilege] = []
        skip: set[str] = set()
        if isinstance(expr, exp.Insert | exp.Merge | exp.Update | exp.Delete):
            target = expr.this.this if isinstance(expr.this, exp.Schema) else expr.this
            fqn = _qualify(
                ".".join(p for p in (target.catalog, target.db, target.name) if p), db, sc
            )
            skip.add(fqn)
            privileges = {
                exp.Insert: ["INSERT"],
                exp.Update: ["UPDATE"],
                exp.Delete: ["DELETE"],
                exp.Merge: ["INSERT", "UPDATE", *(["DELETE"] if " then delete" in low else [])],
            }[type(expr)]
            writes = [
                *_parents(fqn),
                *(Privilege(p, self.kinds.get(fqn, "TABLE"), fqn) for p in privileges),
            ]
        elif not isinstance(expr, exp.Select | exp.Union | exp.Subquery):
            raise AssertionError(f"statement the privilege model does not know: {text[:200]}")
        return [
            Privilege("USAGE", "WAREHOUSE", WAREHOUSE),
            *writes,
            *self._reads(_read_tables(expr, db, sc, skip=skip)),
        ]

    def _reads(self, tables: list[str]) -> list[Privilege]:
        needs: list[Privilege] = []
        for fqn in tables:
            database, schema, name = fqn.split(".")
            if schema == "INFORMATION_SCHEMA":
                needs.append(Privilege("USAGE", "DATABASE", database))
            else:
                needs += [*_parents(fqn), Privilege("SELECT", self.kinds.get(fqn, "TABLE"), fqn)]
        return needs

    def allowed(self, role: str, need: Privilege) -> bool:
        """Whether ``role`` holds ``need``; records the roles.sql grant that gave it.

        The owner of an object holds every privilege on it (a schema's owner may create
        in it); tables and views are granted per schema (``on all/future … in schema``).
        """
        if self.owners.get(need.name) == role:
            return True
        held = need
        if need.kind in ("TABLE", "VIEW"):
            held = Privilege(need.privilege, need.kind, need.name.rsplit(".", 1)[0])
        if held in self.model.grants.get(role, set()):
            self.used.add((role, held))
            return True
        return False


@dataclass(frozen=True)
class Statement:
    user: str
    role: str | None
    database: str | None
    schema: str | None
    sql: str
    success: bool


def free_port() -> int:
    from market_localstack.pytest_plugin import free_port as _free_port

    return _free_port()


@pytest.fixture(scope="module")
def recording_fakesnow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A private fakesnow server (the stack's launcher) that logs every statement."""
    import socket
    import time

    home = tmp_path_factory.mktemp("fakesnow-grants")
    port = free_port()
    statement_log = home / "statements.jsonl"
    with (home / "server.log").open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "market_localstack.fakesnow_server", "--host", "127.0.0.1",
             "--port", str(port), "--db-path", str(home / "db"),
             "--statement-log", str(statement_log)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"fakesnow did not start: {home / 'server.log'}"
                        ) from None
                    time.sleep(0.3)
            yield port, statement_log
        finally:
            process.terminate()
            process.wait(timeout=60)


def write_key_pair(path: Path) -> Path:
    """An unencrypted PKCS#8 RSA private key, created 0600 (the service users' key files)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return path


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


def read_log(path: Path) -> list[Statement]:
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "query":
            out.append(
                Statement(
                    user=str(record["user"]).upper(),
                    role=record["role"].upper() if record.get("role") else None,
                    database=record.get("database"),
                    schema=record.get("schema"),
                    sql=record["sql"],
                    success=bool(record["success"]),
                )
            )
    return out


@pytest.fixture(scope="module")
def recorded_run(
    recording_fakesnow: tuple[int, Path],
    local_stack: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[Statement], RoleModel]:
    """Run init, both loads, dbt build and the reader's queries; the statements they sent."""
    from market_common.clients import s3_client
    from market_localstack.pytest_plugin import UniqueNames

    port, statement_log = recording_fakesnow
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
    denied: list[str] = []
    issuers: dict[str, int] = {}
    for statement in statements:
        role = statement.role or model.users.get(statement.user)
        assert role, f"{statement.user} has no role (roles.sql grants none): {statement.sql[:100]}"
        issuers[role] = issuers.get(role, 0) + 1
        needs = checker.needs(statement)
        if role == ADMIN_ROLE:
            continue  # market-load init: the admin's one-off setup, outside the job roles
        denied += [
            f"{role} lacks {need} for: {_strip_comments(statement.sql)[:160]}"
            for need in needs
            if not checker.allowed(role, need)
        ]
    assert set(issuers) == {
        ADMIN_ROLE,
        "MARKET_LOADER",
        "MARKET_TRANSFORMER",
        "MARKET_READER",
    }, issuers
    assert not denied, "statements need privileges their role lacks:\n" + "\n".join(denied[:30])
    unused = sorted(
        f"{role}: {privilege}"
        for role, privileges in model.grants.items()
        for privilege in privileges
        if (role, privilege) not in checker.used
    )
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
        if _strip_comments(s.sql)
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
    admin = [_strip_comments(s.sql).lower() for s in statements if s.role == ADMIN_ROLE]
    assert any(a.startswith("create database") for a in admin), "init (admin) created the databases"


def test_roles_sql_service_users_use_key_pairs_only() -> None:
    """Regression (#16): compose passed passwords while roles.sql creates key-pair users."""
    text = ROLES_SQL.read_text().lower()
    body = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    assert "password =" not in body.replace("must_change_password =", ""), "no user has a password"
    assert "create user" in body
