"""Render a dbt layer (staging, marts) as an Airflow task group.

Preferred: astronomer-cosmos ``DbtTaskGroup`` with ``LoadMode.DBT_MANIFEST`` — one task per
model (and its tests), read from the ``manifest.json`` that ``dbt parse`` wrote at deploy
time, so parsing the DAG file costs a JSON read instead of a dbt invocation. When the
manifest is missing (fresh checkout, no deploy step yet) or cosmos cannot be imported, the
layer degrades to one ``dbt build --select <layer>`` task inside a group of the same id, so
the DAG still parses and still runs the same models.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from airflow.sdk import TaskGroup

from market_common.logging import get_logger
from market_dags.config import DbtPipelineConfig, RunnerKind
from market_dags.entrypoints import subprocess_argv
from market_dags.runners import (
    build_step_operator,
    docker_environment,
    import_provider_operator,
    kubernetes_env_vars,
)
from market_dags.steps import Step

log = get_logger(__name__)


class DbtManifestError(RuntimeError):
    """``dbt parse`` failed, so no manifest could be produced for cosmos."""


def build_dbt_layer(step: Step, config: DbtPipelineConfig, *, env: Mapping[str, str]) -> TaskGroup:
    """Task group ``step.task_id`` running the layer's dbt nodes (``step.dbt_select``)."""
    layer, select = step.task_id, step.dbt_select
    dbt = config.deployment.dbt
    if dbt.render != "commands":
        manifest = dbt.resolved_manifest_path()
        if dbt.render == "dbt_ls" or manifest.is_file():
            try:
                return _cosmos_group(layer, select, config, env=env)
            except ImportError as exc:
                log.warning("cosmos unavailable (%s): rendering %s as one dbt build", exc, layer)
        else:
            log.warning(
                "dbt manifest %s not found: rendering %s as one dbt build task; run "
                "`python -m market_dags.manifest` at deploy time for per-model tasks",
                manifest, layer,
            )  # fmt: skip
    with TaskGroup(group_id=layer, tooltip=f"dbt build {' '.join(select)}") as group:
        build_step_operator(
            replace(step.with_timeout(config.deployment), task_id=f"{layer}_build"),
            runner=config.deployment.runner,
            env=env,
        )
    return group


