"""Session fixtures: a private fakesnow server, loaded sources and a built copy of dbt/."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import snowflake.connector

from market_dbt.runner import DbtProject, DbtRunner, find_project_dir

# Outside Pants (plain pytest in importlib mode) the sibling helper module is not on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from market_dbt_sample_data import (
    daily_bars,
    load_sources,
    realtime_windows,
    utc_now,
)

# 4 symbols x 300 days reach SMA50 and the 52-week window; XOM's 4,300 rows cross two
# RSI epochs (2,000 rows each); ZZZT is not in the seed (sector 'Unknown').
DAYS_BY_SYMBOL = {"AAPL": 300, "MSFT": 300, "NVDA": 300, "ZZZT": 300, "XOM": 4300}
STREAM_SYMBOLS = ["AAPL", "MSFT", "NVDA", "ZZZT"]


@dataclass(frozen=True)
class Fakesnow:
    port: int

    @property
    def env(self) -> dict[str, str]:
        return {
            "MARKET_SNOWFLAKE__HOST": "127.0.0.1",
            "MARKET_SNOWFLAKE__PORT": str(self.port),
            "MARKET_SNOWFLAKE__PROTOCOL": "http",
        }

    def connect(self) -> snowflake.connector.SnowflakeConnection:
        return snowflake.connector.connect(
            host="127.0.0.1", port=self.port, protocol="http",
            account="local", user="test", password="test",  # emulator: any credentials
        )  # fmt: skip

    def query(self, sql: str) -> pd.DataFrame:
        with self.connect() as connection:
            cursor = connection.cursor()
            cursor.execute(sql)
            columns = [c[0].lower() for c in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)

    def table(self, relation: str) -> pd.DataFrame:
        """All rows of a relation named by the test itself (no user input)."""
        return self.query(f"select * from {relation}")  # noqa: S608


@dataclass(frozen=True)
class SourceData:
    daily: pd.DataFrame
    realtime: pd.DataFrame


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_fakesnow(data_dir: Path) -> Iterator[Fakesnow]:
    """fakesnow on a free loopback port with its own data dir, stopped on exit."""
    port = _free_port()
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "fakesnow", "-s", "--host", "127.0.0.1", "-p", str(port),
         "-d", str(data_dir / "db")],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180  # a loaded 2-core CI machine starts it slowly
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fakesnow did not start, see {log.name}") from None
                time.sleep(0.2)
        yield Fakesnow(port)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def fakesnow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakesnow]:
    """The session's private fakesnow."""
    with running_fakesnow(tmp_path_factory.mktemp("fakesnow")) as server:
        yield server


@pytest.fixture(scope="session")
def source_data(fakesnow: Fakesnow) -> SourceData:
    """The deterministic loader tables, inserted once per session."""
    loaded_at = utc_now()
    data = SourceData(
        daily=daily_bars(DAYS_BY_SYMBOL, loaded_at=loaded_at),
        realtime=realtime_windows(STREAM_SYMBOLS, loaded_at=loaded_at),
    )
    with fakesnow.connect() as connection:
        load_sources(connection, data.daily, data.realtime)
    return data


def copy_project(destination: Path) -> DbtProject:
    """A scratch copy of the repo's dbt/ so runs never write into the checkout."""
    shutil.copytree(
        find_project_dir(Path(__file__).parent), destination,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )  # fmt: skip
    return DbtProject(project_dir=destination, profiles_dir=destination, target="local")


@pytest.fixture(scope="session")
def prod_runner(
    tmp_path_factory: pytest.TempPathFactory, fakesnow: Fakesnow, source_data: SourceData
) -> DbtRunner:
    """A runner whose project has been built once ("production")."""
    project = copy_project(tmp_path_factory.mktemp("prod") / "dbt")
    runner = DbtRunner(project, env=fakesnow.env)
    runner.invoke("build")
    return runner
