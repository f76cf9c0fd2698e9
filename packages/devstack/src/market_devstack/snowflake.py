"""The Snowflake emulator: fakesnow's HTTP server, reachable by snowflake-connector-python."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from market_common.runtime import python_path
from market_devstack.service import Service

if TYPE_CHECKING:
    from market_common.settings import MarketSettings, SnowflakeSettings


def emulator_settings(settings: MarketSettings) -> SnowflakeSettings:
    """The Snowflake section pointed at this stack's fakesnow (any user/password works).

    Connections to the emulator are made from it by the product's own factories
    (``market_common.clients.snowflake_connect_kwargs`` / ``snowflake_connection``), so the
    stack's probe and the test fixtures connect exactly as the product does.
    """
    from market_common.settings import SnowflakeSettings

    sf = settings.snowflake
    return SnowflakeSettings(
        account="local",
        user=sf.user,
        password=sf.password,
        host=settings.stack.host,
        port=settings.stack.fakesnow_port,
        protocol="http",
        login_timeout_s=10,
    )


class FakesnowService(Service):
    """fakesnow server as a child of this interpreter, persisting under ``<state_dir>/fakesnow``."""

    name = "snowflake"
    startup_timeout_s = 60.0

    @property
    def home(self) -> Path:
        return self.state_dir / "fakesnow"

    @property
    def db_path(self) -> Path:
        return self.home / "databases"

    def ports(self) -> list[int]:
        return [self.stack.fakesnow_port]

    def endpoints(self) -> dict[str, str]:
        return {"url": f"http://{self.stack.host}:{self.stack.fakesnow_port}"}

    def prepare(self) -> None:
        self.db_path.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "market_devstack.fakesnow_server",
            "--host",
            self.stack.host,
            "--port",
            str(self.stack.fakesnow_port),
            "--db-path",
            str(self.db_path),
        ]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        # The launcher must import this package even from a Pants sandbox / pex.
        env["PYTHONPATH"] = python_path()
        return env

    def probe(self) -> bool:
        """A real login + ``select 1`` through snowflake-connector-python."""
        import warnings

        with warnings.catch_warnings():
            # The connector's vendored requests warns about newer urllib3/chardet: harmless.
            warnings.simplefilter("ignore")
            import snowflake.connector

        from market_common.clients import snowflake_connect_kwargs

        kwargs = snowflake_connect_kwargs(emulator_settings(self.settings))
        conn = snowflake.connector.connect(**kwargs | {"login_timeout": 5, "network_timeout": 5})
        try:
            cur = conn.cursor()
            cur.execute("select 1")
            row = cur.fetchone()
            return row is not None and row[0] == 1
        finally:
            conn.close()
