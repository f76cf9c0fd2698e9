"""Container runners (Docker, Kubernetes): entrypoint, forwarded settings, secrets by reference.

The operators are the providers' real classes (the `docker` / `kubernetes` extras); what a
container finally runs is proven by tools/images' image-run test, which executes these very
operators' image, entrypoint, command and environment inside the built images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from market_common.settings import MarketSettings
from market_dags import steps
from market_dags.config import (
    BatchPipelineConfig,
    DbtConfig,
    DbtPipelineConfig,
    DeploymentSettings,
    RunnerConfig,
    RunnerKind,
)
from market_dags.forwarding import container_environment, secret_names, settings_variables
from market_dags.runners import build_step_operator

pytest.importorskip("airflow.providers.docker.operators.docker", reason="extra `docker`")
pytest.importorskip("airflow.providers.cncf.kubernetes.operators.pod", reason="extra `kubernetes`")

SECRET = "s3cr3t-value-never-in-the-dag"
WORKER_ENV = {
    "MARKET_KAFKA__BOOTSTRAP_SERVERS": "kafka:19092",
    "MARKET_S3__ENDPOINT_URL": "http://minio:9000",
    "MARKET_S3__ACCESS_KEY_ID": "pipeline-user",
    "MARKET_S3__SECRET_ACCESS_KEY": SECRET,
    "MARKET_SNOWFLAKE__ACCOUNT": "myorg-acct",
    "MARKET_SNOWFLAKE__ROLE": "MARKET_LOADER",
    # Image-owned and local-stack variables stay behind.
    "MARKET_DBT__PROJECT_DIR": "/home/worker/checkout/dbt",
    "MARKET_STACK__KAFKA_PORT": "19999",
}


def _load_step(kind: RunnerKind, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    deployment = DeploymentSettings(runner=RunnerConfig(kind=kind))
    load = next(
        s
        for s in steps.batch_steps(BatchPipelineConfig(deployment=deployment))
        if s.task_id == steps.LOAD_HISTORICAL
    )
    with DAG("container_runner_probe", schedule=None):
        return build_step_operator(
            load, runner=deployment.runner, env=deployment.step_environment()
        )


def test_docker_runner_replaces_the_entrypoint_instead_of_prefixing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding: ENTRYPOINT market-ingest + command [market-load, …] ran `market-ingest market-load`."""
    op = _load_step(RunnerKind.DOCKER, monkeypatch)
    assert op.entrypoint == [steps.LOAD], "the step's script is the container's entrypoint"
    assert op.command == ["historical", "--json"], "the command holds the arguments only"
    assert op.image == "market/pipeline:latest"


