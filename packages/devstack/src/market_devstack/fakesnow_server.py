"""Run the fakesnow HTTP server with its databases persisted under ``--db-path``.

``fakesnow -s`` (0.12.1) ignores ``--db_path`` and keeps everything in memory, so this
launcher swaps the server's shared instance for a file-backed one, re-attaches the databases
found on disk (so data survives ``down``/``up``) and checkpoints them on SIGTERM.

Usage: ``python -m market_devstack.fakesnow_server --host 127.0.0.1 --port 8085 --db-path DIR``
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence
from pathlib import Path

_DB_NAME = re.compile(r"^[A-Z_][A-Z0-9_$]*$")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db-path", type=Path, required=True)
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


if __name__ == "__main__":
    raise SystemExit(main())
