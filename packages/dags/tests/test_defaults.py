"""Default args and callbacks."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest

from market_dags.config import TaskDefaults
from market_dags.defaults import default_args, log_task_failure


def test_default_args_follow_the_policy() -> None:
    policy = TaskDefaults(retries=4, retry_delay=timedelta(seconds=7))
    args = default_args(policy)
    assert (args["retries"], args["retry_delay"]) == (4, timedelta(seconds=7))
    assert args["execution_timeout"] == policy.execution_timeout


def test_failure_callback_logs_where_and_why(caplog: pytest.LogCaptureFixture) -> None:
    ti = SimpleNamespace(dag_id="d1", task_id="t1", run_id="r1", try_number=2)
    with caplog.at_level(logging.ERROR, logger="market_dags.callbacks"):
        log_task_failure({"ti": ti, "exception": ValueError("boom")})
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    for part in ("d1.t1", "run r1", "try 2", "boom"):
        assert part in message, f"failure message names {part!r}"
    assert record.__dict__["task_id"] == "t1" and record.__dict__["try_number"] == 2