def test_step_environment_forwards_kafka_s3_and_snowflake_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding: step_environment() did not forward MARKET_KAFKA__*, MARKET_S3__*, MARKET_SNOWFLAKE__*."""
    op = _load_step(RunnerKind.DOCKER, monkeypatch)
    env = op.environment
    for name in (
        "MARKET_KAFKA__BOOTSTRAP_SERVERS",
        "MARKET_S3__ENDPOINT_URL",
        "MARKET_SNOWFLAKE__ACCOUNT",
        "MARKET_SNOWFLAKE__ROLE",
    ):
        assert env.get(name) == WORKER_ENV[name], f"{name} is forwarded to the container"
    assert env["MARKET_SYMBOLS"], "the DAG's own step environment is kept"
    assert "MARKET_DBT__PROJECT_DIR" not in env, "the image owns where its dbt project lives"
    assert "MARKET_STACK__KAFKA_PORT" not in env, "the local stack section is not forwarded"


def test_docker_secrets_are_resolved_in_the_worker_never_in_the_dag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    op = _load_step(RunnerKind.DOCKER, monkeypatch)
    assert "MARKET_S3__SECRET_ACCESS_KEY" not in op.environment, "secrets are not templated values"
    assert op._private_environment == {}, "no secret value at parse time"
    serialized = json.dumps(DagSerialization.to_dict(op.dag), default=str)
    assert SECRET not in serialized, "the serialized DAG holds no secret value"
    # What the worker does when the task starts.
    op._pre_execute_hook({"task": op})
    assert op._private_environment == {
        "MARKET_S3__ACCESS_KEY_ID": "pipeline-user",
        "MARKET_S3__SECRET_ACCESS_KEY": SECRET,
    }


def test_kubernetes_runner_references_secrets_and_overrides_the_entrypoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op = _load_step(RunnerKind.KUBERNETES, monkeypatch)
    assert op.cmds == [steps.LOAD] and op.arguments == ["historical", "--json"]
    by_name = {v.name: v for v in op.env_vars}
    assert by_name["MARKET_KAFKA__BOOTSTRAP_SERVERS"].value == "kafka:19092"
    ref = by_name["MARKET_S3__SECRET_ACCESS_KEY"]
    assert ref.value is None, "the secret value is not in the pod spec"
    assert ref.value_from.secret_key_ref.name == "market-secrets"
    assert ref.value_from.secret_key_ref.key == "MARKET_S3__SECRET_ACCESS_KEY"
    assert SECRET not in repr(op.env_vars)


def test_every_forwarded_name_is_read_by_the_settings_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The allow-list is derived from MarketSettings: each name must round-trip through it."""
    variables = settings_variables()
    assert len(variables) > 40, "every nested section is walked"
    for variable in variables:
        monkeypatch.delenv(variable.name, raising=False)
    string_fields = {
        "MARKET_KAFKA__BATCH_TOPIC": ("kafka", "batch_topic"),
        "MARKET_SNOWFLAKE__SCHEMA": ("snowflake", "schema_"),  # the field's alias
        "MARKET_DBT__SNOWFLAKE_USER": ("dbt", "snowflake_user"),
        "MARKET_S3__SECRET_ACCESS_KEY": ("s3", "secret_access_key"),
    }
    names = {v.name for v in variables}
    for name in string_fields:
        assert name in names, f"{name} is on the allow-list"
        monkeypatch.setenv(name, "PROBE_VALUE")
    settings = MarketSettings()
    for name, (section, field) in string_fields.items():
        value = getattr(getattr(settings, section), field)
        shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        assert shown == "PROBE_VALUE", f"MarketSettings reads {name}"


def test_secret_fields_are_exactly_the_secretstr_fields() -> None:
    assert set(secret_names()) == {
        "MARKET_KAFKA__SASL_PASSWORD",
        "MARKET_S3__ACCESS_KEY_ID",
        "MARKET_S3__SECRET_ACCESS_KEY",
        "MARKET_SNOWFLAKE__PASSWORD",
        "MARKET_SNOWFLAKE__PRIVATE_KEY_PASSPHRASE",
    }


def test_a_secret_in_step_env_is_moved_out_of_the_plain_values() -> None:
    forwarded = container_environment(
        {"MARKET_SNOWFLAKE__PASSWORD": "pw", "MARKET_SOURCE": "replay"}, source={}
    )
    assert forwarded.plain == {"MARKET_SOURCE": "replay"}
    assert "MARKET_SNOWFLAKE__PASSWORD" in forwarded.secrets


def test_dbt_commands_in_containers_use_the_image_project(dbt_manifest: Path) -> None:
    """dbt steps and cosmos's per-model tasks run `dbt` on the project baked into the image."""
    from market_dags.factories import build_dbt_pipeline_dag

    deployment = DeploymentSettings(
        runner=RunnerConfig(kind=RunnerKind.DOCKER),
        dbt=DbtConfig(manifest_path=dbt_manifest),
    )
    config = DbtPipelineConfig(deployment=deployment)
    freshness = steps.dbt_steps(config)[steps.SOURCE_FRESHNESS]
    args = list(freshness.args)
    assert args[args.index("--project-dir") + 1] == "/opt/market/dbt"
    assert args[args.index("--profiles-dir") + 1] == "/opt/market/dbt"
    dag = build_dbt_pipeline_dag(config)
    model_tasks = [
        t
        for t in dag.tasks
        if t.task_id.startswith(f"{steps.MARTS}.") and hasattr(t, "build_command")
    ]
    assert model_tasks, "cosmos rendered per-model tasks"
    for task in model_tasks:
        assert task.entrypoint == ["/usr/bin/env"], f"{task.task_id}: `dbt …` runs through env"
        assert task.image == deployment.runner.pipeline_image
