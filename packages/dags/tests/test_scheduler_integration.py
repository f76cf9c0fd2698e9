"""The three DAGs under Airflow's scheduler, as `market-devstack up --with airflow` runs them.

A private PostgreSQL + Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor)
on free ports and a private state dir; the data stack (Kafka, MinIO, fakesnow) is the shared
one, reached by the steps through ``MARKET_STATE_DIR`` in their environment. Every DAG run is
triggered through the REST API with the generated admin credentials, every task runs in its
own process through the subprocess runner; the dbt DAG has one ``dbt build`` task per layer
(``render="commands"``), its docs task refreshes the docs cosmos's plugin serves. Asserted:
every task of the streaming, batch and (triggered) dbt runs succeeded; every mart has rows for
every symbol; clearing the batch run (which re-runs it, and through the trigger's
``reset_dag_run`` the dbt run, under the scheduler) leaves raw, processed, warehouse and marts
identical.

The browser test lives here too, so it reuses the deployment and the finished runs: headless
Chromium from the OS packages, driven by Selenium; screenshots go to
``$MARKET_TEST_ARTIFACTS_DIR/airflow-ui`` (default ``/tmp/market-test-artifacts``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_mart_covers_symbols, mart_relations, snapshot

from market_dags import steps
from market_dags.config import DeploymentSettings
from market_devstack.airflow import DBT_DOCS_SLUG
from market_testing.browser import artifacts_dir, chromium

# Runs by default (#15). On the shared 2-core machine (2026-12-02): 214 s under `./pants test` at
# load average 2-4, 7.4 min with plain pytest at load 4-11 (29 min at load 12-15 before the changes
# named here). Where the time goes, 7.4 min run [Pants run]: Airflow's start 70 s [25 s] (initdb;
# migrate beside `dbt parse`; the four processes spawned together; first parse); the streaming and
# batch runs side by side 2.5 min [67 s] (their Spark jobs, 1-2 min each, overlap; the dbt DAG is
# unpaused once streaming finished); the dbt run 50 s [30 s] (render="commands": five dbt
# processes instead of twelve cosmos tasks); clear + re-run of batch and dbt 2.3 min [72 s];
# browser 15 s. Every task still runs in its own process under the scheduler; CPU is the cost
# (each task is a fresh interpreter or JVM), the scheduler adds ~1 s between tasks.
pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT"]
BATCH = "stock_market_batch_pipeline"
STREAMING = "stock_streaming_pipeline"
DBT = "dbt_transformation_pipeline"
# The marts' tests want SMA 50 on at least half of the rows: >= 100 trading days per symbol
# (170 calendar days hold ~117; 120 held ~82 and failed not_null_proportion on sma_50d).
LOOKBACK_DAYS = 170
# Per run: a hung run fails with its task states well inside the Pants timeout (BUILD).
RUN_TIMEOUT_S = 900


def _all_succeeded(states: dict[str, str]) -> list[str]:
    return sorted(t for t, s in states.items() if s != "success")


def test_every_dag_succeeds_under_the_scheduler(scheduled_runs: dict[str, Any]) -> None:
    for dag_id, run_id in scheduled_runs["runs"].items():
        states = scheduled_runs["states"][dag_id]
        assert states, f"{dag_id} run {run_id} has task instances"
        assert not _all_succeeded(states), f"every task of {dag_id} succeeded: {states}"
    dbt_states = scheduled_runs["states"][DBT]
    assert steps.SOURCE_FRESHNESS in dbt_states, "dbt run includes source freshness"
    assert (
        f"{steps.STAGING}.{steps.STAGING}_build" in dbt_states
    ), "the staging layer's dbt build ran"
    assert steps.DOCS in dbt_states, "the docs task (which refreshes the UI's dbt docs) ran"


def test_every_mart_has_rows_for_every_symbol(
    scheduled_runs: dict[str, Any], airflow_deployment: dict[str, Any]
) -> None:
    from market_common.clients import snowflake_connection

    settings = airflow_deployment["settings"]
    marts = mart_relations(airflow_deployment["manifest"])
    assert marts, "the dbt project defines marts"
    database = settings.snowflake.batch_database
    conn = snowflake_connection(settings, database=database)
    try:
        for mart, schema in marts.items():
            assert_mart_covers_symbols(conn, f"{database}.{schema}.{mart}", SYMBOLS)
    finally:
        conn.close()


def test_clearing_the_batch_run_leaves_every_layer_identical(
    scheduled_runs: dict[str, Any], airflow_deployment: dict[str, Any]
) -> None:
    client = airflow_deployment["client"]
    deployment = airflow_deployment["deployment"]
    manifest = airflow_deployment["manifest"]
    once = snapshot(deployment, manifest)
    assert all(rows > 0 for rows, _ in once.values()), f"every layer has rows: {once}"

    run_id = scheduled_runs["runs"][BATCH]
    client.clear(BATCH, run_id)
    try:
        state = client.wait(BATCH, run_id, timeout_s=RUN_TIMEOUT_S)
    finally:
        save_task_timings(
            client,
            {BATCH: run_id, DBT: scheduled_runs["runs"][DBT]},
            artifacts_dir("airflow-ui") / "cleared-runs.json",
        )
    states = client.task_states(BATCH, run_id)
    assert state == "success", f"the cleared batch run succeeded again: {states}"
    tries = client.get(f"/dags/{BATCH}/dagRuns/{run_id}/taskInstances")["task_instances"]
    assert all(ti["try_number"] >= 2 for ti in tries), "every batch task ran a second time"
    dbt_run = scheduled_runs["runs"][DBT]
    assert client.wait(DBT, dbt_run, timeout_s=RUN_TIMEOUT_S) == "success", "dbt re-ran"

    twice = snapshot(deployment, manifest)
    changed = {k: (once.get(k), twice.get(k)) for k in once | twice if once.get(k) != twice.get(k)}
    assert not changed, f"layers that differ after clearing and re-running the run: {changed}"


def test_ui_in_a_real_browser_shows_dags_runs_and_dbt_docs(
    scheduled_runs: dict[str, Any], airflow_deployment: dict[str, Any]
) -> None:
    """Headless Chromium (OS package) via Selenium: log in, DAG list, a run's grid, dbt docs."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    client = airflow_deployment["client"]
    artifacts = artifacts_dir("airflow-ui")
    with chromium() as driver:
        wait = WebDriverWait(driver, 90)
        driver.get(f"{client.base_url}/")
        wait.until(ec.presence_of_element_located((By.NAME, "username")))
        driver.find_element(By.NAME, "username").send_keys(client.username)
        driver.find_element(By.NAME, "password").send_keys(client.password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        # The login page's script, once it has the token, navigates to its `next` page (/):
        # a page opened before that would be replaced by the home page. Wait for it to leave.
        wait.until(lambda d: "/auth/" not in d.current_url)

        driver.get(f"{client.base_url}/dags")
        try:
            for dag_id in (BATCH, STREAMING, DBT):
                named = f"//a[contains(., '{dag_id}')]"
                wait.until(ec.presence_of_element_located((By.XPATH, named)))
        finally:  # what the page showed, also when the wait timed out
            driver.save_screenshot(str(artifacts / "01-dags.png"))

        run_id = scheduled_runs["runs"][BATCH]
        # The run page's default tab lists its task instances (Airflow 3.3 routes
        # dags/:dagId/runs/:runId); each task id is a link, its state a badge beside it.
        driver.get(f"{client.base_url}/dags/{BATCH}/runs/{run_id}")
        try:
            for task_id in scheduled_runs["states"][BATCH]:
                named = f"//a[contains(normalize-space(.), '{task_id}')]"
                wait.until(ec.presence_of_element_located((By.XPATH, named)))
        finally:  # what the page showed, also when the wait timed out
            driver.save_screenshot(str(artifacts / "02-batch-run.png"))
        page = driver.find_element(By.TAG_NAME, "body").text.lower()
        assert "success" in page, "the finished run's task instances show their state"
        assert "failed" not in page, "no task of the run is shown as failed"
        driver.get(f"{client.base_url}/dags/{BATCH}?dag_run_id={run_id}")
        wait.until(ec.presence_of_element_located((By.XPATH, f"//*[contains(., '{BATCH}')]")))
        driver.save_screenshot(str(artifacts / "03-batch-grid.png"))

        driver.get(f"{client.base_url}/cosmos/{DBT_DOCS_SLUG}/dbt_docs_index.html")
        marts = mart_relations(airflow_deployment["manifest"])
        some_mart = sorted(marts)[0]
        # An element of the rendered docs site naming the mart (the page also inlines the
        # manifest as a script, which must not count).
        rendered = f"//*[not(self::script)][text()[contains(., '{some_mart}')]]"
        wait.until(ec.presence_of_element_located((By.XPATH, rendered)))
        driver.save_screenshot(str(artifacts / "04-dbt-docs.png"))


@pytest.fixture(scope="module")
def scheduled_runs(airflow_deployment: dict[str, Any]) -> dict[str, Any]:
    """Streaming and batch (which triggers dbt) at once through the REST API, waited for.

    The dbt run reads what both loaded, so the dbt DAG stays paused until the streaming run
    finished: the batch run's trigger queues the dbt run, the scheduler starts it only once
    the DAG is unpaused (queued runs of a paused DAG wait).
    """
    client = airflow_deployment["client"]
    client.wait_for_dags([BATCH, STREAMING, DBT])
    for dag_id in (BATCH, STREAMING):
        client.unpause(dag_id)
    now = datetime.now(UTC).replace(microsecond=0)
    runs = {STREAMING: "it_streaming", BATCH: "it_batch", DBT: "triggered__it_batch"}
    try:
        client.trigger(STREAMING, runs[STREAMING], logical_date=now)
        conf = {steps.LOOKBACK_PARAM: LOOKBACK_DAYS}
        client.trigger(BATCH, runs[BATCH], logical_date=now, conf=conf)
        assert client.wait(STREAMING, runs[STREAMING], timeout_s=RUN_TIMEOUT_S) in {
            "success",
            "failed",
        }
        client.unpause(DBT)
        client.wait(BATCH, runs[BATCH], timeout_s=RUN_TIMEOUT_S)
        client.wait(DBT, runs[DBT], timeout_s=RUN_TIMEOUT_S)
    finally:
        save_task_timings(client, runs, artifacts_dir("airflow-ui") / "first-runs.json")
    return {"runs": runs, "states": {d: client.task_states(d, r) for d, r in runs.items()}}


def save_task_timings(client: Any, runs: dict[str, str], path: Path) -> None:
    """Start, end, duration, try and state of every task instance: where the time went."""
    timings: dict[str, Any] = {}
    for dag_id, run_id in runs.items():
        with contextlib.suppress(Exception):  # a run that was never created has no tasks
            answer = client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
            timings[dag_id] = sorted(
                (
                    {
                        k: ti.get(k)
                        for k in (
                            "task_id",
                            "state",
                            "try_number",
                            "queued_when",
                            "start_date",
                            "end_date",
                            "duration",
                        )
                    }  # fmt: skip
                    for ti in answer["task_instances"]
                ),
                key=lambda ti: str(ti["start_date"]),
            )
    path.write_text(json.dumps(timings, indent=2, default=str) + "\n")


@pytest.fixture(scope="module")
def airflow_deployment(
    local_stack: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Private Airflow + PostgreSQL whose DAGs write to unique topics/prefixes/databases."""
    import tempfile

    from conftest import settings_of

    from market_dags.config import DbtConfig, TaskDefaults, TopicsConfig
    from market_devstack.airflow import AirflowClient, AirflowHome
    from market_testing.pytest_plugin import PrivateStack, UniqueNames

    names = UniqueNames("scheduler")
    prefix = names("sched")
    step_env = {
        # The data stack is the shared one; Airflow's own state is private.
        "MARKET_STATE_DIR": str(local_stack.state_dir),
        **names.step_env(prefix),
        "MARKET_SPARK__DRIVER_MEMORY": "1g",
    }
    topics = TopicsConfig(batch=names("batch"), realtime=names("realtime"), dlq=names("dlq"))
    deployment = DeploymentSettings(
        symbols=SYMBOLS,
        source="synthetic",
        topics=topics,
        task_defaults=TaskDefaults(retries=1, retry_delay="PT5S"),
        # One `dbt build` task per layer (as the image-run test deploys it) instead of one
        # cosmos task per model: five dbt processes per run instead of twelve. Cosmos's
        # per-model rendering is covered by test_dagbag/test_dag_runs_integration.
        dbt=DbtConfig(render="commands", test_behavior="after_all"),
        step_env=step_env,
    )
    env = {
        "MARKET_DAGS__SYMBOLS": ",".join(SYMBOLS),
        "MARKET_DAGS__SOURCE": "synthetic",
        "MARKET_DAGS__TOPICS__BATCH": topics.batch or "",
        "MARKET_DAGS__TOPICS__REALTIME": topics.realtime or "",
        "MARKET_DAGS__TOPICS__DLQ": topics.dlq or "",
        "MARKET_DAGS__TASK_DEFAULTS__RETRIES": "1",
        "MARKET_DAGS__TASK_DEFAULTS__RETRY_DELAY": "PT5S",
        "MARKET_DAGS__DBT__RENDER": "commands",
        "MARKET_DAGS__DBT__TEST_BEHAVIOR": "after_all",
        "MARKET_DAGS__STEP_ENV": json.dumps(step_env),
        # Runs come from the REST API only: unpausing must not add scheduled runs.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # The DAG files do not change during the test: parse them once, leave the CPU to tasks.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # PostgreSQL runs unprivileged: its state dir must be reachable by that account.
    state_dir = Path(tempfile.mkdtemp(prefix="market-airflow-it-", dir="/tmp"))
    state_dir.chmod(0o755)
    private = PrivateStack(state_dir)
    try:
        info = private.up("airflow")
        settings = settings_of(deployment)
        yield {
            "client": AirflowClient.for_stack(info.settings),
            "deployment": deployment,
            "settings": settings,
            "manifest": AirflowHome(info.settings).manifest_dir / "manifest.json",
            "stack": private,
            "info": info,
        }
    finally:
        private.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
