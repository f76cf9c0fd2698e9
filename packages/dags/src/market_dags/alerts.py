"""Failure and deadline alerts through Airflow 3 notifiers, configured by environment.

``MARKET_DAGS__ALERTS__*`` (:class:`~market_dags.config.AlertsConfig`) selects the channels;
with none configured the DAGs only log (the default: a laptop has no mail server). A
notifier is a callable Airflow invokes with the task's or run's context, so the same
objects serve as ``on_failure_callback`` of tasks and DAGs. Subject and body are Jinja,
rendered by the notifier with that context.
"""

from __future__ import annotations

from typing import Any

from market_dags.config import AlertsConfig

SUBJECT = (
    "[market] {{ dag.dag_id }}{% if ti %}.{{ ti.task_id }}{% endif %} failed (run {{ run_id }})"
)
BODY = (
    "<p>DAG <b>{{ dag.dag_id }}</b>, run <code>{{ run_id }}</code>"
    "{% if ti %}, task <b>{{ ti.task_id }}</b> (try {{ ti.try_number }}){% endif %} failed."
    "</p><p>{{ exception or reason or '' }}</p>"
)
SLACK_TEXT = (
    ":red_circle: {{ dag.dag_id }}{% if ti %}.{{ ti.task_id }}{% endif %} failed "
    "(run {{ run_id }}): {{ exception or reason or '' }}"
)


class AlertChannelUnavailableError(RuntimeError):
    """A configured alert channel needs a provider that is not installed."""


def failure_notifiers(alerts: AlertsConfig) -> list[Any]:
    """One notifier per configured channel (empty when alerting is off)."""
    notifiers: list[Any] = []
    if alerts.smtp_conn_id and alerts.email_to:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifiers.append(
            SmtpNotifier(
                to=list(alerts.email_to),
                from_email=alerts.email_from,
                subject=SUBJECT,
                html_content=BODY,
                smtp_conn_id=alerts.smtp_conn_id,
            )
        )
    if alerts.slack_webhook_conn_id:
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
        except ImportError as exc:
            raise AlertChannelUnavailableError(
                "MARKET_DAGS__ALERTS__SLACK_WEBHOOK_CONN_ID is set but "
                "apache-airflow-providers-slack is not installed: install the "
                "market-dags[slack] extra or unset the variable"
            ) from exc
        notifiers.append(
            SlackWebhookNotifier(
                slack_webhook_conn_id=alerts.slack_webhook_conn_id, text=SLACK_TEXT
            )
        )
    return notifiers


def deadline_alert(alerts: AlertsConfig) -> Any | None:
    """A ``DeadlineAlert`` sending through the configured channels, or None.

    Airflow 3 replaced SLAs with deadline alerts: the scheduler fires the callback when a
    run is still unfinished ``alerts.deadline`` after it was queued.
    """
    if alerts.deadline is None or not alerts.enabled:
        return None
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=alerts.deadline,
        callback=AsyncCallback(
            "market_dags.alerts.send_deadline_alert", kwargs={"alerts": alerts.model_dump_json()}
        ),
    )


async def send_deadline_alert(alerts: str, **context: Any) -> None:
    """Deadline callback (runs in the triggerer): every configured channel, asynchronously."""
    config = AlertsConfig.model_validate_json(alerts)
    for notifier in failure_notifiers(config):
        await notifier.async_notify(context.get("context", context))
