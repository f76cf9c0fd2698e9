"""Config: environment parsing and the environment handed to every step."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from market_dags import steps
from market_dags.config import (
    BatchPipelineConfig,
    DeploymentSettings,
    RunnerKind,
    StreamingPipelineConfig,
    TopicsConfig,
)


def test_deployment_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_DAGS__RUNNER__KIND", "kubernetes")
    monkeypatch.setenv("MARKET_DAGS__SYMBOLS", "aapl, msft")
    monkeypatch.setenv("MARKET_DAGS__TASK_DEFAULTS__RETRIES", "5")
    monkeypatch.setenv("MARKET_DAGS__DBT__TARGET", "prod")
    d = DeploymentSettings()
    assert d.runner.kind is RunnerKind.KUBERNETES
    assert d.symbols == ["AAPL", "MSFT"]
    assert d.task_defaults.retries == 5
    assert d.step_environment()["MARKET_DBT__TARGET"] == "prod"


def test_invalid_symbols_are_rejected_with_the_setting_name() -> None:
    with pytest.raises(ValidationError, match="invalid ticker"):
        DeploymentSettings(symbols=["AAPL", "not a ticker"])


def test_step_environment_carries_topics_bucket_and_overrides() -> None:
    d = DeploymentSettings(
        topics=TopicsConfig(batch="b-topic"), bucket="lake", step_env={"MARKET_SOURCE": "replay"}
    )
    env = d.step_environment()
    assert env["MARKET_KAFKA__BATCH_TOPIC"] == "b-topic"
    assert "MARKET_KAFKA__REALTIME_TOPIC" not in env, "unset topics inherit the step's settings"
    assert env["MARKET_S3__BUCKET"] == "lake"
    assert env["MARKET_SOURCE"] == "replay", "step_env wins over derived values"


def test_naive_start_date_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        BatchPipelineConfig(start_date=datetime(2024, 1, 1))


def test_steps_follow_the_config() -> None:
    d = DeploymentSettings(symbols=["AAPL", "MSFT"], source="replay")
    batch = steps.batch_steps(BatchPipelineConfig(lookback_days=3, deployment=d))
    fetch = batch[0].args
    assert fetch[fetch.index("--symbols") + 1] == "AAPL,MSFT"
    assert fetch[fetch.index("--source") + 1] == "replay"
    start = fetch[fetch.index("--start") + 1]
    assert f"-params.{steps.LOOKBACK_PARAM}" in start, "window starts lookback_days before ds"
    stream = steps.streaming_steps(StreamingPipelineConfig(session_minutes=7, deployment=d))
    collect = stream[0].args
    assert collect[collect.index("--session-minutes") + 1] == "7"


def test_lookback_param_defaults_to_the_config() -> None:
    from market_dags.factories import build_batch_pipeline_dag

    dag = build_batch_pipeline_dag(BatchPipelineConfig(lookback_days=3))
    assert dag.params[steps.LOOKBACK_PARAM] == 3, "a scheduled run fetches lookback_days days"


def test_step_timeouts_override_per_task() -> None:
    d = DeploymentSettings(step_timeouts={steps.SPARK_BATCH: timedelta(minutes=3)})
    by_id = {s.task_id: s.with_timeout(d) for s in steps.batch_steps(BatchPipelineConfig())}
    assert by_id[steps.SPARK_BATCH].timeout == timedelta(minutes=3)
    assert by_id[steps.LOAD_HISTORICAL].timeout != timedelta(minutes=3)
