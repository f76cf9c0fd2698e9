"""Config rendering, credentials and pid handling: no services needed."""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from market_common.settings import MarketSettings, StackSettings
from market_devstack.credentials import read_env_file
from market_devstack.errors import UnknownServiceError
from market_devstack.kafka import (
    KAFKA_VERSION,
    new_cluster_id,
    render_pom,
    render_server_properties,
)
from market_devstack.minio import (
    ACCESS_KEY_VAR,
    SECRET_KEY_VAR,
    ensure_credentials,
    minio_ldflags,
)
from market_devstack.process import PidFile, PidRecord, spawn_detached, terminate
from market_devstack.stack import normalise_services, stack_settings
from market_testing.pytest_plugin import UniqueNames


def _settings(tmp_path: Path) -> MarketSettings:
    return MarketSettings(stack=StackSettings(state_dir=tmp_path, kafka_port=19092))


def _props(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_server_properties_bind_loopback_single_node(tmp_path: Path) -> None:
    props = _props(
        render_server_properties(
            host="127.0.0.1", port=19092, controller_port=19093, data_dir=tmp_path
        )
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path)
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert "0.0.0.0" not in "".join(props.values())  # noqa: S104


def test_pom_pins_kafka_and_tools() -> None:
    pom = render_pom()
    assert f"<artifactId>kafka_2.13</artifactId>\n      <version>{KAFKA_VERSION}</version>" in pom
    assert "<artifactId>kafka-tools</artifactId>" in pom
    assert "log4j-slf4j-impl" in pom


def test_cluster_id_is_16_bytes_urlsafe_base64() -> None:
    cid = new_cluster_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_cluster_id_never_starts_with_a_dash() -> None:
    """Regression: an id like ``-abc…`` made ``kafka-storage format -t <id>`` fail (seen in
    the three-broker fault test); 1 in 64 random ids starts with ``-``, so 2,000 draw it."""
    assert not any(new_cluster_id().startswith("-") for _ in range(2000))


def test_minio_ldflags_stamp_release() -> None:
    flags = minio_ldflags()
    assert "cmd.ReleaseTag=RELEASE.2025-09-07T16-13-09Z" in flags
    assert "cmd.Version=2025-09-07T16:13:09Z" in flags


def test_credentials_generated_once_0600_and_reused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    env_file = tmp_path / "stack.env"
    env_file.write_text("MARKET_LOG_LEVEL=DEBUG")  # existing lines are kept
    first = ensure_credentials(settings)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = read_env_file(env_file)
    assert values["MARKET_LOG_LEVEL"] == "DEBUG"
    assert (values[ACCESS_KEY_VAR], values[SECRET_KEY_VAR]) == first
    assert ensure_credentials(settings) == first
    assert len(first[1]) >= 32


def test_stack_settings_point_clients_at_stack(tmp_path: Path) -> None:
    settings = stack_settings(_settings(tmp_path))
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.s3.endpoint_url == "http://127.0.0.1:9000"
    assert settings.s3.access_key_id is not None
    assert settings.snowflake.port == 8085


def test_normalise_services() -> None:
    # "spark" is always listed: it expands to no process unless stack.spark_workers > 0.
    assert normalise_services(None) == ["kafka", "minio", "snowflake", "spark"]
    assert normalise_services("snowflake, kafka") == ["kafka", "snowflake"]
    assert normalise_services(["fakesnow", "s3"]) == ["minio", "snowflake"]
    with pytest.raises(UnknownServiceError, match="choose from"):
        normalise_services("zookeeper")


def test_pid_file_tracks_detached_process(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    proc = spawn_detached(argv, log_path=tmp_path / "logs" / "x.log", cwd=tmp_path)
    pid_file = PidFile(tmp_path / "pids" / "x.pid")
    record = pid_file.write(proc.pid, argv)
    assert pid_file.live() == record
    assert record.argv == tuple(argv)
    # Own session, so signals to the CLI's terminal never reach it.
    assert subprocess.run(["ps", "-o", "sid=", "-p", str(proc.pid)], capture_output=True,
                          text=True, check=True).stdout.strip() == str(proc.pid)  # fmt: skip
    terminate(record, timeout_s=5)
    proc.wait(timeout=5)
    assert pid_file.live() is None
    assert not pid_file.path.exists()  # stale file removed


def test_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "x.pid")
    # Our own pid with a different start time: a recycled pid must not count as running.
    pid_file.path.write_text('{"pid": %d, "start_time": 1, "argv": []}' % __import__("os").getpid())
    assert pid_file.live() is None
    assert not PidRecord(2**22 + 7, None).is_alive()


def test_corrupt_pid_file_is_ignored(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "x.pid")
    pid_file.path.write_text("not json")
    assert pid_file.read() is None


def test_unique_names_are_valid_and_distinct() -> None:
    names = UniqueNames("test_something[param-1]")
    a, b = names("bucket"), names("bucket")
    assert a != b
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", a)  # S3 bucket + Kafka topic rules
    assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", names.ident("db"))


def test_airflow_is_an_opt_in_group() -> None:
    assert "postgres" not in normalise_services(None), "the core stack has no Airflow"
    with_airflow = normalise_services(None, with_="airflow")
    assert with_airflow[:4] == ["kafka", "minio", "snowflake", "spark"]
    assert with_airflow[4:] == [
        "postgres", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
        "airflow-triggerer",
    ], "PostgreSQL first, then the API server the others report their health to"  # fmt: skip
    assert normalise_services("airflow") == with_airflow[4:], "a group name selects its services"
    with pytest.raises(UnknownServiceError, match="--with"):
        normalise_services(None, with_="grafana")


def test_airflow_config_agrees_with_the_api_port_and_keeps_secrets(tmp_path: Path) -> None:
    from market_devstack.airflow import ADMIN_PASSWORD_VAR, AirflowHome

    settings = MarketSettings(stack=StackSettings(state_dir=tmp_path, airflow_port=18080))
    home = AirflowHome(settings)
    home.render()
    cfg = home.config()
    assert cfg["api"]["port"] == "18080"
    assert (
        cfg["core"]["execution_api_server_url"] == "http://127.0.0.1:18080/execution/"
    ), "tasks reach the execution API on the API server's port"
    assert cfg["core"]["executor"] == "LocalExecutor"
    assert cfg["database"]["sql_alchemy_conn"].startswith("postgresql+psycopg2://market:")
    assert stat.S_IMODE(home.config_path.stat().st_mode) == 0o600, "airflow.cfg holds secrets"
    password = read_env_file(tmp_path / "stack.env")[ADMIN_PASSWORD_VAR]
    assert len(password) >= 20, "a generated admin password"
    assert json.loads((home.path / "passwords.json").read_text()) == {"admin": password}
    again = AirflowHome(settings).config()
    assert again["core"]["fernet_key"] == cfg["core"]["fernet_key"], "secrets are reused"


def test_airflow_env_drops_inherited_overrides_of_what_the_stack_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from market_devstack.airflow import AirflowHome

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////tmp/other.db")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "3600")
    home = AirflowHome(MarketSettings(stack=StackSettings(state_dir=tmp_path)))
    env = home.environment()
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env, "airflow.cfg's PostgreSQL wins"
    assert env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] == "False", "other settings pass through"
    assert (
        env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] == "3600"
    ), "a tuning default of the stack yields to the environment"
    assert home.rendered()["dag_processor"]["min_file_process_interval"] == "120"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
