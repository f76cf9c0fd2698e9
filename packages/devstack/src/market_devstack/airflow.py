"""Airflow 3 as production runs it, on the stack's PostgreSQL (opt-in: ``up --with airflow``).

Four processes, each its own service with a pid file and a log: ``airflow api-server`` (UI,
REST API and the execution API tasks call back into), ``scheduler`` (LocalExecutor: every
task in its own process), ``dag-processor`` (parses the repository's ``dags/``) and
``triggerer``. They share ``AIRFLOW_HOME=<state_dir>/airflow`` and the ``airflow.cfg`` this
module renders there (0600: it holds the metadata DB URL and generated secrets); a user's
``airflow`` CLI with that ``AIRFLOW_HOME`` talks to the same deployment.

What must agree, and is therefore derived from one place (``stack.airflow_port``): the API
server's port, ``[core] execution_api_server_url`` (tasks that cannot reach it are killed)
and ``[api] base_url``. Authentication is Airflow's simple auth manager (the locked
dependencies have no FAB provider): one ``admin`` user whose generated password is
``MARKET_LOCAL_AIRFLOW_ADMIN_PASSWORD`` in ``stack.env``, beside the other local
credentials. The cosmos plugin serves the dbt docs the ``docs`` task writes into the dbt
project's ``target/`` (``[cosmos] dbt_docs_projects``).

Health comes from the API server's ``/api/v2/monitor/health``: a scheduler, DAG processor
or triggerer is healthy once its heartbeat there is.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import urlsafe_b64encode
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from market_common.runtime import file_lock, python_path
from market_devstack.credentials import ensure_generated
from market_devstack.errors import PrerequisiteMissingError, ServiceStartError
from market_devstack.postgres import sqlalchemy_url
from market_devstack.service import Service

if TYPE_CHECKING:
    from market_common.settings import MarketSettings

ADMIN_USER = "admin"
ADMIN_PASSWORD_VAR = "MARKET_LOCAL_AIRFLOW_ADMIN_PASSWORD"  # noqa: S105 - a variable name
_SECRET_VARS = {
    "MARKET_LOCAL_AIRFLOW_FERNET_KEY": lambda: urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    # HS512 wants a key of at least 64 bytes (RFC 7518 3.2).
    "MARKET_LOCAL_AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(64),
    "MARKET_LOCAL_AIRFLOW_API_SECRET_KEY": lambda: secrets.token_urlsafe(32),
    ADMIN_PASSWORD_VAR: lambda: secrets.token_urlsafe(18),
}
DBT_DOCS_SLUG = "market"


class AirflowNotInstalledError(PrerequisiteMissingError):
    """``airflow`` cannot be run with this interpreter."""


def airflow_secrets(settings: MarketSettings) -> dict[str, str]:
    """Fernet key, JWT secret, API secret key and admin password (generated once)."""
    return ensure_generated(settings, _SECRET_VARS, "Airflow secrets and admin password")


def admin_credentials(settings: MarketSettings) -> tuple[str, str]:
    """``(user, password)`` of the UI/REST API admin."""
    return ADMIN_USER, airflow_secrets(settings)[ADMIN_PASSWORD_VAR]


def find_repo_dir(marker: str = "dags/stock_market_batch_pipeline.py") -> Path:
    """The checkout holding ``dags/`` and ``dbt/`` (above the cwd or this package)."""
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / marker).is_file():
                return candidate
    raise PrerequisiteMissingError(
        "the repository's dags/ folder",
        "run `market-devstack up --with airflow` from inside the checkout",
    )


def airflow_argv(*args: str) -> list[str]:
    """``python -m airflow <args>`` with the interpreter that runs the stack (same packages).

    Not the ``airflow`` script beside it: in a PEX venv (a Pants test) that script's shebang
    is ``python -sE``, which ignores the ``PYTHONPATH`` carrying the first-party code, so the
    DAG processor could not import ``market_dags``.
    """
    if importlib.util.find_spec("airflow") is None:
        raise AirflowNotInstalledError(
            "apache-airflow", "install the workspace with `uv sync --all-extras`"
        )
    return [sys.executable, "-m", "airflow", *args]


class AirflowHome:
    """``<state_dir>/airflow``: airflow.cfg, the passwords file, logs, the dbt manifest."""

    def __init__(self, settings: MarketSettings) -> None:
        self.settings = settings
        self.stack = settings.stack
        self.path = Path(self.stack.state_dir) / "airflow"

    @property
    def config_path(self) -> Path:
        return self.path / "airflow.cfg"

    @property
    def api_url(self) -> str:
        return f"http://{self.stack.host}:{self.stack.airflow_port}"

    @property
    def manifest_dir(self) -> Path:
        return self.path / "dbt-target"

    def config(self) -> dict[str, dict[str, str]]:
        """Everything the stack decides; MARKET_DAGS__* / other AIRFLOW__* env stay the user's."""
        repo = find_repo_dir()
        values = airflow_secrets(self.settings)
        docs = {
            DBT_DOCS_SLUG: {
                "dir": str(repo / "dbt" / "target"),
                "index": "index.html",
                "name": "dbt docs (market)",
            }
        }
        return {
            "core": {
                "dags_folder": str(repo / "dags"),
                "executor": "LocalExecutor",
                "load_examples": "False",
                # Two cores: four task slots (the batch DAG's trigger waits on a dbt task).
                "parallelism": "4",
                "fernet_key": values["MARKET_LOCAL_AIRFLOW_FERNET_KEY"],
                "auth_manager": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "simple_auth_manager_users": f"{ADMIN_USER}:admin",
                "simple_auth_manager_passwords_file": str(self.path / "passwords.json"),
                "execution_api_server_url": f"{self.api_url}/execution/",
            },
            "database": {"sql_alchemy_conn": sqlalchemy_url(self.settings)},
            "api": {
                "host": self.stack.host,
                "port": str(self.stack.airflow_port),
                "base_url": self.api_url,
                "workers": "1",
                "secret_key": values["MARKET_LOCAL_AIRFLOW_API_SECRET_KEY"],
            },
            "api_auth": {"jwt_secret": values["MARKET_LOCAL_AIRFLOW_JWT_SECRET"]},
            "logging": {"base_log_folder": str(self.path / "logs")},
            "scheduler": {"enable_health_check": "False"},
            # A task process calls the execution API for every state change and heartbeat; on
            # a busy 2-core laptop the API server answers in seconds, not milliseconds, and
            # Airflow's 5 s timeout then gets tasks SIGKILLed before they start.
            "workers": {
                "execution_api_timeout": "60",
                "execution_api_retries": "10",
                "max_failed_heartbeats": "10",
            },
            "cosmos": {"dbt_docs_projects": json.dumps(docs), "enable_telemetry": "False"},
        }

    def tuning(self) -> dict[str, dict[str, str]]:
        """Defaults for a 2-core laptop that an ``AIRFLOW__<SECTION>__<KEY>`` variable may override.

        Re-parsing the three DAG files every 30 s (Airflow's default) with two parser
        processes costs a good part of a core; an edited file still shows within two minutes
        (``airflow dags reserialize`` at once). Parsing the cosmos DAG under load can take
        longer than the 30 s import timeout, which would drop the DAG.
        """
        return {
            "core": {"dagbag_import_timeout": "120"},
            "dag_processor": {
                "min_file_process_interval": "120",
                "parsing_processes": "1",
                "dag_file_processor_timeout": "180",
            },
        }

    def rendered(self) -> dict[str, dict[str, str]]:
        """airflow.cfg: :meth:`tuning` overlaid with :meth:`config` (what must agree)."""
        out = {section: dict(options) for section, options in self.tuning().items()}
        for section, options in self.config().items():
            out.setdefault(section, {}).update(options)
        return out

    def environment(self) -> dict[str, str]:
        """The processes' environment: ours for what airflow.cfg sets, the caller's for the rest.

        Inherited ``AIRFLOW__<SECTION>__<KEY>`` variables for keys :meth:`config` sets are
        dropped (an environment variable would win over airflow.cfg and split the deployment,
        e.g. a test session's SQLite URL); those for :meth:`tuning` keys win, as usual in
        Airflow. Steps find the data stack through ``MARKET_STATE_DIR``.
        """
        env = dict(os.environ)
        for section, options in self.config().items():
            for key in options:
                env.pop(f"AIRFLOW__{section.upper()}__{key.upper()}", None)
        env.update(
            AIRFLOW_HOME=str(self.path),
            AIRFLOW_CONFIG=str(self.config_path),
            PYTHONPATH=python_path(),
            MARKET_DAGS__DBT__MANIFEST_PATH=str(self.manifest_dir / "manifest.json"),
            DO_NOT_TRACK="1",
        )
        env.setdefault("MARKET_STATE_DIR", str(self.stack.state_dir))
        return env

    def render(self) -> None:
        """Write airflow.cfg (0600) and the admin's password file."""
        self.path.mkdir(parents=True, exist_ok=True)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_dict(self.rendered())
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# Rendered by market-devstack on every `up --with airflow`.\n")
            parser.write(handle)
        user, password = admin_credentials(self.settings)
        passwords = self.path / "passwords.json"
        fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({user: password}, handle)

    def run(self, *args: str, timeout_s: float = 600) -> str:
        proc = subprocess.run(
            airflow_argv(*args), capture_output=True, text=True, check=False,
            env=self.environment(), cwd=self.path, timeout=timeout_s,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ServiceStartError(
                f"`airflow {' '.join(args)}` failed ({proc.returncode}); fix the cause below and "
                f"rerun `market-devstack up --with airflow`.\n{(proc.stdout + proc.stderr)[-3000:]}"
            )
        return proc.stdout

    def prepare(self) -> None:
        """Render the config, migrate the metadata DB, write the dbt manifest (idempotent).

        The migration and ``dbt parse`` do not depend on each other: they run side by side
        (each is a minute of a busy 2-core machine).
        """
        with file_lock(self.path / ".prepare.lock"):
            self.render()
            with ThreadPoolExecutor(max_workers=1) as pool:
                manifest = pool.submit(self.write_manifest)
                self.run("db", "migrate")
                manifest.result()

    def write_manifest(self) -> None:
        """``dbt parse`` for cosmos's per-model tasks (a DAG file never runs dbt itself)."""
        self.manifest_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "market_dags.manifest", "--target-path", str(self.manifest_dir)],
            capture_output=True, text=True, check=False, env=self.environment(), cwd=self.path,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ServiceStartError(
                f"writing the dbt manifest for cosmos failed ({proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr)[-2000:]}"
            )

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (no authentication needed)."""
        url = f"{self.api_url}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
            data: dict[str, Any] = json.loads(response.read())
            return data


class AirflowComponent(Service):
    """One Airflow process (``airflow <component>``) of the stack's deployment."""

    component: ClassVar[str]
    # The key of this component in the health endpoint's answer.
    health_key: ClassVar[str]
    # Airflow's import alone takes ~10 s per process on a busy 2-core machine.
    startup_timeout_s = 240.0
    stop_timeout_s = 30.0

    @property
    def airflow(self) -> AirflowHome:
        return AirflowHome(self.settings)

    @property
    def home(self) -> Path:
        return self.airflow.path

    def ports(self) -> list[int]:
        return []

    def prepare(self) -> None:
        self.airflow.render()

    def command(self) -> list[str]:
        return airflow_argv(self.component)

    def environment(self) -> dict[str, str]:
        return self.airflow.environment()

    def endpoints(self) -> dict[str, str]:
        return {}

    def probe(self) -> bool:
        status = self.airflow.health().get(self.health_key) or {}
        return bool(status.get("status") == "healthy")


