"""Turn a :class:`~market_dags.steps.Step` into an Airflow operator for the configured runner.

``in_process`` and ``subprocess`` use :class:`StepOperator` (this module); ``kubernetes`` and
``docker`` build the provider's operator, imported only when that runner is selected so a
worker without the provider can still parse every DAG that does not use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

# StepFailedError: the step's command exited non-zero; its output is in the task log above.
from market_common.runtime import StepFailedError
from market_dags.config import RunnerConfig, RunnerKind
from market_dags.entrypoints import last_json_object, run_entry_point, subprocess_argv
from market_dags.forwarding import container_environment, secret_values
from market_dags.stepenv import step_subprocess_env
from market_dags.steps import Step


class RunnerUnavailableError(RuntimeError):
    """The selected runner needs an Airflow provider that is not installed."""


class StepOperator(BaseOperator):
    """Run a console script in-process or as a subprocess; return its JSON summary (XCom).

    The summary is the last stdout line that parses as a JSON object (``None`` if there is
    none), so downstream tasks can report counts without knowing each CLI.
    """

    template_fields: Sequence[str] = ("arguments", "env")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        script: str,
        arguments: Sequence[str],
        env: Mapping[str, str] | None = None,
        in_process: bool = False,
        bin_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.arguments = list(arguments)
        self.env = dict(env or {})
        self.in_process = in_process
        self.bin_dir = bin_dir or str(Path(sys.executable).parent)
        self._proc: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> dict[str, Any] | None:
        args = [str(a) for a in self.arguments]
        self.log.info("running %s %s (%s)", self.script, " ".join(args),
                      "in-process" if self.in_process else "subprocess")  # fmt: skip
        if self.in_process:
            code, output = run_entry_point(self.script, args, env=self.env)
        else:
            code, output = self._run_subprocess(args)
        if code != 0:
            raise StepFailedError(
                f"{self.script} {' '.join(args)} exited with {code}: see the step output above"
            )
        return last_json_object(output)

    def _run_subprocess(self, args: list[str]) -> tuple[int, str]:
        argv = subprocess_argv(self.script, args, bin_dir=Path(self.bin_dir))
        lines: list[str] = []
        # Own session so on_kill can stop the step and every process it started (Spark's JVM).
        self._proc = subprocess.Popen(
            argv,
            env=step_subprocess_env(self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        try:
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                self.log.info("%s", line)
            return self._proc.wait(), "\n".join(lines)
        finally:
            if self._proc.poll() is None:
                self._terminate()

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def on_kill(self) -> None:
        self._terminate()


def build_step_operator(
    step: Step, *, runner: RunnerConfig, env: Mapping[str, str], **task_kwargs: Any
) -> BaseOperator:
    """The operator that runs ``step`` with ``runner``; ``task_kwargs`` go to the operator."""
    kwargs: dict[str, Any] = {
        "task_id": step.task_id,
        "execution_timeout": step.timeout,
        "doc_md": step.doc or None,
        **task_kwargs,
    }
    if runner.kind in (RunnerKind.IN_PROCESS, RunnerKind.SUBPROCESS):
        return StepOperator(
            script=step.script,
            arguments=step.args,
            env=env,
            in_process=runner.kind is RunnerKind.IN_PROCESS,
            bin_dir=str(runner.resolved_bin_dir()),
            **kwargs,
        )
    image = runner.spark_image if step.image == "spark" else runner.pipeline_image
    if runner.kind is RunnerKind.KUBERNETES:
        pod_operator = import_provider_operator(
            "airflow.providers.cncf.kubernetes.operators.pod",
            "KubernetesPodOperator",
            "apache-airflow-providers-cncf-kubernetes",
            runner.kind,
        )
        return pod_operator(
            name=step.task_id.replace("_", "-"),
            namespace=runner.namespace,
            image=image,
            image_pull_policy=runner.image_pull_policy,
            # `cmds` replaces the image's ENTRYPOINT, `arguments` its CMD.
            cmds=[step.script],
            arguments=list(step.args),
            env_vars=kubernetes_env_vars(env, secret_name=runner.secret_name),
            service_account_name=runner.service_account_name,
            in_cluster=runner.in_cluster,
            get_logs=True,
            on_finish_action="delete_succeeded_pod",
            **kwargs,
        )
    docker_operator = import_provider_operator(
        "airflow.providers.docker.operators.docker",
        "DockerOperator",
        "apache-airflow-providers-docker",
        runner.kind,
    )
    return docker_operator(
        image=image,
        **docker_invocation(step.script, step.args),
        **docker_environment(env, runner=runner),
        docker_url=runner.docker_url,
        network_mode=runner.network_mode,
        force_pull=runner.image_pull_policy == "Always",
        auto_remove="success",
        mount_tmp_dir=False,
        **kwargs,
    )


def docker_environment(env: Mapping[str, str], *, runner: RunnerConfig) -> dict[str, Any]:
    """DockerOperator arguments that hand a step its settings, secrets and key files.

    Secret values are looked up in the worker when the task starts (``pre_execute``), so
    they are never part of the DAG (templated, rendered or serialized fields); see
    :mod:`market_dags.forwarding`. Shared by the step runner and cosmos's dbt tasks.
    """
    forwarded = container_environment(env)
    secret_env = dict(env)

    def _resolve_secrets(context: Any) -> None:
        # The provider keeps private_environment in this attribute and merges it into the
        # container's environment when it creates the container.
        context["task"]._private_environment = secret_values(
            forwarded.secrets, source={**os.environ, **secret_env}
        )

    return {
        "environment": forwarded.plain,
        "private_environment": {},
        "pre_execute": _resolve_secrets,
        "mounts": docker_secret_mounts(runner.secret_files),
    }


def docker_invocation(script: str, args: Sequence[str]) -> dict[str, list[str]]:
    """``entrypoint``/``command`` of a Docker step: the script replaces the image's ENTRYPOINT.

    Each image's ENTRYPOINT is one CLI (``market-ingest``, ``market-spark``); passing the
    script as the first word of ``command`` would run ``market-ingest market-load ...``.
    """
    return {"entrypoint": [script], "command": [str(a) for a in args]}


def docker_secret_mounts(secret_files: Mapping[str, str]) -> list[Any]:
    """Read-only bind mounts of the key files (host path → path inside the container)."""
    from docker.types import Mount

    return [
        Mount(target=inside, source=host, type="bind", read_only=True)
        for inside, host in sorted(secret_files.items())
    ]


def kubernetes_env_vars(env: Mapping[str, str], *, secret_name: str) -> list[Any]:
    """Plain values, plus one optional ``secretKeyRef`` per secret (key = variable name)."""
    from kubernetes.client import models as k8s

    forwarded = container_environment(env)
    plain = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(forwarded.plain.items())]
    refs = [
        k8s.V1EnvVar(
            name=name,
            value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=secret_name, key=name, optional=True)
            ),
        )
        for name in forwarded.secrets
    ]
    return plain + refs


def import_provider_operator(module: str, name: str, dist: str, kind: RunnerKind) -> Any:
    try:
        mod = __import__(module, fromlist=[name])
    except ImportError as exc:
        raise RunnerUnavailableError(
            f"runner {kind.value!r} needs {dist}: install it into the Airflow image "
            f"(pip install {dist}) or set MARKET_DAGS__RUNNER__KIND=subprocess"
        ) from exc
    return getattr(mod, name)
