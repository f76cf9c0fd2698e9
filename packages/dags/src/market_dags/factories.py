"""DAG factories: one function per pipeline, each taking its pydantic config.

The factories only wire tasks; what each step runs lives in :mod:`market_dags.steps`, how
it runs in :mod:`market_dags.runners`, and retries/timeouts/callbacks in
:mod:`market_dags.defaults`. Nothing here touches the network or runs dbt, so DAG files
that call these parse in well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, BaseOperator, Param, chain, task

from market_common.logging import get_logger
from market_dags import steps
from market_dags.alerts import deadline_alert, failure_notifiers
from market_dags.config import (
    BatchPipelineConfig,
    DbtPipelineConfig,
    PipelineConfig,
    StreamingPipelineConfig,
)
from market_dags.dbt import build_dbt_layer
from market_dags.defaults import default_args, log_dag_failure
from market_dags.runners import build_step_operator

log = get_logger(__name__)


def _dag(config: PipelineConfig, doc_md: str, params: dict[str, Param] | None = None) -> DAG:
    d = config.deployment
    alert = deadline_alert(d.alerts)
    deadline: dict[str, Any] = {"deadline": alert} if alert is not None else {}
    runner_line = (
        f"\n\n**Runner:** `{d.runner.kind.value}` · **symbols:** {', '.join(d.symbols)} · "
        f"**source:** `{d.source}` · **retries:** {d.task_defaults.retries}"
    )
    return DAG(
        dag_id=config.dag_id,
        schedule=config.schedule,
        start_date=config.start_date,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=config.dagrun_timeout,
        default_args=default_args(d.task_defaults, d.alerts),
        tags=list(config.tags),
        doc_md=doc_md.strip() + runner_line,
        on_failure_callback=[log_dag_failure, *failure_notifiers(d.alerts)],
        params=params or {},
        **deadline,
    )


def _operators(config: PipelineConfig, step_list: Iterable[steps.Step]) -> dict[str, BaseOperator]:
    d = config.deployment
    env = d.step_environment()
    return {
        s.task_id: build_step_operator(s.with_timeout(d), runner=d.runner, env=env)
        for s in step_list
    }


BATCH_DOC = """
### Stock market batch pipeline

Daily bars for the configured symbols: fetch from the source → produce to the batch topic
→ archive to `raw/` → Spark batch to `processed/` → MERGE into Snowflake
(`DAILY_STOCK_METRICS`) → trigger **dbt_transformation_pipeline** and wait for it.
Each run covers the `lookback_days` days ending at its logical date; re-runs are idempotent
(loader MERGE on symbol + date).
"""


def build_batch_pipeline_dag(config: BatchPipelineConfig | None = None) -> DAG:
    """``stock_market_batch_pipeline``: daily ingest → Spark → Snowflake, then dbt."""
    config = config or BatchPipelineConfig()
    lookback = Param(
        config.lookback_days,
        type="integer",
        minimum=1,
        description="Days of bars fetched, ending at the logical date (widen to backfill).",
    )
    with _dag(config, BATCH_DOC, {steps.LOOKBACK_PARAM: lookback}) as dag:
        ops = _operators(config, steps.batch_steps(config))
        trigger = TriggerDagRunOperator(
            task_id=steps.TRIGGER_DBT,
            trigger_dag_id=config.dbt_dag_id,
            trigger_run_id="triggered__{{ run_id }}",
            conf={"triggered_by": config.dag_id, "batch_run_id": "{{ run_id }}"},
            # A retried trigger re-runs the dbt DAG instead of failing on the existing run.
            reset_dag_run=True,
            wait_for_completion=config.wait_for_dbt,
            poke_interval=config.trigger_poke_interval_s,
            allowed_states=["success"],
            failed_states=["failed"],
            deferrable=False,
            doc_md="Run the dbt models on the freshly loaded data and wait for the result.",
        )
        chain(*ops.values(), trigger)
    return dag


STREAMING_DOC = """
### Stock streaming pipeline

Every 30 minutes: collect the window's realtime ticks into the realtime topic → Spark
Structured Streaming with `trigger(availableNow)` (processes everything new, then stops;
the checkpoint makes it exactly-once across runs) → MERGE window aggregates into
`REALTIME_STOCK_ANALYTICS`. In parallel the ticks are archived to `raw/`. The summary task
logs and returns the counts each step reported.
"""


def build_streaming_pipeline_dag(config: StreamingPipelineConfig | None = None) -> DAG:
    """``stock_streaming_pipeline``: ticks → Kafka → Spark availableNow → Snowflake."""
    config = config or StreamingPipelineConfig()
    with _dag(config, STREAMING_DOC) as dag:
        ops = _operators(config, steps.streaming_steps(config))
        step_ids = list(ops)

        @task(task_id=steps.SUMMARIZE, doc_md="Log and return the counts the steps reported.")
        def summarize(**context: Any) -> dict[str, Any]:
            ti = context["ti"]
            reported = {tid: ti.xcom_pull(task_ids=tid) for tid in step_ids}
            return summarize_counts(reported, window_end=str(context.get("logical_date")))

        summary = summarize()
        collect = ops[steps.COLLECT_TICKS]
        chain(collect, ops[steps.SPARK_STREAM], ops[steps.LOAD_REALTIME], summary)
        chain(collect, ops[steps.ARCHIVE_TICKS], summary)
    return dag


def summarize_counts(reported: Mapping[str, Any], *, window_end: str) -> dict[str, Any]:
    """Numeric fields of each step's JSON summary, logged as one line and returned."""
    counts: dict[str, dict[str, int | float]] = {}
    for task_id, summary in reported.items():
        if isinstance(summary, Mapping):
            counts[task_id] = {
                k: v
                for k, v in summary.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
    result = {"window_end": window_end, "counts": counts}
    log.info("streaming window summary: %s", result, extra=result)
    return result


DBT_DOC = """
### dbt transformation pipeline

Daily at 06:00 UTC and whenever the batch pipeline triggers it: source freshness →
staging models (each followed by its tests) → intermediate + marts → source tests →
docs. Models and tests are rendered by astronomer-cosmos from the `manifest.json` that
`dbt parse` wrote at deploy time; without it each layer is one `dbt build` task.
"""


def build_dbt_pipeline_dag(config: DbtPipelineConfig | None = None) -> DAG:
    """``dbt_transformation_pipeline``: freshness → staging → marts → tests → docs."""
    config = config or DbtPipelineConfig()
    dbt = config.deployment.dbt
    with _dag(config, DBT_DOC) as dag:
        env = config.deployment.step_environment()
        commands = {
            tid: build_step_operator(
                s.with_timeout(config.deployment), runner=config.deployment.runner, env=env
            )
            for tid, s in steps.dbt_steps(config).items()
        }
        staging = build_dbt_layer(
            steps.STAGING, (*dbt.seeds_select, *dbt.staging_select), config, env=env
        )
        marts = build_dbt_layer(steps.MARTS, dbt.marts_select, config, env=env)
        chain(
            commands[steps.SOURCE_FRESHNESS],
            staging,
            marts,
            commands[steps.TESTS],
            commands[steps.DOCS],
        )
    return dag
