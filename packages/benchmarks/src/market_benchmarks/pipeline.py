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


def result_record(result: RunResult, *, started_at: datetime) -> dict[str, Any]:
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
    result = Pipeline(
        replace(options, force=True), settings=isolated_settings(base, tag), console=console
    ).run()
    record = result_record(result, started_at=started_at)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{RESULT_NAME}.json").write_text(json.dumps(record, indent=2) + "\n")
    (results_dir / f"{RESULT_NAME}.md").write_text(markdown(record))
    return record
