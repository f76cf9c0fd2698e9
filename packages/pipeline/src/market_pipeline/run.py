"""The end-to-end run: stack → produce → consume → Spark → load → dbt → report.

Every step is idempotent on its own (consumers overwrite offset-window objects, Spark
rewrites partitions / resumes from checkpoints, loaders MERGE new files, dbt rebuilds).
On top of that each expensive step records a fingerprint of its inputs in the run state
(:mod:`market_pipeline.state`) and is skipped when the fingerprint matches and its output
is still there, so a second run is fast. ``force=True`` ignores the recorded state.

Spark jobs run as child processes (``python -m market_spark``): each gets its own JVM, which
exits with it, and the pipeline's resolved settings travel as ``MARKET_*`` variables.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
from market_common.identifiers import qualified
from market_common.logging import get_logger
from market_common.runtime import StepFailedError, child_env
from market_common.settings import MarketSettings, load_settings
from market_pipeline.counts import LayerCounts, layer_counts, table_rows, topic_messages
from market_pipeline.marts import MART_NAMES, MartFrames, read_marts
from market_pipeline.replay import run_source
from market_pipeline.report import ReportPaths, build_report
from market_pipeline.state import RunState, fingerprint

log = get_logger(__name__)

SourceName = Literal["synthetic", "yfinance", "replay"]
StepStatus = Literal["ran", "skipped"]
TICK_INTERVAL_S = 1  # the synthetic/yfinance tick feeds emit one tick per symbol per second
FAILED_DBT = frozenset({"error", "fail", "runtime error"})


class PipelineError(RuntimeError):
    """Base class of the run's failures; messages say which step failed and where to look."""


class SparkJobFailedError(PipelineError):
    """A Spark child process exited non-zero (its log file is named in the message)."""


class DbtModelsFailedError(PipelineError):
    """dbt could not build one or more models, so the marts are incomplete."""


class IngestFailedError(PipelineError):
    """Records were not acknowledged by Kafka or could not be written to the raw zone."""


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
        """False when data-quality checks failed (the report is still written)."""
        return self.dbt is None or self.dbt.count("test", *FAILED_DBT) == 0


def component_errors() -> tuple[type[BaseException], ...]:
    """The documented failure classes of the packages the steps call."""
    from market_dbt.errors import DbtError
    from market_ingest.errors import IngestError
    from market_loaders.errors import LoaderError

    errors: tuple[type[BaseException], ...] = (
        DbtError,
        IngestError,
        LoaderError,
        SnowflakeAuthError,
        SnowflakeUnavailableError,
    )
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


