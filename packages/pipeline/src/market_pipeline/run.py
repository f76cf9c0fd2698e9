"""The end-to-end run: stack → the platform's step graph → report.

The steps are the DAGs' own (:mod:`market_dags.steps`): the batch graph (fetch+produce →
consume → Spark batch → load), the streaming graph (ticks → archive ‖ Spark availableNow →
load) and the dbt graph (freshness → staging → marts → tests → docs), each step the same
console script with the same arguments, run as a child process the way the DAGs'
``subprocess`` runner runs it. Only the run's window, id and idempotency keys are concrete
values here (a :class:`~market_dags.steps.RunContext`) where Airflow renders templates.
So what ``market-pipeline run`` does locally is what a deployment's DAGs do.

What is local policy, not step definition: the order (the graph in topological order, one
step at a time: two cores), the progress display, per-step logs under
``<state_dir>/pipeline/logs/``, and skipping. Every step is idempotent on its own (consumers
overwrite offset-window objects, Spark rewrites partitions / resumes from checkpoints,
loaders MERGE new files, dbt rebuilds); on top of that each expensive step records a
fingerprint of its inputs in the run state (:mod:`market_pipeline.state`) and is skipped
when the fingerprint matches and its output is still there, so a second run is fast.
``force=True`` ignores the recorded state. dbt test (and source freshness) failures do not
stop the run: the report is still written and the run is not ``ok`` (exit code 6).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from market_common.clients import (
    SnowflakeAuthError,
    SnowflakeUnavailableError,
    s3_client,
    snowflake_connection,
)
from market_common.exitcodes import ExitCode
from market_common.identifiers import qualified
from market_common.logging import get_logger
from market_common.runtime import StepFailedError, child_env
from market_common.settings import MarketSettings, load_settings
from market_dags import steps
from market_dags.config import (
    BatchPipelineConfig,
    DbtConfig,
    DbtPipelineConfig,
    DeploymentSettings,
    RunnerConfig,
    RunnerKind,
    StreamingPipelineConfig,
    TopicsConfig,
)
from market_dags.entrypoints import last_json_object, subprocess_argv
from market_pipeline.counts import LayerCounts, layer_counts, table_rows, topic_messages
from market_pipeline.inspector import inspect_pipeline
from market_pipeline.marts import MART_NAMES, MartFrames, read_marts
from market_pipeline.report import ReportPaths, build_report
from market_pipeline.state import RunState, fingerprint

log = get_logger(__name__)

SourceName = Literal["synthetic", "yfinance", "replay"]
StepStatus = Literal["ran", "skipped"]
FAILED_DBT = frozenset({"error", "fail", "runtime error"})
# Resource types whose failures are data-quality findings, not missing outputs.
QUALITY_RESOURCES = ("test", "source")
LOCAL_DAG_ID = "market-pipeline"


class PipelineError(RuntimeError):
    """Base class of the run's failures; messages say which step failed and where to look."""


class StepExitError(PipelineError):
    """A step's command exited non-zero; its exit code and log file are in the message."""

    def __init__(self, message: str, *, task_id: str, exit_code: int) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.exit_code = exit_code

    @property
    def rejected(self) -> bool:
        """Every record of a produce step was dead-lettered (``ExitCode.REJECTED``)."""
        return self.exit_code == int(ExitCode.REJECTED)


class DbtModelsFailedError(PipelineError):
    """dbt could not build one or more models, so the marts are incomplete."""


@dataclass(frozen=True)
class RunOptions:
    """Everything ``market-pipeline run`` can be told (defaults = the documented defaults)."""

    years: float = 2.0
    symbols: tuple[str, ...] | None = None  # None: settings.symbols
    source: SourceName = "synthetic"
    session_minutes: int = 390
    report_dir: Path = Path("report")
    seed: int = 42
    skip_stack: bool = False
    force: bool = False
    # --source replay: the CSV/Parquet files or directories to replay (market_pipeline.replay).
    replay_paths: tuple[Path, ...] = ()
    # False: the topics are already filled (replayed or planted records); run from the
    # consumers on. Used by the bad-input matrix test, which writes raw bytes itself.
    produce: bool = True


