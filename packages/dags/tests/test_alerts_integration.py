"""Failure alerts reach a real SMTP server: an aiosmtpd sink on a free loopback port.

A DAG built by the factories with ``MARKET_DAGS__ALERTS__*`` pointing at the sink (an
Airflow connection from ``AIRFLOW_CONN_<ID>``) runs one step that exits non-zero under
``dag.test()``; the task's failure callback must deliver one mail naming the DAG, task and
run to the configured recipient. Without alert settings no notifier is attached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from market_dags.config import (
    AlertsConfig,
    DeploymentSettings,
    StreamingPipelineConfig,
    TaskDefaults,
)


class Sink:
    """Collects every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    from aiosmtpd.controller import Controller

    from market_testing.pytest_plugin import free_port

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def test_no_alert_settings_attach_no_notifier() -> None:
    from market_dags.alerts import failure_notifiers

    assert failure_notifiers(AlertsConfig()) == [], "alerting is off by default"


def test_failed_task_mails_the_configured_recipient(
    airflow_db: Path, smtp_sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from market_dags import steps
    from market_dags.factories import build_streaming_pipeline_dag

    sink, port = smtp_sink
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_tls": True, "disable_ssl": True}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_ALERTS_SMTP", json.dumps(conn))
    deployment = DeploymentSettings(
        symbols=["AAPL"],
        task_defaults=TaskDefaults(retries=0),
        alerts=AlertsConfig(smtp_conn_id="market_alerts_smtp", email_to=["oncall@example.test"]),
    )
    config = StreamingPipelineConfig(deployment=deployment)
    dag = build_streaming_pipeline_dag(config)
    # The first step fails at once and for real: its CLI rejects an unknown option (exit 2).
    dag.get_task(steps.COLLECT_TICKS).arguments = ["stream", "--no-such-option"]
    dag_run = dag.test()
    assert str(dag_run.state) == "failed", "the run fails with its first task"

    assert sink.messages, "the failure was mailed"
    assert all(rcpts == ["oncall@example.test"] for rcpts, _ in sink.messages), sink.messages
    subjects = [str(mail["Subject"]) for _, mail in sink.messages]
    task_mail = f"{config.dag_id}.{steps.COLLECT_TICKS} failed"
    assert any(task_mail in s for s in subjects), f"a mail names the failed task: {subjects}"
