"""Default task arguments and failure/retry callbacks shared by every DAG (alerts: alerts.py)."""

from __future__ import annotations

from typing import Any

from market_common.logging import get_logger
from market_dags.alerts import failure_notifiers
from market_dags.config import AlertsConfig, TaskDefaults

log = get_logger("market_dags.callbacks")


def _context_fields(context: Any) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": str(context.get("logical_date")),
    }


def log_task_failure(context: Any) -> None:
    """Failure callback: one structured error line with where, which try and why."""
    fields = _context_fields(context)
    exc = context.get("exception")
    log.error(
        "task failed: %s.%s (run %s, try %s): %s",
        fields["dag_id"], fields["task_id"], fields["run_id"], fields["try_number"], exc,
        extra={**fields, "error": repr(exc)},
    )  # fmt: skip


def log_task_retry(context: Any) -> None:
    """Retry callback: a warning, so flaky steps are visible before they exhaust retries."""
    fields = _context_fields(context)
    log.warning(
        "task will retry: %s.%s (run %s, try %s): %s",
        fields["dag_id"], fields["task_id"], fields["run_id"], fields["try_number"],
        context.get("exception"),
        extra=fields,
    )  # fmt: skip


def log_dag_failure(context: Any) -> None:
    """DAG-level failure callback (e.g. dagrun_timeout): names the run and the reason."""
    fields = _context_fields(context)
    log.error(
        "dag run failed: %s (run %s): %s",
        fields["dag_id"], fields["run_id"], context.get("reason"),
        extra=fields,
    )  # fmt: skip


def default_args(defaults: TaskDefaults, alerts: AlertsConfig | None = None) -> dict[str, Any]:
    """``default_args`` for a DAG: owner, retries with (backed-off) delay, timeout, callbacks.

    A failed task always logs; the configured notifiers (``alerts``) are called after that.
    """
    notifiers = failure_notifiers(alerts or AlertsConfig())
    return {
        "owner": defaults.owner,
        "retries": defaults.retries,
        "retry_delay": defaults.retry_delay,
        "retry_exponential_backoff": defaults.retry_exponential_backoff,
        "max_retry_delay": defaults.max_retry_delay,
        "execution_timeout": defaults.execution_timeout,
        "depends_on_past": False,
        "on_failure_callback": [log_task_failure, *notifiers],
        "on_retry_callback": log_task_retry,
    }