class AirflowApiServer(AirflowComponent):
    """UI + REST API + execution API on 127.0.0.1:``airflow_port``; migrates the DB first."""

    name = "airflow-api-server"
    component = "api-server"
    health_key = "metadatabase"

    def ports(self) -> list[int]:
        return [self.stack.airflow_port]

    def prepare(self) -> None:
        self.airflow.prepare()

    def endpoints(self) -> dict[str, str]:
        return {
            "ui": self.airflow.api_url,
            "login": f"{ADMIN_USER} / {ADMIN_PASSWORD_VAR} in stack.env",
        }


class AirflowScheduler(AirflowComponent):
    name = "airflow-scheduler"
    component = "scheduler"
    health_key = "scheduler"


class AirflowDagProcessor(AirflowComponent):
    name = "airflow-dag-processor"
    component = "dag-processor"
    health_key = "dag_processor"


class AirflowTriggerer(AirflowComponent):
    name = "airflow-triggerer"
    component = "triggerer"
    health_key = "triggerer"


AIRFLOW_SERVICES: dict[str, type[AirflowComponent]] = {
    cls.name: cls
    for cls in (AirflowApiServer, AirflowScheduler, AirflowDagProcessor, AirflowTriggerer)
}


class AirflowApiError(RuntimeError):
    """The REST API refused a request (the message has the status and Airflow's detail)."""