class Pipeline:
    """One run; ``run()`` executes the steps in order and returns a :class:`RunResult`."""

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
        task = self.progress.add_task(label, total=None)
        if key is not None and not self.options.force:
            cached = self.state.get(name, key)
            if cached is not None and still_valid(cached):
                self.progress.update(
                    task, description=f"{label} [dim](up to date)", total=1, completed=1
                )
                self.result.steps.append(StepOutcome(name, "skipped", 0.0, cached))
                return cached
        started = time.monotonic()
        try:
            outcome = action(task)
        except component_errors() as exc:
            raise StepFailedError(f"step {name!r} failed: {exc}") from exc
        task_info = self.progress.tasks[task]
        self.progress.update(task, total=task_info.total or 1, completed=task_info.total or 1)
        if key is not None:
            self.state.put(name, key, outcome)
        self.result.steps.append(StepOutcome(name, "ran", time.monotonic() - started, outcome))
        return outcome

    def _spark(self, task: TaskID, command: str, *args: str) -> dict[str, Any]:
        """``python -m market_spark <command>`` with our settings; its summary JSON."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"spark-{command}.log"
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [self.python, "-m", "market_spark", command, *args],
                env=child_env(settings=self.settings),
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
            stdout, _ = process.communicate()
        if process.returncode != 0:
            tail = "\n".join(log_path.read_text().splitlines()[-15:])
            raise SparkJobFailedError(
                f"Spark {command} job exited with status {process.returncode}; full log: "
                f"{log_path}\n{tail}"
            )
        return parse_json_tail(stdout)

    # ------------------------------------------------------------------ steps

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

    def backfill_range(self) -> tuple[date, date]:
        from market_ingest.calendar import last_completed_session

        end = last_completed_session(self.now())
        return end - timedelta(days=round(365.25 * self.options.years)), end

    def _produce(self, task: TaskID, kind: Literal["backfill", "ticks"]) -> dict[str, Any]:
        from market_ingest import producer
        from market_ingest.rejections import check_not_all_rejected

        def advance(n: int) -> None:
            self.progress.advance(task, n)

        common: dict[str, Any] = {
            "symbols": self.settings.symbols,
            "source": run_source(self.options),
            "seed": self.options.seed,
            "progress": advance,
            "now": self.now,
        }
        if kind == "backfill":
            start, end = self.backfill_range()
            result = producer.backfill(
                self.settings,
                start=start,
                end=end,
                on_total=lambda total: self.progress.update(task, total=total),
                **common,
            )
        else:
            total = (
                self.options.session_minutes * 60 // TICK_INTERVAL_S * len(self.settings.symbols)
            )
            self.progress.update(task, total=total)
            result = producer.stream(
                self.settings,
                session_minutes=self.options.session_minutes,
                clock="simulated",
                **common,
            )
        check_not_all_rejected(
            kind, records=result.records, dead_lettered=result.dead_lettered, reasons=result.reasons
        )
        if not result.ok:
            raise IngestFailedError(
                f"{kind}: {result.failed} records not acknowledged by Kafka and "
                f"{result.dlq_failed} dead letters lost; check the broker "
                f"({self.settings.kafka.bootstrap_servers}) and re-run (the step is repeatable)"
            )
        return result.summary()

    def _consume(self, task: TaskID, kind: Literal["batch", "realtime"]) -> dict[str, Any]:
        from market_ingest.consumer import consume

        result = consume(self.settings, kind, until_caught_up=True)
        if not result.ok:
            raise IngestFailedError(
                f"consumer {kind}: {result.dlq_failed} dead letters were not acknowledged, "
                "offsets were not committed; re-run to retry"
            )
        return {
            "messages": result.messages,
            "rows_written": result.rows_written,
            "dead_lettered": result.dead_lettered,
            "objects_written": result.objects_written,
        }

    def _load(self, task: TaskID) -> dict[str, Any]:
        from market_loaders.loader import load_historical, load_realtime

        self.progress.update(task, total=2)
        out = {}
        for name, load in (("historical", load_historical), ("realtime", load_realtime)):
            result = load(self.settings)
            out[name] = {
                "files_loaded": result.files_loaded,
                "files_skipped": result.files_skipped,
                "files_rejected": len(result.files_rejected),
                "rows_merged": result.rows_merged,
                "rows_rejected": result.rows_rejected,
            }
            self.progress.advance(task)
        return out

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

    def _dbt_runner(self) -> Any:
        from market_dbt.runner import DbtProject, DbtRunner, snowflake_env

        project = DbtProject.from_settings(self.settings)
        python_path = child_env(settings=self.settings)["PYTHONPATH"]
        return DbtRunner(project, env={**snowflake_env(self.settings), "PYTHONPATH": python_path})

    def _dbt(self, task: TaskID) -> dict[str, Any]:
        from market_dbt.docs import model_docs

        runner = self._dbt_runner()
        built = runner.invoke("build", check=False)
        statuses: dict[str, dict[str, int]] = {}
        failures: list[str] = []
        for node in built.results:
            resource = node["unique_id"].split(".", 1)[0]
            by_status = statuses.setdefault(resource, {})
            by_status[node["status"]] = by_status.get(node["status"], 0) + 1
            if node["status"] in FAILED_DBT:
                failures.append(
                    f"{node['unique_id']} [{node['status']}]: {(node.get('message') or '').strip()[:300]}"
                )
        # A failing test skips every model downstream of it: those marts would be missing.
        unbuilt = [n["unique_id"] for n in built.results
                   if not n["unique_id"].startswith("test.") and n["status"] in (*FAILED_DBT, "skipped")]  # fmt: skip
        if not built.results or unbuilt:
            raise DbtModelsFailedError(
                f"dbt build did not build {', '.join(unbuilt) or 'anything'}; failures:\n  "
                + "\n  ".join(
                    failures or [f"none reported (see {runner.project.project_dir}/logs/dbt.log)"]
                )
            )
        manifest = json.loads((runner.project.target_dir / "manifest.json").read_text())
        return {"statuses": statuses, "failures": failures, "schema_context": model_docs(manifest)}

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
        self.result.report = build_report(frames, self.options.report_dir, schema_context=context)
        return {"report_dir": str(self.options.report_dir)}

    # ------------------------------------------------------------------ the run

    def run(self) -> RunResult:
        started = time.monotonic()
        s = self.settings
        with self.progress:
            self._step("stack", "Local stack (Kafka, MinIO, fakesnow)", self._stack)
            s = self.settings
            k, s3, sf = s.kafka, s.s3, s.snowflake
            start, end = self.backfill_range()
            common = {
                "source": self.options.source,
                "replay_paths": [str(p) for p in self.options.replay_paths],
                "seed": self.options.seed,
                "symbols": s.symbols,
            }
            if self.options.produce:
                self._step(
                    "backfill",
                    f"Backfill {start}..{end} → {k.batch_topic}",
                    lambda t: self._produce(t, "backfill"),
                    inputs={**common, "start": start, "end": end, "topic": k.batch_topic},
                    still_valid=lambda r: topic_messages(s, [k.batch_topic])[k.batch_topic]
                    >= r["sent"],
                )
                self._step(
                    "ticks",
                    f"Realtime session ({self.options.session_minutes} min) → {k.realtime_topic}",
                    lambda t: self._produce(t, "ticks"),
                    inputs={
                        **common,
                        "session": end,
                        "minutes": self.options.session_minutes,
                        "topic": k.realtime_topic,
                    },  # fmt: skip
                    still_valid=lambda r: topic_messages(s, [k.realtime_topic])[k.realtime_topic]
                    >= r["sent"],
                )
            self._step(
                "consume_batch",
                "Consume batch topic → raw/historical",
                lambda t: self._consume(t, "batch"),
            )
            self._step(
                "consume_realtime",
                "Consume realtime topic → raw/realtime",
                lambda t: self._consume(t, "realtime"),
            )
            self._step(
                "spark_batch",
                "Spark batch raw → processed/historical",
                lambda t: self._spark(t, "batch"),
                # Raw objects are a function of the topic's messages (the consumer rewrites
                # its open window with fresh ingested_at values, so ETags are no fingerprint).
                inputs={
                    "messages": topic_messages(s, [k.batch_topic]),
                    "raw": s3_keys(s, s3.raw_prefix, "historical"),
                    "out": s3.uri(s3.processed_prefix, "historical"),
                },  # fmt: skip
                still_valid=lambda r: bool(s3_keys(s, s3.processed_prefix, "historical")),
            )
            self._step(
                "spark_stream",
                "Spark streaming (availableNow) → processed/realtime",
                lambda t: self._spark(t, "stream", "--trigger", "availableNow"),
                inputs={
                    "messages": topic_messages(s, [k.realtime_topic]),
                    "out": s3.uri(s3.processed_prefix, "realtime"),
                    "checkpoint": s3.uri(s3.checkpoint_prefix, "realtime"),
                },  # fmt: skip
                still_valid=lambda r: bool(s3_keys(s, s3.processed_prefix, "realtime")),
            )
            self._step(
                "load", f"Load warehouse ({sf.batch_database}, {sf.stream_database})", self._load
            )
            dbt_project = self._dbt_runner().project
            dbt = self._step(
                "dbt",
                "dbt build (staging, marts, tests)",
                self._dbt,
                inputs={
                    "warehouse": self._warehouse_state(),
                    "project": dbt_project_hash(dbt_project.project_dir),
                    "database": sf.batch_database,
                    "target": dbt_project.target,
                },  # fmt: skip
                still_valid=lambda r: self._marts_exist(),
            )
            self.result.dbt = DbtOutcome(dbt["statuses"], dbt["failures"], dbt["schema_context"])
            self._step("report", f"Report → {self.options.report_dir}", self._report)
        self.result.seconds = time.monotonic() - started
        return self.result


def run_pipeline(options: RunOptions, **kwargs: Any) -> RunResult:
    """Convenience wrapper: ``Pipeline(options, **kwargs).run()``."""
    return Pipeline(options, **kwargs).run()
