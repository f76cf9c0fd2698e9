"""Every pipeline step the DAGs run, in one place.

A :class:`Step` is a console script plus arguments (Jinja-templated by Airflow at run
time); the runner decides whether it runs in-process, as a subprocess or in a container.
When a CLI changes its options, this module is the only one to edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from market_dags.config import (
    BatchPipelineConfig,
    DbtPipelineConfig,
    DeploymentSettings,
    StreamingPipelineConfig,
)

INGEST = "market-ingest"
SPARK = "market-spark"
LOAD = "market-load"
DBT_RUNNER = "market-dbt"
DBT = "dbt"

# The batch DAG's param: trading days fetched per run (conf {"lookback_days": N} overrides).
LOOKBACK_PARAM = "lookback_days"

# Task ids shared by the factories, the summary task and the tests.
FETCH_HISTORICAL = "fetch_and_produce_historical"
CONSUME_BATCH = "consume_batch_to_raw"
SPARK_BATCH = "spark_batch"
LOAD_HISTORICAL = "load_historical"
TRIGGER_DBT = "trigger_dbt_transformation"

COLLECT_TICKS = "collect_realtime_ticks"
ARCHIVE_TICKS = "archive_raw_ticks"
SPARK_STREAM = "spark_streaming"
LOAD_REALTIME = "load_realtime"
SUMMARIZE = "summarize_window"

SOURCE_FRESHNESS = "source_freshness"
STAGING = "staging"
MARTS = "marts"
TESTS = "tests"
DOCS = "docs"


@dataclass(frozen=True)
class Step:
    """One command of a pipeline; ``image`` picks the container image for container runners."""

    task_id: str
    script: str
    args: tuple[str, ...]
    image: Literal["pipeline", "spark"] = "pipeline"
    timeout: timedelta = timedelta(minutes=30)
    doc: str = ""

    def with_timeout(self, deployment: DeploymentSettings) -> Step:
        timeout = deployment.step_timeouts.get(self.task_id)
        if timeout is None:
            return self
        return Step(self.task_id, self.script, self.args, self.image, timeout, self.doc)


# Rendered by Airflow per task instance: the same for every try of a task in one DAG run
# (retries and clears keep the run_id), different for another run or task. `dag`, `task`
# and `run_id` are in Airflow 3's context even for runs without a logical date.
RUN_IDEMPOTENCY_KEY = "{{ dag.dag_id }}/{{ run_id }}/{{ task.task_id }}"


def _symbols(deployment: DeploymentSettings) -> tuple[str, ...]:
    return ("--symbols", ",".join(deployment.symbols))


def _once_per_run() -> tuple[str, ...]:
    """A produce step re-run in the same DAG run sends nothing (``market_ingest.ledger``)."""
    return ("--idempotency-key", RUN_IDEMPOTENCY_KEY)


def batch_steps(config: BatchPipelineConfig) -> list[Step]:
    """fetch+produce → consume to raw → Spark batch → load (in this order).

    Fetching and producing are one command: bars stream from the source straight into the
    batch topic, so no worker-local staging file has to survive between two tasks (which
    would break on Kubernetes, where each task is its own pod).
    """
    d = config.deployment
    # The run covers `lookback_days` days ending at its logical date: a retry within the run
    # sends nothing again (idempotency key); a new run for the date re-fetches the same
    # window, and Spark's dedup and the loaders' MERGE keep the result the same. The DAG's
    # `lookback_days` param defaults to the config; a triggered run may widen it (backfill).
    start = f"{{{{ macros.ds_add(ds, -params.{LOOKBACK_PARAM}) }}}}"
    return [
        Step(
            FETCH_HISTORICAL,
            INGEST,
            (
                "backfill",
                "--start",
                start,
                "--end",
                "{{ ds }}",
                "--source",
                d.source,
                *_symbols(d),
                *_once_per_run(),
            ),
            timeout=timedelta(minutes=30),
            doc="Fetch the window's daily bars from the source and produce them to the batch "
            "topic (DLQ for invalid records); once per DAG run.",
        ),
        Step(
            CONSUME_BATCH,
            INGEST,
            ("consume", "batch", "--until-caught-up"),
            timeout=timedelta(minutes=20),
            doc="Archive the batch topic to raw/ until the consumer group has caught up.",
        ),
        Step(
            SPARK_BATCH,
            SPARK,
            # Incremental: only trade dates whose raw files changed since the last commit.
            ("batch", "--run-id", "{{ run_id }}"),
            image="spark",
            timeout=timedelta(minutes=45),
            doc="Spark batch: the trade dates whose raw/ input changed → validated, "
            "deduplicated processed/historical (Delta).",
        ),
        Step(
            LOAD_HISTORICAL,
            LOAD,
            ("historical", "--json"),
            timeout=timedelta(minutes=20),
            doc="MERGE processed daily metrics into the batch database.",
        ),
    ]


def streaming_steps(config: StreamingPipelineConfig) -> list[Step]:
    """collect ticks → (archive raw ‖ Spark availableNow → load)."""
    d = config.deployment
    return [
        Step(
            COLLECT_TICKS,
            INGEST,
            (
                "stream",
                "--session-minutes",
                str(config.session_minutes),
                "--clock",
                config.clock,
                "--source",
                d.source,
                *_symbols(d),
                *_once_per_run(),
            ),
            timeout=timedelta(minutes=20),
            doc="Produce the window's ticks to the realtime topic; once per DAG run.",
        ),
        Step(
            ARCHIVE_TICKS,
            INGEST,
            ("consume", "realtime", "--until-caught-up"),
            timeout=timedelta(minutes=15),
            doc="Archive the ticks to raw/ (replayable history).",
        ),
        Step(
            SPARK_STREAM,
            SPARK,
            ("stream", "--trigger", "availableNow", "--run-id", "{{ run_id }}"),
            image="spark",
            timeout=timedelta(minutes=20),
            doc="Structured Streaming over everything new on the topic, then stop.",
        ),
        Step(
            LOAD_REALTIME,
            LOAD,
            ("realtime", "--json"),
            timeout=timedelta(minutes=10),
            doc="MERGE the new window aggregates into the stream database.",
        ),
    ]


def dbt_common_args(config: DbtPipelineConfig) -> tuple[str, ...]:
    """Project, profiles and target of a dbt command; containers use the image's project."""
    dbt = config.deployment.dbt
    if config.deployment.runner.kind.is_container:
        project = profiles = dbt.image_project_dir
    else:
        project, profiles = dbt.resolved_project_dir(), dbt.resolved_profiles_yml().parent
    return (
        "--project-dir", str(project),
        "--profiles-dir", str(profiles),
        "--target", dbt.target,
    )  # fmt: skip


