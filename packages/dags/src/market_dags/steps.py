"""Every pipeline step, in one place: the step graph both orchestrations run.

A :class:`Step` is a console script plus arguments and the task ids it runs after; the
runner decides whether it runs in-process, as a subprocess or in a container. The DAG
factories turn the graph into Airflow tasks (arguments Jinja-templated by Airflow at run
time, :data:`AIRFLOW_RUN`); ``market-pipeline run`` executes the very same graph in one
process tree with a :class:`RunContext` of concrete values, so a local run and a deployed
run cannot drift apart. When a CLI changes its options, this module is the only one to edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
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
    """One command of a pipeline; ``image`` picks the container image for container runners.

    ``upstream`` names the steps (task ids of the same graph) that must have succeeded
    first; ``dbt_select`` marks a dbt layer, which the DAGs render as one task per model
    (cosmos) and a local run executes as the one ``dbt build`` in ``args``.
    """

    task_id: str
    script: str
    args: tuple[str, ...]
    image: Literal["pipeline", "spark"] = "pipeline"
    timeout: timedelta = timedelta(minutes=30)
    doc: str = ""
    upstream: tuple[str, ...] = ()
    dbt_select: tuple[str, ...] = ()

    def with_timeout(self, deployment: DeploymentSettings) -> Step:
        timeout = deployment.step_timeouts.get(self.task_id)
        return self if timeout is None else replace(self, timeout=timeout)


@dataclass(frozen=True)
class RunContext:
    """What step arguments say about their run: its window, its id, its idempotency keys.

    The DAGs pass :data:`AIRFLOW_RUN`, whose values are templates Airflow renders per task
    instance; a local run passes concrete values. Nothing else about a step differs.
    """

    start: str
    end: str
    run_id: str
    dag_id: str

    def idempotency_key(self, task_id: str) -> str:
        """The same for every try of a task in one run, different for another run or task."""
        return f"{self.dag_id}/{self.run_id}/{task_id}"


# Retries and clears keep the run_id, so the key survives them. `dag`, `run_id` and `ds`
# are in Airflow 3's context even for runs without a logical date. The run covers
# `lookback_days` days ending at its logical date (the DAG's param; conf may widen it).
AIRFLOW_RUN = RunContext(
    start=f"{{{{ macros.ds_add(ds, -params.{LOOKBACK_PARAM}) }}}}",
    end="{{ ds }}",
    run_id="{{ run_id }}",
    dag_id="{{ dag.dag_id }}",
)


def _symbols(deployment: DeploymentSettings) -> tuple[str, ...]:
    return ("--symbols", ",".join(deployment.symbols))


def _source(deployment: DeploymentSettings) -> tuple[str, ...]:
    """Source, its seed and (for ``replay``) the files it replays."""
    replay = tuple(arg for path in deployment.replay_paths for arg in ("--replay-path", path))
    return ("--source", deployment.source, "--seed", str(deployment.seed), *replay)


def _once_per_run(run: RunContext, task_id: str) -> tuple[str, ...]:
    """A produce step re-run in the same run sends nothing (``market_ingest.ledger``)."""
    return ("--idempotency-key", run.idempotency_key(task_id))


def after(upstream: Sequence[Step], graph: Iterable[Step]) -> list[Step]:
    """``graph`` with its root steps (no upstream) made to wait for ``upstream``'s leaves."""
    graph = list(graph)
    needed = {u for s in upstream for u in s.upstream}
    leaves = tuple(s.task_id for s in upstream if s.task_id not in needed)
    return [s if s.upstream else replace(s, upstream=leaves) for s in graph]


def in_order(graph: Sequence[Step]) -> list[Step]:
    """The graph as a list in which every step comes after its upstream steps.

    Stable: steps keep their given order wherever their upstream allows. Raises
    ``ValueError`` naming the step whose upstream is unknown or part of a cycle.
    """
    done: list[Step] = []
    seen: set[str] = set()
    pending = list(graph)
    known = {s.task_id for s in graph}
    while pending:
        ready = next((s for s in pending if set(s.upstream) <= seen), None)
        if ready is None:
            bad = pending[0]
            missing = sorted(set(bad.upstream) - known)
            raise ValueError(
                f"step {bad.task_id!r} waits for "
                + (f"unknown steps {missing}" if missing else "a cycle")
            )
        done.append(ready)
        seen.add(ready.task_id)
        pending.remove(ready)
    return done


