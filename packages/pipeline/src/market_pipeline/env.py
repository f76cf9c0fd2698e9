"""Hand the pipeline's exact settings to child processes (Spark, dbt) as ``MARKET_*`` vars.

Children call ``load_settings()`` themselves; exporting the parent's resolved settings
(stack endpoints, generated MinIO credentials, per-run topic/prefix/database overrides)
guarantees both sides see the same values even when they came from code, not the
environment. ``PYTHONPATH`` carries the parent's ``sys.path`` so ``python -m market_spark``
works from a PEX too, where the packages are not installed in the interpreter.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from market_common import runtime
from market_common.settings import ENV_PREFIX, MarketSettings

# Sections whose scalar fields are exported; others (spark, dbt) pass through os.environ.
EXPORTED_SECTIONS = ("stack", "kafka", "s3", "snowflake", "contracts")


def _scalar(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)  # e.g. contracts.universe, comma-separated like MARKET_SYMBOLS
    return None  # None and other containers are left to the child's own defaults


def settings_env(settings: MarketSettings) -> dict[str, str]:
    """``MARKET_<SECTION>__<FIELD>`` for every scalar field of the exported sections."""
    env: dict[str, str] = {}
    for section in EXPORTED_SECTIONS:
        model = getattr(settings, section)
        for name, info in type(model).model_fields.items():
            text = _scalar(getattr(model, name))
            if text is not None:
                key = (info.alias or name).upper()
                env[f"{ENV_PREFIX}{section.upper()}__{key}"] = text
    env[f"{ENV_PREFIX}SYMBOLS"] = ",".join(settings.symbols)
    env[f"{ENV_PREFIX}SOURCE"] = settings.source
    return env


def child_env(settings: MarketSettings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` + the settings + our ``sys.path`` as PYTHONPATH, for a subprocess."""
    return runtime.child_env({**settings_env(settings), **(extra or {})})