def _cosmos_group(
    layer: str, select: tuple[str, ...], config: DbtPipelineConfig, *, env: Mapping[str, str]
) -> TaskGroup:
    from cosmos import (
        DbtTaskGroup,
        ExecutionConfig,
        ExecutionMode,
        InvocationMode,
        LoadMode,
        ProfileConfig,
        ProjectConfig,
        RenderConfig,
        TestBehavior,
        TestIndirectSelection,
    )

    deployment = config.deployment
    dbt = deployment.dbt
    runner = deployment.runner
    operator_args: dict[str, Any] = {"append_env": True}
    if runner.kind is RunnerKind.KUBERNETES:
        import_provider_operator(
            "airflow.providers.cncf.kubernetes.operators.pod",
            "KubernetesPodOperator",
            "apache-airflow-providers-cncf-kubernetes",
            runner.kind,
        )
        execution = ExecutionConfig(
            execution_mode=ExecutionMode.KUBERNETES, dbt_project_path=dbt.image_project_dir
        )
        operator_args = {
            "image": runner.pipeline_image,
            "namespace": runner.namespace,
            "env_vars": kubernetes_env_vars(env, secret_name=runner.secret_name),
            "get_logs": True,
        }
    elif runner.kind is RunnerKind.DOCKER:
        import_provider_operator(
            "airflow.providers.docker.operators.docker",
            "DockerOperator",
            "apache-airflow-providers-docker",
            runner.kind,
        )
        execution = ExecutionConfig(
            execution_mode=ExecutionMode.DOCKER, dbt_project_path=dbt.image_project_dir
        )
        operator_args = {
            "image": runner.pipeline_image,
            # cosmos's command starts with `dbt`: run it through env, not the image's
            # ENTRYPOINT (market-ingest), which would make it `market-ingest dbt ...`.
            "entrypoint": ["/usr/bin/env"],
            **docker_environment(env, runner=runner),
            "docker_url": runner.docker_url,
            "network_mode": runner.network_mode,
            "mount_tmp_dir": False,
        }
    else:
        execution = ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=(
                InvocationMode.DBT_RUNNER
                if runner.kind is RunnerKind.IN_PROCESS
                else InvocationMode.SUBPROCESS
            ),
            dbt_executable_path=str(dbt.resolved_executable(runner)),
        )
    # A test whose parents span layers (e.g. a mart's has_parent test on a staging model)
    # must run with the later layer: "buildable" selects a test only once every parent is
    # selected or upstream of the selection; dbt's default "eager" would run it with
    # staging, before the mart exists.
    execution.test_indirect_selection = TestIndirectSelection.BUILDABLE
    use_manifest = dbt.render == "manifest"
    # Containers run the project baked into the image (ExecutionConfig above); only the
    # local runners execute the checkout's project.
    project_dir = None if runner.kind.is_container else dbt.resolved_project_dir()
    manifest = dbt.resolved_manifest_path() if use_manifest else None
    project_config = ProjectConfig(
        dbt_project_path=project_dir,
        manifest_path=manifest,
        project_name=dbt.project_name,
        env_vars=dict(env),
        # No packages.yml; and `dbt deps` per task would hit the network from workers.
        install_dbt_deps=False,
    )
    if manifest is not None and "://" not in str(manifest):
        # Cosmos wraps every manifest path in ObjectStoragePath, whose first open loads all
        # Airflow plugins (cosmos's own imports FastAPI): >1 s per parse. A local file needs
        # none of that; cosmos's loader accepts a plain Path.
        project_config.manifest_path = manifest
    return DbtTaskGroup(
        group_id=layer,
        project_config=project_config,
        profile_config=ProfileConfig(
            profile_name=dbt.profile_name,
            target_name=dbt.target,
            profiles_yml_filepath=dbt.resolved_profiles_yml(),
        ),
        execution_config=execution,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST if use_manifest else LoadMode.DBT_LS,
            select=list(select),
            test_behavior={
                "after_each": TestBehavior.AFTER_EACH,
                "after_all": TestBehavior.AFTER_ALL,
                "none": TestBehavior.NONE,
            }[dbt.test_behavior],
            # Only used by LoadMode.DBT_LS (debugging): run that `dbt ls` as a subprocess.
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=str(dbt.resolved_executable(runner)),
        ),
        operator_args=operator_args,
    )


def write_manifest(config: DbtPipelineConfig, *, target_path: Path | None = None) -> Path:
    """Run ``dbt parse`` so cosmos can render from ``manifest.json``; returns its path.

    A deploy/CI step (``python -m market_dags.manifest``), never called while parsing DAGs.
    """
    dbt = config.deployment.dbt
    manifest = dbt.resolved_manifest_path()
    out_dir = target_path or manifest.parent
    project_dir = dbt.resolved_project_dir()
    args = [
        "parse",
        "--project-dir", str(project_dir),
        "--profiles-dir", str(dbt.resolved_profiles_yml().parent),
        "--target", dbt.target,
        "--target-path", str(out_dir),
        "--log-path", str(out_dir / "logs"),
        "--quiet",
    ]  # fmt: skip
    # The dbt wrapper script may be absent (e.g. a Pants test pex): fall back to the launcher.
    argv = (
        [str(dbt.executable), *args]
        if dbt.executable
        else subprocess_argv("dbt", args, bin_dir=config.deployment.runner.resolved_bin_dir())
    )
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=project_dir)
    if proc.returncode != 0:
        raise DbtManifestError(
            f"dbt parse failed ({proc.returncode}) for {project_dir}: fix the project, then "
            f"retry.\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return out_dir / "manifest.json"