def dbt_steps(config: DbtPipelineConfig) -> dict[str, Step]:
    """The dbt commands that are not per-model tasks (those come from cosmos)."""
    common = dbt_common_args(config)
    test_select: tuple[str, ...] = (
        () if config.deployment.dbt.test_behavior == "none" else ("--select", "source:*")
    )
    return {
        SOURCE_FRESHNESS: Step(
            SOURCE_FRESHNESS,
            DBT,
            ("source", "freshness", *common),
            timeout=timedelta(minutes=10),
            doc="Fail early when the loaders have not delivered (sources.yml thresholds).",
        ),
        TESTS: Step(
            TESTS,
            DBT,
            ("test", *common, *test_select),
            timeout=timedelta(minutes=30),
            doc="Tests no model task ran: source tests (or the whole suite without per-model tests).",
        ),
        DOCS: Step(
            DOCS,
            DBT_RUNNER,
            (
                "--target",
                config.deployment.dbt.target,
                "docs-export",
                "--generate",
                "--out",
                str(config.deployment.dbt.resolved_docs_out()),
            ),
            timeout=timedelta(minutes=15),
            doc="Generate and publish the dbt docs site.",
        ),
    }


def dbt_layer_step(config: DbtPipelineConfig, layer: str, select: tuple[str, ...]) -> Step:
    """`dbt build` of one layer: the no-cosmos rendering of a task group."""
    return Step(
        f"{layer}_build",
        DBT,
        ("build", *dbt_common_args(config), "--select", *select),
        timeout=timedelta(minutes=45),
        doc=f"dbt build of the {layer} layer ({' '.join(select)}).",
    )