@dataclass(frozen=True)
class StepOutcome:
    name: str
    status: StepStatus
    seconds: float
    result: dict[str, Any]


@dataclass(frozen=True)
class DbtOutcome:
    """dbt node statuses by resource type: ``{"model": {"success": 9}, "test": {...}}``."""

    statuses: dict[str, dict[str, int]]
    failures: list[str]
    schema_context: dict[str, Any]

    def count(self, resource: str, *statuses: str) -> int:
        by_status = self.statuses.get(resource, {})
        return sum(by_status.get(s, 0) for s in statuses)


@dataclass
class RunResult:
    settings: MarketSettings
    options: RunOptions
    steps: list[StepOutcome] = field(default_factory=list)
    counts: LayerCounts | None = None
    frames: MartFrames | None = None
    report: ReportPaths | None = None
    dbt: DbtOutcome | None = None
    seconds: float = 0.0

    def step(self, name: str) -> StepOutcome | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def ok(self) -> bool:
        """False when dbt tests or source freshness failed (the report is still written)."""
        return self.dbt is None or not any(
            self.dbt.count(resource, *FAILED_DBT) for resource in QUALITY_RESOURCES
        )


def component_errors() -> tuple[type[BaseException], ...]:
    """The documented failure classes of what the run calls in this process."""
    errors: tuple[type[BaseException], ...] = (SnowflakeAuthError, SnowflakeUnavailableError)
    try:  # the dev stack is the optional extra market-pipeline[local]
        from market_devstack.errors import DevStackError
    except ImportError:
        return errors
    return (*errors, DevStackError)


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def s3_keys(settings: MarketSettings, *parts: str, client: Any = None) -> list[str]:
    """Every object key under ``<parts>/``, sorted."""
    s3 = client or s3_client(settings)
    prefix = "/".join(p.strip("/") for p in parts) + "/"
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3.bucket, Prefix=prefix
    ):
        out += [obj["Key"] for obj in page.get("Contents", [])]
    return sorted(out)


DBT_INPUTS = ("dbt_project.yml", "profiles.yml", "packages.yml", "models", "macros", "seeds",
              "tests", "snapshots", "analyses")  # fmt: skip


