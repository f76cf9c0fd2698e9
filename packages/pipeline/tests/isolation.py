"""Names and settings that isolate one pipeline run from every other run on the stack."""

from __future__ import annotations

import shutil
from pathlib import Path

from market_dbt.runner import find_project_dir


def isolated_run_env(prefix: str, work: Path) -> dict[str, str]:
    """``MARKET_*`` overrides: own topics, consumer groups, S3 prefixes, warehouse databases
    and a scratch copy of the dbt project under ``work`` (dbt writes target/ and logs/)."""
    ident = prefix.upper().replace("-", "_")
    project = work / "dbt"
    shutil.copytree(
        find_project_dir(Path(__file__).parent),
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    return {
        "MARKET_KAFKA__BATCH_TOPIC": f"{prefix}-batch",
        "MARKET_KAFKA__REALTIME_TOPIC": f"{prefix}-rt",
        "MARKET_KAFKA__DLQ_TOPIC": f"{prefix}-dlq",
        "MARKET_KAFKA__BATCH_GROUP": f"{prefix}-gb",
        "MARKET_KAFKA__REALTIME_GROUP": f"{prefix}-gr",
        "MARKET_SNOWFLAKE__BATCH_DATABASE": f"{ident}_BATCH",
        "MARKET_SNOWFLAKE__STREAM_DATABASE": f"{ident}_STREAM",
        "MARKET_DBT__PROJECT_DIR": str(project),
        **{
            f"MARKET_S3__{zone.upper()}_PREFIX": f"{prefix}/{zone}"
            for zone in ("raw", "processed", "quarantine", "checkpoint")
        },
    }