class TransientApiError(AirflowApiError):
    """The API server answered 5xx (overloaded, restarting): worth retrying."""


class DagRunTimeoutError(RuntimeError):
    """A DAG run did not reach a final state in time (its task states are in the message)."""


FINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowClient:
    """A small client of Airflow 3's REST API (``/api/v2``), authenticated as the admin.

    Used by the integration tests and the DAG-run benchmark to drive the stack's scheduler
    the way a user or CI would: trigger, wait, read task states, clear.
    """

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None

    @classmethod
    def for_stack(cls, settings: MarketSettings) -> AirflowClient:
        user, password = admin_credentials(settings)
        return cls(AirflowHome(settings).api_url, user, password)

    # A busy API server may time out or answer 5xx for a moment: retried, anything else is not.
    @retry(
        retry=retry_if_exception_type((TimeoutError, ConnectionError, TransientApiError)),
        stop=stop_after_attempt(6),
        wait=wait_exponential(multiplier=2, max=30),
        reraise=True,
    )
    def _request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.base_url}{path}", data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=90) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:1000]
            error = TransientApiError if exc.code >= 500 else AirflowApiError
            raise error(f"{method} {path} → {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise ConnectionError(f"{method} {self.base_url}{path}: {exc.reason}") from exc
        return json.loads(raw) if raw else None

    def token(self) -> str:
        """A JWT from ``POST /auth/token`` with the admin's user name and password."""
        if self._token is None:
            answer = self._request(
                "POST", "/auth/token",
                {"username": self.username, "password": self.password}, auth=False,
            )  # fmt: skip
            self._token = str(answer["access_token"])
        return self._token

    def get(self, path: str) -> Any:
        return self._request("GET", f"/api/v2{path}")

    def wait_for_dags(self, dag_ids: Iterable[str], *, timeout_s: float = 180) -> None:
        """Until the DAG processor has serialised every one of ``dag_ids``."""
        missing = set(dag_ids)
        deadline = time.monotonic() + timeout_s
        while missing and time.monotonic() < deadline:
            known = {d["dag_id"] for d in self.get("/dags?limit=100")["dags"]}
            missing -= known
            if missing:
                time.sleep(2)
        if missing:
            errors = self.get("/importErrors")
            raise DagRunTimeoutError(f"DAGs {sorted(missing)} not parsed; import errors: {errors}")

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(
        self,
        dag_id: str,
        run_id: str,
        *,
        logical_date: datetime,
        conf: Mapping[str, Any] | None = None,
    ) -> None:
        self._request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": logical_date.isoformat(), "conf": dict(conf or {})},
        )  # fmt: skip

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """``{task_id: state}`` of a run (mapped/group tasks by their full task id)."""
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return {ti["task_id"]: str(ti["state"]) for ti in answer["task_instances"]}

    def wait(self, dag_id: str, run_id: str, *, timeout_s: float) -> str:
        """The run's final state (``success``/``failed``), polling every 3 s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in FINAL_RUN_STATES:
                return state
            time.sleep(3)
        raise DagRunTimeoutError(
            f"{dag_id} run {run_id} not finished after {timeout_s:.0f}s; task states: "
            f"{self.task_states(dag_id, run_id)}"
        )

    def clear(self, dag_id: str, run_id: str) -> None:
        """Clear every task instance of the run (the run is queued again, same run_id)."""
        self._request(
            "POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True},
        )  # fmt: skip