def batch_steps(config: BatchPipelineConfig, run: RunContext = AIRFLOW_RUN) -> list[Step]:
    """fetch+produce → consume to raw → Spark batch → load (in this order).

    Fetching and producing are one command: bars stream from the source straight into the
    batch topic, so no worker-local staging file has to survive between two tasks (which
    would break on Kubernetes, where each task is its own pod).
    """
    d = config.deployment
    # A retry within the run sends nothing again (idempotency key); a new run for the date
    # re-fetches the same window, and Spark's dedup and the loaders' MERGE keep the result
    # the same.
    return [
        Step(
            FETCH_HISTORICAL,
            INGEST,
            (
                "backfill",
                "--start",
                run.start,
                "--end",
                run.end,
                *_source(d),
                *_symbols(d),
                *_once_per_run(run, FETCH_HISTORICAL),
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
            upstream=(FETCH_HISTORICAL,),
        ),
        Step(
            SPARK_BATCH,
            SPARK,
            # Incremental: only trade dates whose raw files changed since the last commit.
            ("batch", "--run-id", run.run_id),
            image="spark",
            timeout=timedelta(minutes=45),
            doc="Spark batch: the trade dates whose raw/ input changed → validated, "
            "deduplicated processed/historical (Delta).",
            upstream=(CONSUME_BATCH,),
        ),
        Step(
            LOAD_HISTORICAL,
            LOAD,
            ("historical", "--json"),
            timeout=timedelta(minutes=20),
            doc="MERGE processed daily metrics into the batch database.",
            upstream=(SPARK_BATCH,),
        ),
    ]


def streaming_steps(config: StreamingPipelineConfig, run: RunContext = AIRFLOW_RUN) -> list[Step]:
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
                *_source(d),
                *_symbols(d),
                *_once_per_run(run, COLLECT_TICKS),
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
            upstream=(COLLECT_TICKS,),
        ),
        Step(
            SPARK_STREAM,
            SPARK,
            ("stream", "--trigger", "availableNow", "--run-id", run.run_id),
            image="spark",
            timeout=timedelta(minutes=20),
            doc="Structured Streaming over everything new on the topic, then stop.",
            upstream=(COLLECT_TICKS,),
        ),
        Step(
            LOAD_REALTIME,
            LOAD,
            ("realtime", "--json"),
            timeout=timedelta(minutes=10),
            doc="MERGE the new window aggregates into the stream database.",
            upstream=(SPARK_STREAM,),
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


def dbt_steps(config: DbtPipelineConfig) -> list[Step]:
    """freshness → staging → marts → tests → docs.

    The two layers (``dbt_select`` set) are one task per model in the DAGs (cosmos, see
    :mod:`market_dags.dbt`) and one ``dbt build --select <layer>`` elsewhere.
    """
    dbt = config.deployment.dbt
    common = dbt_common_args(config)
    test_select: tuple[str, ...] = () if dbt.test_behavior == "none" else ("--select", "source:*")
    return [
        Step(
            SOURCE_FRESHNESS,
            DBT,
            ("source", "freshness", *common),
            timeout=timedelta(minutes=10),
            doc="Fail early when the loaders have not delivered (sources.yml thresholds).",
        ),
        dbt_layer(config, STAGING, (*dbt.seeds_select, *dbt.staging_select), (SOURCE_FRESHNESS,)),
        dbt_layer(config, MARTS, dbt.marts_select, (STAGING,)),
        Step(
            TESTS,
            DBT,
            ("test", *common, *test_select),
            timeout=timedelta(minutes=30),
            doc="Tests no model task ran: source tests (or the whole suite without per-model tests).",
            upstream=(MARTS,),
        ),
        Step(
            DOCS,
            DBT_RUNNER,
            (
                "--target",
                dbt.target,
                "docs-export",
                "--generate",
                "--out",
                str(dbt.resolved_docs_out()),
            ),
            timeout=timedelta(minutes=15),
            doc="Generate and publish the dbt docs site.",
            upstream=(TESTS,),
        ),
    ]


def dbt_layer(
    config: DbtPipelineConfig, layer: str, select: tuple[str, ...], upstream: tuple[str, ...]
) -> Step:
    """`dbt build` of one layer (its models, seeds and their tests).

    ``buildable``: a test whose parents span layers (a mart's has_parent test on a staging
    model) runs with the later layer, once every parent exists; dbt's default ``eager``
    would run it with staging, before the mart is built (as cosmos does, see dbt.py).
    """
    return Step(
        layer,
        DBT,
        (
            "build",
            *dbt_common_args(config),
            "--select",
            *select,
            "--indirect-selection",
            "buildable",
        ),  # fmt: skip
        timeout=timedelta(minutes=45),
        doc=f"dbt build of the {layer} layer ({' '.join(select)}).",
        upstream=upstream,
        dbt_select=select,
    )


def by_id(graph: Iterable[Step]) -> dict[str, Step]:
    return {s.task_id: s for s in graph}
