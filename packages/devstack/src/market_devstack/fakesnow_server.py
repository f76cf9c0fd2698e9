"""Run the fakesnow HTTP server with its databases persisted under ``--db-path``.

``fakesnow -s`` (0.12.1) ignores ``--db_path`` and keeps everything in memory, so this
launcher swaps the server's shared instance for a file-backed one, re-attaches the databases
found on disk (so data survives ``down``/``up``) and checkpoints them on SIGTERM.

``--statement-log FILE`` appends one JSON line per login and per statement (user, role,
session database/schema, SQL text, success): the record a least-privilege check reads,
because the emulator itself enforces no grants (infra/tests/test_snowflake_grants.py).

Usage: ``python -m market_devstack.fakesnow_server --host 127.0.0.1 --port 8085 --db-path DIR``
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

_DB_NAME = re.compile(r"^[A-Z_][A-Z0-9_$]*$")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db-path", type=Path, required=True)
    parser.add_argument("--statement-log", type=Path, default=None)
    args = parser.parse_args(argv)

    import fakesnow.server as fakesnow_server
    import uvicorn
    from fakesnow.instance import FakeSnow

    db_path: Path = args.db_path.resolve()
    db_path.mkdir(parents=True, exist_ok=True)
    instance = FakeSnow(db_path=db_path)
    log = logging.getLogger("market_devstack.fakesnow")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    for db_file in sorted(db_path.glob("*.db")):
        if _DB_NAME.match(db_file.stem):
            # Connecting with a database name ATTACHes <db_path>/<NAME>.db if not attached.
            instance.connect(database=db_file.stem)
            log.info("re-attached database %s from %s", db_file.stem, db_file)
    fakesnow_server.shared_fs = instance
    if args.statement_log is not None:
        StatementLog(args.statement_log).install(fakesnow_server.app)

    server = uvicorn.Server(
        uvicorn.Config(
            fakesnow_server.app,
            host=args.host,
            port=args.port,
            log_level="info",
            access_log=False,
        )
    )
    server.run()  # returns after SIGTERM/SIGINT (uvicorn handles both)

    attached = instance.duck_conn.execute(
        "select database_name from duckdb_databases() where not internal and path is not null"
    ).fetchall()
    for (name,) in attached:
        try:
            instance.duck_conn.execute(f'CHECKPOINT "{name}"')
        except Exception as exc:  # best effort: the WAL is replayed on the next attach anyway
            log.warning("checkpoint of %s failed: %s", name, exc)
    instance.duck_conn.close()
    log.info("fakesnow stopped; databases checkpointed in %s", db_path)
    return 0


Endpoint = Callable[[Any], Awaitable[Any]]


class StatementLog:
    """Who ran which statement on the emulator, one JSON object per line.

    Wraps fakesnow's login and query endpoints (the same handlers run; the wrapper only
    reads the request and response): a login line maps the session token to the login
    user and the role the client asked for, every query line names that session's user
    and role with the SQL text as the client sent it.
    """

    LOGIN = "/session/v1/login-request"
    QUERY = "/queries/v1/query-request"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sessions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def install(self, app: Any) -> None:
        from starlette.routing import Route

        wrappers = {self.LOGIN: self._login, self.QUERY: self._query}
        for index, route in enumerate(app.router.routes):
            if isinstance(route, Route) and route.path in wrappers:
                wrapped = wrappers[route.path](route.endpoint)
                app.router.routes[index] = Route(route.path, wrapped, methods=["POST"])

    def _write(self, record: dict[str, Any]) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")

    @staticmethod
    async def _json_body(request: Any) -> dict[str, Any]:
        body = await request.body()  # cached by Starlette: the handler reads it again
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return dict(json.loads(body))

    def _login(self, endpoint: Endpoint) -> Endpoint:
        async def login(request: Any) -> Any:
            body = await self._json_body(request)
            response = await endpoint(request)
            token = (json.loads(response.body).get("data") or {}).get("token")
            session = {
                "session": len(self._sessions) + 1,
                "user": body.get("data", {}).get("LOGIN_NAME"),
                "role": request.query_params.get("roleName"),
                "database": request.query_params.get("databaseName"),
                "schema": request.query_params.get("schemaName"),
            }
            if token:
                self._sessions[token] = session
            self._write({"event": "login", **session})
            return response

        return login

    def _query(self, endpoint: Endpoint) -> Endpoint:
        async def query(request: Any) -> Any:
            body = await self._json_body(request)
            auth = request.headers.get("Authorization", "")
            session = self._sessions.get(auth[17:-1], {})
            response = await endpoint(request)
            success = bool(json.loads(response.body).get("success"))
            self._write(
                {"event": "query", **session, "sql": body.get("sqlText"), "success": success}
            )
            return response

        return query


if __name__ == "__main__":
    raise SystemExit(main())
