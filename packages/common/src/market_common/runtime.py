"""Helpers for the processes a step runs: child environments, step failures, the clock.

One definition each, imported by every runner (the pipeline, the Airflow runners, the dbt
runner, the benchmarks), so a child started by any of them sees the same code and settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market_common.settings import MarketSettings

# Sections whose scalar fields settings_env exports; others (spark, dbt) pass through the
# environment as they are.
EXPORTED_SECTIONS = ("stack", "kafka", "s3", "snowflake", "contracts")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (created with its parent), released on exit.

    For work that concurrent processes must not interleave on one machine: the local stack's
    ``up``/``down`` from parallel test processes, Spark drivers resolving into one Ivy home.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class StepFailedError(RuntimeError):
    """A step of a pipeline failed (a component raised, or its command exited non-zero).

    The message names the step and where its output is (the task log, a log file).
    """


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (callers that need naive UTC drop tzinfo)."""
    return datetime.now(UTC)


def python_path() -> str:
    """The parent's ``sys.path`` as an absolute ``PYTHONPATH``.

    Under a PEX or a Pants test sandbox first-party code is on ``sys.path`` only (often as
    relative paths), so a child started with ``sys.executable -m pkg`` from another working
    directory would not find it.
    """
    return os.pathsep.join(os.path.abspath(p) for p in sys.path if p)


def _scalar(value: Any) -> str | None:
    from pydantic import SecretStr

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
    """``MARKET_<SECTION>__<FIELD>`` for every scalar field of the exported sections.

    Children call ``load_settings()`` themselves; exporting the parent's resolved settings
    (stack endpoints, generated credentials, per-run topic/prefix/database overrides)
    guarantees both sides see the same values even when they came from code, not the
    environment.
    """
    from market_common.settings import ENV_PREFIX

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


def child_env(
    extra: Mapping[str, str] | None = None,
    *,
    base: Mapping[str, str] | None = None,
    settings: MarketSettings | None = None,
) -> dict[str, str]:
    """The environment for a child process that must see our code (and our settings).

    ``base`` (default ``os.environ``), then :func:`settings_env` of ``settings`` when given,
    then ``extra``; ``PYTHONPATH`` is always our ``sys.path`` (:func:`python_path`), so
    ``python -m market_spark`` works from a PEX too, where the packages are not installed.
    """
    env = dict(os.environ if base is None else base)
    if settings is not None:
        env.update(settings_env(settings))
    env.update(extra or {})
    env["PYTHONPATH"] = python_path()
    return env
