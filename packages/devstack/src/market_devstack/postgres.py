"""PostgreSQL from the OS packages as Airflow's metadata database (opt-in: ``--with airflow``).

``initdb`` runs once into ``<state_dir>/postgres/data`` with a generated superuser password
(``MARKET_LOCAL_POSTGRES_PASSWORD`` in ``stack.env``) and scram-sha-256 authentication; the
server listens on 127.0.0.1 only (``stack.postgres_port``), its Unix socket stays inside the
state dir. PostgreSQL refuses to run as root, so when the stack is started by root every
PostgreSQL program runs as the unprivileged ``postgres`` account the Debian package creates,
through ``setpriv`` (util-linux); the state dir's parents must then be traversable (``o+x``)
by that account. Non-root users run it as themselves.

Stopping asks ``pg_ctl stop -m fast`` first (rolls back open transactions, disconnects
clients): the smart-shutdown SIGTERM alone would wait for Airflow's pooled connections.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from market_devstack.credentials import ensure_generated, grant_traverse
from market_devstack.errors import PrerequisiteMissingError, ServiceStartError
from market_devstack.service import Service

if TYPE_CHECKING:
    from market_common.settings import MarketSettings

PASSWORD_VAR = "MARKET_LOCAL_POSTGRES_PASSWORD"  # noqa: S105 - a variable name
SUPERUSER = "market"
AIRFLOW_DATABASE = "airflow"
SERVER_USER = "postgres"  # created by Debian's postgresql-common
PG_MAJORS = ("15", "16", "17")


def find_postgres_bin() -> Path:
    """The ``bin/`` of an installed PostgreSQL server (Debian layout, 15 preferred)."""
    root = Path("/usr/lib/postgresql")
    for major in PG_MAJORS:
        candidate = root / major / "bin"
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PrerequisiteMissingError(
        "PostgreSQL server (initdb, postgres)",
        "install it from the OS packages (Debian/Ubuntu: `apt-get install postgresql`); "
        "it is only needed for `market-devstack up --with airflow`",
    )


def postgres_password(settings: MarketSettings) -> str:
    """The superuser password: generated into ``stack.env`` on first use, then reused."""
    values = ensure_generated(
        settings, {PASSWORD_VAR: lambda: secrets.token_urlsafe(24)}, "PostgreSQL password"
    )
    return values[PASSWORD_VAR]


def sqlalchemy_url(settings: MarketSettings, database: str = AIRFLOW_DATABASE) -> str:
    """``postgresql+psycopg2://`` URL of ``database`` on the stack's server."""
    stack = settings.stack
    return (
        f"postgresql+psycopg2://{SUPERUSER}:{postgres_password(settings)}@{stack.host}:"
        f"{stack.postgres_port}/{database}"
    )


@dataclass(frozen=True)
class ServerAccount:
    """Who the server runs as: ``prefix`` goes before every PostgreSQL program's argv."""

    uid: int
    gid: int
    prefix: tuple[str, ...]

    @classmethod
    def for_current_user(cls) -> ServerAccount:
        if os.geteuid() != 0:
            return cls(os.getuid(), os.getgid(), ())
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError as exc:
            raise PrerequisiteMissingError(
                f"the unprivileged {SERVER_USER!r} account",
                "PostgreSQL refuses to run as root; install the postgresql package (it creates "
                "the account) or start the stack as a non-root user",
            ) from exc
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise PrerequisiteMissingError(
                "setpriv", "install util-linux (`apt-get install util-linux`)"
            )
        prefix = (
            setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--",
        )  # fmt: skip
        return cls(entry.pw_uid, entry.pw_gid, prefix)


class PostgresService(Service):
    """``postgres -D <state_dir>/postgres/data`` on 127.0.0.1:``postgres_port``."""

    name = "postgres"
    startup_timeout_s = 90.0

    # Resolved on first use, so `status`/`logs` work on machines without PostgreSQL.
    @cached_property
    def bin(self) -> Path:
        return find_postgres_bin()

    @cached_property
    def account(self) -> ServerAccount:
        return ServerAccount.for_current_user()

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    def ports(self) -> list[int]:
        return [self.stack.postgres_port]

    def endpoints(self) -> dict[str, str]:
        return {
            "url": f"postgresql://{SUPERUSER}@{self.stack.host}:{self.stack.postgres_port}/"
            f"{AIRFLOW_DATABASE} (password: {PASSWORD_VAR} in stack.env)"
        }

    def _own(self, path: Path, mode: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, self.account.uid, self.account.gid)
        os.chmod(path, mode)

    def _run(self, argv: list[str], *, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            [*self.account.prefix, *argv],
            capture_output=True, text=True, check=False, cwd=self.home, env=env,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ServiceStartError(
                f"postgres: `{' '.join(argv)}` failed ({proc.returncode}). If it cannot open "
                f"{self.home}, make the state dir's parents traversable by the "
                f"{SERVER_USER!r} account (chmod o+x).\n{(proc.stdout + proc.stderr)[-2000:]}"
            )
        return proc.stdout

    def prepare(self) -> None:
        """``initdb`` once (superuser ``market``, generated password, scram-sha-256)."""
        if self.account.prefix:
            grant_traverse(Path(self.stack.state_dir))
        self._own(self.home, 0o700)
        self._own(self.socket_dir, 0o700)
        if (self.data_dir / "PG_VERSION").is_file():
            return
        password_file = self.home / ".initdb-password"
        password_file.write_text(postgres_password(self.settings) + "\n")
        os.chown(password_file, self.account.uid, self.account.gid)
        os.chmod(password_file, 0o600)
        try:
            self._run(
                [
                    str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                    f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
                    "--locale=C", "--no-instructions",
                ]
            )  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            *self.account.prefix,
            str(self.bin / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.stack.postgres_port),
            "-c", f"listen_addresses={self.stack.host}",
            "-c", f"unix_socket_directories={self.socket_dir}",
            # Four Airflow processes with pools plus LocalExecutor workers.
            "-c", "max_connections=200",
        ]  # fmt: skip

    def _client_env(self) -> dict[str, str]:
        return dict(os.environ, PGPASSWORD=postgres_password(self.settings), PGCONNECT_TIMEOUT="5")

    def _psql(self, sql: str, database: str = "postgres") -> str:
        argv = [
            str(self.bin / "psql"), "-h", self.stack.host, "-p", str(self.stack.postgres_port),
            "-U", SUPERUSER, "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql,
        ]  # fmt: skip
        proc = subprocess.run(
            argv, capture_output=True, text=True, check=False, env=self._client_env()
        )
        if proc.returncode != 0:
            raise ServiceStartError(f"postgres: `{sql}` failed: {proc.stderr.strip()[-1000:]}")
        return proc.stdout.strip()

    def probe(self) -> bool:
        """A password login over TCP and ``select 1``."""
        return self._psql("select 1") == "1"

    def after_healthy(self) -> None:
        """Create Airflow's database (idempotent)."""
        exists = self._psql(
            f"select 1 from pg_database where datname = '{AIRFLOW_DATABASE}'"  # noqa: S608 - a constant
        )
        if exists != "1":
            self._psql(f"create database {AIRFLOW_DATABASE}")

    def request_stop(self) -> None:
        """``pg_ctl stop -m fast``: smart shutdown (SIGTERM) would wait on pooled clients."""
        subprocess.run(
            [*self.account.prefix, str(self.bin / "pg_ctl"), "stop", "-D", str(self.data_dir),
             "-m", "fast", "-w", "-t", str(int(self.stop_timeout_s))],
            capture_output=True, check=False, cwd=self.home,
        )  # fmt: skip