def dbt_project_hash(project_dir: Path) -> str:
    """Hash of what dbt reads (not BUILD/README/target): a model change must rebuild the marts."""
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        rel = path.relative_to(project_dir)
        if path.is_file() and rel.parts[0] in DBT_INPUTS:
            digest.update(str(rel).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def parse_json_tail(stdout: str) -> dict[str, Any]:
    """The JSON object a CLI printed last on stdout (tools such as Ivy print before it)."""
    start = stdout.find("\n{") + 1 if not stdout.startswith("{") else 0
    data: dict[str, Any] = json.loads(stdout[start:])
    return data


def step_summary(stdout: str) -> dict[str, Any]:
    """A step's JSON summary: its last one-line JSON object, else a trailing (indented) one."""
    found = last_json_object(stdout)
    if found is not None:
        return found
    try:
        return parse_json_tail(stdout)
    except ValueError:
        return {}


def dbt_node_summary(artifact: Mapping[str, Any]) -> dict[str, Any]:
    """``{"statuses": {resource: {status: n}}, "failures": [...], "unbuilt": [...]}``.

    ``artifact`` is dbt's ``run_results.json`` or ``sources.json``; ``unbuilt`` lists the
    models/seeds/snapshots that errored or were skipped (their marts would be missing).
    """
    statuses: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    unbuilt: list[str] = []
    for node in artifact.get("results", []):
        unique_id, status = node["unique_id"], str(node["status"])
        resource = unique_id.split(".", 1)[0]
        by_status = statuses.setdefault(resource, {})
        by_status[status] = by_status.get(status, 0) + 1
        if status in FAILED_DBT:
            message = (node.get("message") or "").strip()[:300]
            failures.append(f"{unique_id} [{status}]: {message}")
        if resource not in QUALITY_RESOURCES and status in (*FAILED_DBT, "skipped"):
            unbuilt.append(unique_id)
    return {"statuses": statuses, "failures": failures, "unbuilt": unbuilt}


def merge_dbt(summaries: Sequence[Mapping[str, Any]], schema_context: dict[str, Any]) -> DbtOutcome:
    """One :class:`DbtOutcome` from the node summaries of the run's dbt steps."""
    statuses: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    for summary in summaries:
        for resource, by_status in summary.get("statuses", {}).items():
            merged = statuses.setdefault(resource, {})
            for status, n in by_status.items():
                merged[status] = merged.get(status, 0) + int(n)
        failures += summary.get("failures", [])
    return DbtOutcome(statuses, failures, schema_context)


DBT_SCRIPTS = frozenset({steps.DBT})


class Pipeline:
    """One run; ``run()`` executes the step graph in order and returns a :class:`RunResult`."""

    def __init__(
        self,
        options: RunOptions,
        *,
        settings: MarketSettings | None = None,
        console: Console | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        python: str = sys.executable,
    ) -> None:
        self.options = options
        self.settings = settings or load_settings()
        if options.symbols:
            self.settings = self.settings.model_copy(update={"symbols": list(options.symbols)})
        if self.settings.contracts.universe is None:
            # The run knows its universe: records of other symbols are unknown_symbol.
            contracts = self.settings.contracts.model_copy(
                update={"universe": list(self.settings.symbols)}
            )
            self.settings = self.settings.model_copy(update={"contracts": contracts})
        self.console = console or Console(stderr=True)
        self.now = now
        self.python = python
        self.state = RunState.in_dir(Path(self.settings.stack.state_dir))
        self.log_dir = Path(self.settings.stack.state_dir) / "pipeline" / "logs"
        self.result = RunResult(self.settings, options)
        self.progress = _progress(self.console)
        # Unique per invocation: a produce step of this run sends once (idempotency key),
        # a later run (or --force) sends again; skipping unchanged steps is the run state's job.
        self.run_id = f"local__{self.now():%Y%m%dT%H%M%S}"
        self._dbt_inputs: dict[str, Any] | None = None

    # ------------------------------------------------------------------ the step graph

    def backfill_range(self) -> tuple[date, date]:
        from market_ingest.calendar import last_completed_session

        end = last_completed_session(self.now())
        return end - timedelta(days=round(365.25 * self.options.years)), end

    def dbt_project(self) -> Any:
        from market_dbt.runner import DbtProject

        return DbtProject.from_settings(self.settings)

    def deployment(self) -> DeploymentSettings:
        """The DAGs' deployment settings for this run: same symbols, source, topics, dbt."""
        k, project = self.settings.kafka, self.dbt_project()
        return DeploymentSettings(
            runner=RunnerConfig(kind=RunnerKind.SUBPROCESS, bin_dir=Path(self.python).parent),
            symbols=list(self.settings.symbols),
            source=self.options.source,
            seed=self.options.seed,
            replay_paths=[str(p) for p in self.options.replay_paths],
            topics=TopicsConfig(batch=k.batch_topic, realtime=k.realtime_topic, dlq=k.dlq_topic),
            bucket=self.settings.s3.bucket,
            dbt=DbtConfig(
                project_dir=project.project_dir,
                profiles_yml=project.profiles_dir / "profiles.yml",
                target=project.target,
            ),
            step_env={
                # `market-dbt docs-export` finds the project through its own settings.
                "MARKET_DBT__PROJECT_DIR": str(project.project_dir),
                "MARKET_DBT__PROFILES_DIR": str(project.profiles_dir),
            },
        )

    def graph(self) -> list[steps.Step]:
        """batch → streaming → dbt (after both loads), as :mod:`market_dags.steps` defines them."""
        deployment = self.deployment()
        start, end = self.backfill_range()
        run = steps.RunContext(
            start=start.isoformat(), end=end.isoformat(), run_id=self.run_id, dag_id=LOCAL_DAG_ID
        )
        batch = steps.batch_steps(BatchPipelineConfig(deployment=deployment), run)
        streaming = steps.streaming_steps(
            StreamingPipelineConfig(
                deployment=deployment, session_minutes=self.options.session_minutes,
                clock="simulated",
            ),
            run,
        )  # fmt: skip
        dbt = steps.after(
            [*batch, *streaming], steps.dbt_steps(DbtPipelineConfig(deployment=deployment))
        )
        graph = [*batch, *streaming, *dbt]
        if not self.options.produce:
            graph = without(graph, {steps.FETCH_HISTORICAL, steps.COLLECT_TICKS})
        return steps.in_order(graph)

    # ------------------------------------------------------------------ skipping policy

    def _common_inputs(self) -> dict[str, Any]:
        return {
            "source": self.options.source,
            "replay_paths": [str(p) for p in self.options.replay_paths],
            "seed": self.options.seed,
            "symbols": self.settings.symbols,
        }

    def _skip_policy(
        self, task_id: str
    ) -> tuple[Mapping[str, Any] | None, Callable[[dict[str, Any]], bool]]:
        """``(inputs, still_valid)`` of a step: skipped when both say nothing changed.

        Steps without inputs (consumers, loaders) always run: they are cheap when there is
        nothing new, and only they notice new records.
        """
        s = self.settings
        k, s3 = s.kafka, s.s3
        start, end = self.backfill_range()

        def topic_holds(topic: str) -> Callable[[dict[str, Any]], bool]:
            return lambda r: topic_messages(s, [topic])[topic] >= int(r.get("sent", 0))

        if task_id == steps.FETCH_HISTORICAL:
            inputs = {**self._common_inputs(), "start": start, "end": end, "topic": k.batch_topic}
            return inputs, topic_holds(k.batch_topic)
        if task_id == steps.COLLECT_TICKS:
            inputs = {**self._common_inputs(), "session": end,
                      "minutes": self.options.session_minutes, "topic": k.realtime_topic}  # fmt: skip
            return inputs, topic_holds(k.realtime_topic)
        if task_id == steps.SPARK_BATCH:
            # Raw objects are a function of the topic's messages (the consumer rewrites its
            # open window with fresh ingested_at values, so ETags are no fingerprint).
            inputs = {
                "messages": topic_messages(s, [k.batch_topic]),
                "raw": s3_keys(s, s3.raw_prefix, "historical"),
                "out": s3.uri(s3.processed_prefix, "historical"),
            }
            return inputs, lambda _: bool(s3_keys(s, s3.processed_prefix, "historical"))
        if task_id == steps.SPARK_STREAM:
            inputs = {
                "messages": topic_messages(s, [k.realtime_topic]),
                "out": s3.uri(s3.processed_prefix, "realtime"),
                "checkpoint": s3.uri(s3.checkpoint_prefix, "realtime"),
            }
            return inputs, lambda _: bool(s3_keys(s, s3.processed_prefix, "realtime"))
        if task_id in DBT_TASKS:
            # dbt's inputs are the loaded tables and the project: unchanged → marts unchanged.
            if self._dbt_inputs is None:
                project = self.dbt_project()
                self._dbt_inputs = {
                    "warehouse": self._warehouse_state(),
                    "project": dbt_project_hash(project.project_dir),
                    "database": s.snowflake.batch_database,
                    "target": project.target,
                }
            return self._dbt_inputs, lambda _: self._marts_exist()
        return None, lambda _: True

    # ------------------------------------------------------------------ step machinery

    def _step(
        self,
        name: str,
        label: str,
        action: Callable[[TaskID], dict[str, Any]],
        *,
        inputs: Mapping[str, Any] | None = None,
        still_valid: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> dict[str, Any]:
        """Run ``action`` (or reuse the result recorded for the same ``inputs``)."""
        key = fingerprint(inputs) if inputs is not None else None
        task = self.progress.add_task(label, total=1)
        if key is not None and not self.options.force:
            cached = self.state.get(name, key)
            if cached is not None and still_valid(cached):
                self.progress.update(task, description=f"{label} [dim](up to date)", completed=1)
                self.result.steps.append(StepOutcome(name, "skipped", 0.0, cached))
                return cached
        started = time.monotonic()
        try:
            outcome = action(task)
        except component_errors() as exc:
            raise StepFailedError(f"step {name!r} failed: {exc}") from exc
        self.progress.update(task, completed=1)
        if key is not None:
            self.state.put(name, key, outcome)
        self.result.steps.append(StepOutcome(name, "ran", time.monotonic() - started, outcome))
        return outcome

    def _run_step(self, step: steps.Step, env: Mapping[str, str]) -> dict[str, Any]:
        """The step's command as a child process: its JSON summary, or its dbt node summary.

        stdout (where each CLI prints its summary) and stderr (logs) both end up in
        ``<state_dir>/pipeline/logs/<task_id>.log``; a non-zero exit names that file.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{step.task_id}.log"
        is_dbt = step.script in DBT_SCRIPTS
        target = self.dbt_project().target_dir
        if is_dbt:
            for name in DBT_ARTIFACTS:  # never report a previous invocation's results as ours
                (target / name).unlink(missing_ok=True)
        argv = subprocess_argv(step.script, step.args, bin_dir=Path(self.python).parent)
        with log_path.open("w") as log_file:
            log_file.write(f"$ {' '.join(argv)}\n")
            log_file.flush()
            proc = subprocess.run(
                argv, env=dict(env), stdout=subprocess.PIPE, stderr=log_file, text=True,
                check=False,
            )  # fmt: skip
            log_file.write(proc.stdout)
        if is_dbt:
            artifact: dict[str, Any] = next(
                (json.loads(p.read_text()) for n in DBT_ARTIFACTS if (p := target / n).is_file()),
                {},
            )
            summary = dbt_node_summary(artifact)
            if (proc.returncode != 0 and not summary["statuses"]) or summary["unbuilt"]:
                raise DbtModelsFailedError(
                    f"dbt step {step.task_id!r} did not build "
                    f"{', '.join(summary['unbuilt']) or 'anything'}; failures:\n  "
                    + "\n  ".join(summary["failures"] or [f"none reported (see {log_path})"])
                )
            return summary
        if proc.returncode != 0:
            tail = "\n".join(log_path.read_text().splitlines()[-15:])
            raise StepExitError(
                f"step {step.task_id!r} ({step.script} {' '.join(step.args[:2])}) exited with "
                f"{proc.returncode}; full log: {log_path}\n{tail}",
                task_id=step.task_id,
                exit_code=proc.returncode,
            )
        summary = step_summary(proc.stdout)
        if step.task_id == steps.DOCS:
            from market_dbt.docs import model_docs

            manifest = json.loads((target / "manifest.json").read_text())
            summary["schema_context"] = model_docs(manifest)
        return summary

    # ------------------------------------------------------------------ pipeline-only steps

    def _stack(self, task: TaskID) -> dict[str, Any]:
        if self.options.skip_stack:
            return {"skipped_by_option": True}
        try:
            from market_devstack.stack import ensure_up
        except ImportError as exc:
            raise PipelineError(
                "the embedded dev stack is not installed: install market-pipeline[local], or "
                "run with --skip-stack against your own services (MARKET_KAFKA__*, MARKET_S3__*, "
                "MARKET_SNOWFLAKE__*)"
            ) from exc
        info = ensure_up(self.settings)
        self.settings = self.result.settings = info.settings.model_copy(
            update={"symbols": self.settings.symbols, "contracts": self.settings.contracts}
        )
        return {"services": {n: s.healthy for n, s in info.services.items()}}

    def _warehouse_state(self) -> dict[str, Any]:
        """Row count and latest load time of both loader tables (dbt's inputs)."""
        from market_loaders.datasets import HISTORICAL, REALTIME

        sf = self.settings.snowflake
        out: dict[str, Any] = {}
        conn = snowflake_connection(self.settings)
        try:
            cursor = conn.cursor()
            for database, table, column in (
                (sf.batch_database, sf.batch_table, HISTORICAL.load_ts_column),
                (sf.stream_database, sf.stream_table, REALTIME.load_ts_column),
            ):
                relation = qualified(database, sf.schema_, table)
                sql = f"select count(*), max({column}) from {relation}"  # noqa: S608
                cursor.execute(sql)
                out[table] = [str(v) for v in cursor.fetchone() or ()]
        finally:
            conn.close()
        return out

    def _marts_exist(self) -> bool:
        conn = snowflake_connection(self.settings)
        try:
            db = self.settings.snowflake.batch_database
            return all(table_rows(conn, db, "ANALYTICS", m.upper()) is not None for m in MART_NAMES)
        finally:
            conn.close()

    def _report(self, task: TaskID) -> dict[str, Any]:
        conn = snowflake_connection(self.settings)
        try:
            frames = read_marts(conn, self.settings.snowflake.batch_database)
            self.result.counts = layer_counts(self.settings, connection=conn)
        finally:
            conn.close()
        self.result.frames = frames
        context = self.result.dbt.schema_context if self.result.dbt else None
        inspection = inspect_pipeline(self.settings)  # the report's quality/inspector sections
        self.result.report = build_report(
            frames, self.options.report_dir, schema_context=context, inspection=inspection
        )
        return {"report_dir": str(self.options.report_dir)}

    # ------------------------------------------------------------------ the run

    def run(self) -> RunResult:
        started = time.monotonic()
        with self.progress:
            self._step("stack", "Local stack (Kafka, MinIO, fakesnow)", self._stack)
            graph = self.graph()
            env = child_env(self.deployment().step_environment(), settings=self.settings)
            overall = self.progress.add_task("[bold]steps", total=len(graph))
            dbt_summaries: list[dict[str, Any]] = []
            schema_context: dict[str, Any] = {}
            for step in graph:
                inputs, still_valid = self._skip_policy(step.task_id)

                def action(_task: TaskID, step: steps.Step = step) -> dict[str, Any]:
                    return self._run_step(step, env)

                outcome = self._step(
                    step.task_id, step_label(step), action, inputs=inputs, still_valid=still_valid
                )
                if step.script in DBT_SCRIPTS:
                    dbt_summaries.append(outcome)
                schema_context = outcome.get("schema_context", schema_context)
                self.progress.advance(overall)
            self.result.dbt = merge_dbt(dbt_summaries, schema_context)
            self._step("report", f"Report → {self.options.report_dir}", self._report)
        self.result.seconds = time.monotonic() - started
        return self.result


DBT_TASKS = frozenset({steps.SOURCE_FRESHNESS, steps.STAGING, steps.MARTS, steps.TESTS, steps.DOCS})
DBT_ARTIFACTS = ("run_results.json", "sources.json")


def step_label(step: steps.Step) -> str:
    """``task_id: first sentence of the step's doc`` for the progress display."""
    first = step.doc.split(";")[0].split(": ")[0].split(" (")[0].rstrip(".")
    if len(first) > LABEL_CHARS:
        first = first[: LABEL_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return f"{step.task_id}: {first}" if first else step.task_id


LABEL_CHARS = 48


def without(graph: list[steps.Step], dropped: set[str]) -> list[steps.Step]:
    """``graph`` less the ``dropped`` steps (their dependants no longer wait for them)."""
    return [
        replace(s, upstream=tuple(u for u in s.upstream if u not in dropped))
        for s in graph
        if s.task_id not in dropped
    ]


def run_pipeline(options: RunOptions, **kwargs: Any) -> RunResult:
    """Convenience wrapper: ``Pipeline(options, **kwargs).run()``."""
    return Pipeline(options, **kwargs).run()
