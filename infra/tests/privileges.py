"""Shared by the Snowflake deployment tests: a statement-recording fakesnow and a model of Snowflake's
access checks, read from infra/snowflake/roles.sql.

The emulator enforces no grants, so the tests replay what a run sent
(``market_devstack.fakesnow_server --statement-log``) through :class:`Checker`, which
maps each statement to the privileges Snowflake requires for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ROLES_SQL = REPO / "infra" / "snowflake" / "roles.sql"


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


def strip_comments(sql: str) -> str:
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

        text = strip_comments(statement.sql)
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
        if m := re.match(rf"drop schema (?:if exists )?{ident}", text, re.I):
            database, schema = _qualify(m[1] + ".X", db, sc).split(".")[:2]
            return [Privilege("USAGE", "DATABASE", database),
                    Privilege("OWNERSHIP", "SCHEMA", f"{database}.{schema}")]  # fmt: skip
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

    def check(
        self, statements: list[Statement], *, skip_roles: frozenset[str] = frozenset()
    ) -> tuple[list[str], dict[str, int]]:
        """Replay ``statements``: ``(denials, statements per role)``; ``skip_roles`` (the
        admin's setup) only record the objects they create."""
        denied: list[str] = []
        issuers: dict[str, int] = {}
        for statement in statements:
            role = statement.role or self.model.users.get(statement.user)
            assert role, f"{statement.user} has no role in roles.sql: {statement.sql[:100]}"
            issuers[role] = issuers.get(role, 0) + 1
            needs = self.needs(statement)
            if role in skip_roles:
                continue
            denied += [
                f"{role} lacks {need} for: {strip_comments(statement.sql)[:160]}"
                for need in needs
                if not self.allowed(role, need)
            ]
        return denied, issuers

    def unused(self, roles: set[str]) -> list[str]:
        """The roles.sql grants of ``roles`` that no replayed statement needed."""
        return sorted(
            f"{role}: {privilege}"
            for role in roles
            for privilege in self.model.grants.get(role, set())
            if (role, privilege) not in self.used
        )

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
    from market_testing.pytest_plugin import free_port as _free_port

    return _free_port()


@contextlib.contextmanager
def recording_fakesnow(home: Path) -> Iterator[tuple[int, Path]]:
    """A private fakesnow server (the stack's launcher) that logs every statement:
    ``(port, statement log)``."""
    import socket
    import time

    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    statement_log = home / "statements.jsonl"
    with (home / "server.log").open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "market_devstack.fakesnow_server", "--host", "127.0.0.1",
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
