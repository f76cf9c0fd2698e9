"""`dbt build` wall time on ~1.26M daily rows (10 years x 500 symbols).

The rows go through the real path: Parquet in the object store → the bulk loader → the
warehouse (the emulator by default); then the batch lineage of the dbt project is built and
tested on its own databases, so the run never touches the pipeline's data.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from market_benchmarks.loader import historical_table, merge_section
from market_benchmarks.pipeline import isolated_settings
from market_common.clients import s3_client
from market_common.settings import MarketSettings
from market_loaders import load_historical

SECTION = "dbt_build"
# The batch lineage: the realtime mart has no rows to work on here.
SELECT = "+mart_stock_performance +mart_daily_summary"


def run_dbt_bench(
    settings: MarketSettings, *, symbols: int = 500, days: int = 2520, out_dir: Path
) -> dict[str, Any]:
    """Load ``symbols x days`` bars, time ``dbt build`` on them, write warehouse.{json,md}."""
    from market_dbt.runner import DbtProject, DbtRunner, snowflake_env

    settings = isolated_settings(settings, f"dbtbench-{uuid.uuid4().hex[:8]}")
    tables = historical_table(symbols, days, date(2015, 1, 1))
    s3 = s3_client(settings)
    root = f"{settings.s3.processed_prefix}/historical"
    for table in tables:
        day = table.column("trade_date")[0].as_py()
        buf = io.BytesIO()
        pq.write_table(table, buf)
        s3.put_object(
            Bucket=settings.s3.bucket, Key=f"{root}/date={day}/part-0.parquet", Body=buf.getvalue()
        )
    started = time.perf_counter()
    loaded = load_historical(settings, s3=s3)
    load_s = time.perf_counter() - started

    runner = DbtRunner(DbtProject.from_settings(settings), env=snowflake_env(settings))
    started = time.perf_counter()
    result = runner.invoke("build", "--select", SELECT)
    build_s = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for node in result.results:
        statuses[node["status"]] = statuses.get(node["status"], 0) + 1

    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "warehouse": (
            "fakesnow emulator" if settings.snowflake.is_local else settings.snowflake.account
        ),
        "rows": loaded.rows_staged,
        "symbols": symbols,
        "trading_days": days,
        "load_seconds": round(load_s, 1),
        "dbt_build_seconds": round(build_s, 1),
        "select": SELECT,
        "node_statuses": statuses,
    }
    _write(report, out_dir)
    return report


def _write(report: dict[str, Any], out_dir: Path) -> None:
    markdown = "\n".join(
        [
            "## dbt build on the daily history",
            "",
            f"Measured {report['measured_at']} on {report['warehouse']}, {report['cores']} cores: "
            f"{report['rows']:,} daily rows ({report['symbols']} symbols x "
            f"{report['trading_days']} trading days).",
            "",
            "| step | seconds |",
            "|---|---:|",
            f"| bulk load into the warehouse | {report['load_seconds']} |",
            f"| `dbt build --select {report['select']}` | {report['dbt_build_seconds']} |",
            "",
            f"Node results: {report['node_statuses']}.",
        ]
    )
    merge_section(out_dir, SECTION, report, markdown)
