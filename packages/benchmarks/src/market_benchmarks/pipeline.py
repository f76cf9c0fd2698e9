"""``market-bench pipeline``: wall time of a full run from empty topics, prefixes and databases.

The run uses fresh, uniquely named topics, consumer groups, S3 prefixes and warehouse
databases (and ``force``), so nothing earlier runs left behind is reused: it measures a
"clean clone" run on the already-started local stack. Results go to
``benchmarks/results/pipeline.json`` and ``.md`` with per-step seconds and the machine's load.
"""

from __future__ import annotations

import json
import os
import platform
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from market_common.settings import MarketSettings, load_settings
from market_ingest.calendar import NEW_YORK
from market_pipeline.run import Pipeline, RunOptions, RunResult

RESULT_NAME = "pipeline"


def isolated_settings(settings: MarketSettings, tag: str) -> MarketSettings:
    """``settings`` with every topic, group, prefix and database renamed after ``tag``."""
    k, s3, sf = settings.kafka, settings.s3, settings.snowflake
    ident = tag.upper().replace("-", "_")
    return settings.model_copy(
        update={
            "kafka": k.model_copy(
                update={
                    "batch_topic": f"{tag}-batch",
                    "realtime_topic": f"{tag}-realtime",
                    "dlq_topic": f"{tag}-dlq",
                    "batch_group": f"{tag}-raw-batch",
                    "realtime_group": f"{tag}-raw-realtime",
                }
            ),
            "s3": s3.model_copy(
                update={
                    f"{zone}_prefix": f"{tag}/{zone}"
                    for zone in ("raw", "processed", "quarantine", "checkpoint")
                }
            ),
            "snowflake": sf.model_copy(
                update={"batch_database": f"{ident}_BATCH", "stream_database": f"{ident}_STREAM"}
            ),
        }
    )


def last_windows(settings: MarketSettings) -> dict[str, Any]:
    """Whether every symbol's last window of the session reached the warehouse (#14): the
    window ending at the session's close by the exchange calendar, per symbol."""
    from market_common.clients import snowflake_connection
    from market_ingest.calendar import session_bounds

    sf = settings.snowflake
    with snowflake_connection(settings, database=sf.stream_database) as conn:
        cursor = conn.cursor()
        table = f"{sf.schema_}.{sf.stream_table}"  # names from settings, not user input
        sql = f"select symbol, max(window_end), count(*) from {table} group by symbol"  # noqa: S608
        cursor.execute(sql)
        rows = cursor.fetchall()
    missing, closes = [], set()
    for symbol, last_end, _ in rows:
        last_end = last_end.replace(tzinfo=UTC) if last_end.tzinfo is None else last_end
        close = session_bounds(last_end.astimezone(NEW_YORK).date())[1].astimezone(UTC)
        closes.add(close.isoformat())
        if last_end < close:
            missing.append(symbol)
    return {
        "symbols": len(rows),
        "windows": sum(int(n) for *_, n in rows),
        "session_close_utc": sorted(closes),
        "symbols_missing_last_window": len(missing),
        "missing": sorted(missing),
    }


def result_record(
    result: RunResult, *, started_at: datetime, realtime: dict[str, Any] | None = None
) -> dict[str, Any]:
    options = result.options
    return {
        "name": RESULT_NAME,
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_time_s": round(result.seconds, 1),
        "parameters": {
            "years": options.years,
            "symbols": len(result.settings.symbols),
            "session_minutes": options.session_minutes,
            "source": options.source,
            "seed": options.seed,
        },
        "steps_s": {step.name: round(step.seconds, 1) for step in result.steps},
        "rows": {
            "kafka": result.counts.kafka if result.counts else None,
            "processed": result.counts.processed if result.counts else None,
            "warehouse": result.counts.warehouse if result.counts else None,
        },
        "realtime": realtime,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "notes": "local stack already running; fresh topics/prefixes/databases; Ivy jar cache warm",
    }


def markdown(record: dict[str, Any]) -> str:
    lines = [
        f"# market-pipeline run ({record['started_at']})",
        "",
        f"Wall time: **{record['wall_time_s']} s** for {record['parameters']['years']} years x "
        f"{record['parameters']['symbols']} symbols, {record['parameters']['session_minutes']}-minute "
        f"session, on {record['machine']['cpus']} CPUs "
        f"(load average at the end {record['machine']['load_average_1_5_15']}).",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {name} | {seconds} |" for name, seconds in record["steps_s"].items()],
        "",
        *(
            [
                f"Realtime: {rt['windows']} windows for {rt['symbols']} symbols in the warehouse; "
                f"symbols missing the window that ends at the session's close "
                f"({', '.join(rt['session_close_utc'])}): {rt['symbols_missing_last_window']}.",
                "",
            ]
            if (rt := record.get("realtime"))
            else []
        ),
        f"Notes: {record['notes']}.",
    ]
    return "\n".join(lines) + "\n"


def run_bench(
    options: RunOptions,
    *,
    results_dir: Path,
    settings: MarketSettings | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the pipeline in isolation and write ``<results_dir>/pipeline.{json,md}``."""
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    base = settings or load_settings()
    started_at = datetime.now(UTC)
    isolated = isolated_settings(base, tag)
    result = Pipeline(replace(options, force=True), settings=isolated, console=console).run()
    realtime = last_windows(isolated) if result.ok else None
    record = result_record(result, started_at=started_at, realtime=realtime)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{RESULT_NAME}.json").write_text(json.dumps(record, indent=2) + "\n")
    (results_dir / f"{RESULT_NAME}.md").write_text(markdown(record))
    return record
