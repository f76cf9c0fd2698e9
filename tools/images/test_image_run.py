"""Every DAG step, exactly as the Docker runner assembles it, run inside its built image.

For each step of the three DAGs (batch: produce → consume → Spark batch → load; streaming:
collect ticks → archive ‖ Spark availableNow → load; dbt: freshness → staging → marts →
tests) the test builds the DAG factories' own DockerOperator (``MARKET_DAGS__RUNNER__KIND``
= docker), renders its templates as Airflow would for one run, resolves its secrets the
way the worker does, and runs that image with that entrypoint, command and environment
against the local stack over the host network. Nothing about a step is retyped here.

How a step runs: ``buildah run --isolation chroot`` in one working container per image (no
Docker engine here; with chroot isolation the container shares the host's network, i.e.
``--network host``). The environment goes in through a 0600 file that a tiny ``sh`` wrapper
sources before it ``exec``s the entrypoint with the exact argv — never as ``--env K=V``,
which would put the secrets on buildah's command line.

Opt-in (it needs the images and takes ~10-20 min): ``MARKET_IMAGE_RUN=1`` after
``./pants package images``; CI runs it in its own job on main (.github/workflows/ci.yml).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from market_testing.pytest_plugin import UniqueNames

pytestmark = pytest.mark.skipif(
    os.environ.get("MARKET_IMAGE_RUN") != "1" or shutil.which("buildah") is None,
    reason="image-run test is opt-in: MARKET_IMAGE_RUN=1 after `./pants package images` "
    "(needs buildah and the built images; CI runs it in the `images` job)",
)

TAG = os.environ.get("MARKET_IMAGE_TAG", "latest")
LOGICAL_DATE = datetime(2024, 6, 7, tzinfo=UTC)
STEP_TIMEOUT_S = 900
# Inside the working container (its own /tmp, not the host's); removed before the step runs.
CONTAINER_ENV_FILE = "/tmp/market-step.env"  # noqa: S108


class WorkingContainers:
    """One buildah working container per image, removed at the end."""

    def __init__(self) -> None:
        self.containers: dict[str, str] = {}

    def container(self, image: str) -> str:
        if image not in self.containers:
            local = image if image.startswith("localhost/") else f"localhost/{image}"
            out = subprocess.run(
                ["buildah", "from", "--pull=false", local],
                capture_output=True,
                text=True,
                check=True,
            )
            self.containers[image] = out.stdout.strip()
        return self.containers[image]

    def run(
        self, image: str, entrypoint: list[str], command: list[str], env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        container = self.container(image)
        user = subprocess.run(
            ["buildah", "inspect", "--type", "container", "--format",
             "{{.OCIv1.Config.User}}", container],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            env_file = Path(tmp) / "step.env"
            fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.writelines(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
            subprocess.run(
                ["buildah", "copy", "--chown", user or "0", "--chmod", "0600", container,
                 str(env_file), CONTAINER_ENV_FILE],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        wrapper = f'. {CONTAINER_ENV_FILE} && rm {CONTAINER_ENV_FILE} && exec "$@"'
        return subprocess.run(
            ["buildah", "run", "--isolation", "chroot", container, "--",
             "/bin/sh", "-c", wrapper, "step", *entrypoint, *command],
            capture_output=True, text=True, check=False, timeout=STEP_TIMEOUT_S,
        )  # fmt: skip

    def remove(self) -> None:
        for container in self.containers.values():
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


@pytest.fixture(scope="module")
def containers() -> Iterator[WorkingContainers]:
    pool = WorkingContainers()
    try:
        yield pool
    finally:
        pool.remove()


def _stack_environment(local_stack: Any) -> dict[str, str]:
    """The worker's MARKET_* environment: the local stack's endpoints and credentials."""
    settings = local_stack.settings
    s3 = settings.s3
    env = {
        "MARKET_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "MARKET_S3__ENDPOINT_URL": str(s3.endpoint_url),
        "MARKET_SNOWFLAKE__ACCOUNT": settings.snowflake.account,
        "MARKET_SNOWFLAKE__HOST": str(settings.snowflake.host),
        "MARKET_SNOWFLAKE__PORT": str(settings.snowflake.port),
        "MARKET_SPARK__DRIVER_MEMORY": "1g",
    }
    if s3.access_key_id is not None and s3.secret_access_key is not None:
        env["MARKET_S3__ACCESS_KEY_ID"] = s3.access_key_id.get_secret_value()
        env["MARKET_S3__SECRET_ACCESS_KEY"] = s3.secret_access_key.get_secret_value()
    return env


def _render(op: Any, dag: Any) -> tuple[list[str], list[str], dict[str, str]]:
    """entrypoint, command and environment of ``op`` for one run, as the worker renders them."""
    from airflow.sdk.definitions.param import process_params
    from airflow.sdk.execution_time import macros

    run_id = f"manual__{LOGICAL_DATE.isoformat()}"
    context = {
        "ds": LOGICAL_DATE.date().isoformat(),
        "ds_nodash": LOGICAL_DATE.strftime("%Y%m%d"),
        "logical_date": LOGICAL_DATE,
        "run_id": run_id,
        "macros": macros,
        "dag": dag,
        "task": op,
        # The DAG's and the task's params, merged and validated as the worker does (no conf).
        "params": process_params(dag, op, None, suppress_exception=False),
    }
    op.render_template_fields(context)
    op._pre_execute_hook({"task": op})
    env = {**op.environment, **op._private_environment}
    return list(op.entrypoint), [str(c) for c in op.command], env


def _dags(local_stack: Any, names: UniqueNames, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from market_dags.config import (
        BatchPipelineConfig,
        DbtConfig,
        DbtPipelineConfig,
        DeploymentSettings,
        RunnerConfig,
        RunnerKind,
        StreamingPipelineConfig,
        TaskDefaults,
        TopicsConfig,
    )
    from market_dags.factories import (
        build_batch_pipeline_dag,
        build_dbt_pipeline_dag,
        build_streaming_pipeline_dag,
    )

    for key, value in _stack_environment(local_stack).items():
        monkeypatch.setenv(key, value)
    prefix = names("img")
    deployment = DeploymentSettings(
        runner=RunnerConfig(
            kind=RunnerKind.DOCKER,
            pipeline_image=f"market/pipeline:{TAG}",
            spark_image=f"market/spark:{TAG}",
            network_mode="host",
        ),
        symbols=["AAPL", "MSFT"],
        topics=TopicsConfig(batch=names("batch"), realtime=names("realtime"), dlq=names("dlq")),
        task_defaults=TaskDefaults(retries=0),
        dbt=DbtConfig(render="commands", test_behavior="after_all"),
        step_env={
            **names.step_env(prefix),
        },
    )
    return [
        # 200 days, as the DAG runs test: the marts' tests need the 50-day SMA on most rows.
        build_batch_pipeline_dag(BatchPipelineConfig(deployment=deployment, lookback_days=200)),
        # 30 minutes from the open: the watermark (10 min) passes the end of the first
        # 15-minute window, so the stream writes windows and the dbt freshness check of the
        # stream source passes (a shorter session closes no window and loads no row).
        build_streaming_pipeline_dag(
            StreamingPipelineConfig(deployment=deployment, session_minutes=30)
        ),
        build_dbt_pipeline_dag(DbtPipelineConfig(deployment=deployment)),
    ]


# Steps not run: the docs export writes the site to a path of the worker's file system.
NOT_RUN = {"docs"}


def test_every_dag_step_runs_in_its_image(
    local_stack: Any, containers: WorkingContainers, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = UniqueNames("image-run")
    ran: list[str] = []
    for dag in _dags(local_stack, names, monkeypatch):
        for op in dag.topological_sort():
            if not hasattr(op, "entrypoint") or op.task_id in NOT_RUN:
                continue
            entrypoint, command, env = _render(op, dag)
            proc = containers.run(op.image, entrypoint, command, env)
            print(
                f"--- {dag.dag_id}.{op.task_id}: {op.image} {entrypoint} {command} → {proc.returncode}"
            )
            print(proc.stdout[-1500:])
            assert proc.returncode == 0, (
                f"{dag.dag_id}.{op.task_id} failed in {op.image} ({entrypoint + command}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
            ran.append(f"{dag.dag_id}.{op.task_id}")
    expected = {
        "stock_market_batch_pipeline.fetch_and_produce_historical",
        "stock_market_batch_pipeline.spark_batch",
        "stock_market_batch_pipeline.load_historical",
        "stock_streaming_pipeline.spark_streaming",
        "stock_streaming_pipeline.load_realtime",
        "dbt_transformation_pipeline.marts.marts_build",
    }
    assert expected <= set(ran), f"steps not run: {sorted(expected - set(ran))}"
