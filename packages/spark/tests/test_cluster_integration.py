"""The batch, streaming and recompute jobs on a Spark standalone cluster, with faults.

The cluster is private: master, two workers (1 core, 768m each) and the history server on
their own state dir and free loopback ports, the services ``market-devstack up
--spark-workers 2`` runs. Lake and Kafka are the shared stack's, under names unique to this
module. The jobs are the product's, unchanged: only settings differ
(:func:`market_devstack.spark_cluster.cluster_spark_settings`), and the stream's driver is
``market-spark stream`` started with nothing but ``MARKET_*`` variables.

The order is forced by the cluster's size and by pyspark (one SparkContext per process):

1. the stream's driver runs in a subprocess on the cluster and is SIGKILLed after its first
   committed batch; meanwhile this process computes the ``local[2]`` references (batch and
   recompute on the same inputs) and stops that session;
2. one cluster session in this process then runs the batch (worker 1 SIGKILLed mid-stage),
   the restarted stream and the recompute, and is checked in the history server.

Results are compared with the ``local[2]`` runs by rows and by a checksum of keys *and*
values (:func:`frame_digest`), and the stream with an independent pandas reference.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import plant_bad_bars
from pyspark.sql import SparkSession
from test_batch_integration import _descendants, put_raw_like_ingest
from test_stream_integration import _crash

from market_common.clients import ensure_topics, kafka_producer
from market_common.runtime import child_env
from market_common.settings import MarketSettings
from market_devstack.service import Service, start_all
from market_devstack.spark_cluster import (
    SparkHistoryService,
    SparkWorkerService,
    cluster_services,
    cluster_spark_settings,
    spark_env,
)
from market_spark import synthetic
from market_spark.batch import run_batch
from market_spark.recompute import run_recompute
from market_spark.session import build_session
from market_spark.stream import StreamPaths, run_stream
from market_spark.summary import BatchSummary
from market_testing.pytest_plugin import UniqueNames, free_port

# In the default run: 588 s under Pants on 2 cores at a load average of 10-17 (a CI run and
# two other jobs beside it); the fixtures (cluster start, the local references, the killed
# driver's first batch) are most of it. BUILD gives it a timeout of its own.
pytestmark = [pytest.mark.integration, pytest.mark.spark]
NOW = datetime(2024, 6, 3, 12, tzinfo=UTC)
WORKERS = 2
WORKER_MEMORY = "768m"
WAIT_S = 300.0  # bound on waits (never asserted as a speed)
# Stream input: ticks over two hours, a sentinel an hour later that closes their windows.
START = datetime(2024, 1, 2, 14, 0, tzinfo=UTC)
WATERMARK = timedelta(minutes=10)
PER_TRIGGER = 300
BAD_RECORD = b"{not json"


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up after {timeout_s:.0f}s waiting for {what}")


def frame_digest(frame: pd.DataFrame, keys: list[str], columns: list[str] | None = None) -> str:
    """sha256 over ``columns`` (default: all) of the rows sorted by ``keys``: keys and values."""
    ordered = frame.sort_values(keys).reset_index(drop=True)[columns or sorted(frame.columns)]
    hashed = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def tuned(settings: MarketSettings, **spark: Any) -> MarketSettings:
    """Small sessions for both sides: 1g driver, 2 shuffle partitions (as many as cores)."""
    update = {"driver_memory": "1g", "shuffle_partitions": 2, **spark}
    return settings.model_copy(update={"spark": settings.spark.model_copy(update=update)})


@dataclass(frozen=True)
class Inputs:
    """What this module planted: raw bars, raw ticks and the topic, and their references."""

    bucket: str
    root: str
    topic: str
    planted: dict[str, int]
    on_time: pd.DataFrame  # ticks as generated (the reference's input)
    sentinel: pd.DataFrame
    redeliveries: int

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3a://{self.bucket}/{self.root}", *parts])

    def batch_uris(self, name: str) -> dict[str, Any]:
        return {
            "input_uri": self.uri("raw", "historical"),
            "output_uri": self.uri(name, "processed", "historical"),
            "quarantine_uri": self.uri(name, "quarantine", "historical"),
        }

    @property
    def stream_paths(self) -> StreamPaths:
        return StreamPaths(
            output=self.uri("stream", "processed", "realtime"),
            quarantine=self.uri("stream", "quarantine", "realtime"),
            checkpoint=self.uri("stream", "checkpoints", "realtime"),
        )


@pytest.fixture(scope="module")
def cluster(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarketSettings]:
    """Settings of a running private cluster whose jobs and history server use the shared lake."""
    stack = local_stack.settings.stack.model_copy(
        update={
            "state_dir": Path(tmp_path_factory.mktemp("spark-cluster")),
            "spark_workers": WORKERS,
            "spark_worker_cores": 1,
            "spark_worker_memory": WORKER_MEMORY,
            "spark_master_port": free_port(),
            "spark_master_ui_port": free_port(),
            "spark_history_port": free_port(),
        }
    )
    settings = local_stack.settings.model_copy(update={"stack": stack})
    services: list[Service] = cluster_services(settings)
    try:
        start_all(services)
        yield tuned(cluster_spark_settings(settings))
    finally:
        for service in reversed(services):
            service.stop()


@pytest.fixture(scope="module")
def inputs(local_stack: Any, s3_client: Any) -> Inputs:
    """Raw bars (with planted bad ones) and raw ticks in the lake; the same ticks on a topic."""
    settings = local_stack.settings
    bucket = settings.s3.bucket
    topic = UniqueNames("cluster")("ticks")
    root = f"it/{topic}"
    days = synthetic.business_days(date(2023, 12, 1), 40)
    raw, planted = plant_bad_bars(synthetic.raw_historical(synthetic.symbols(60), days, seed=3))
    put_raw_like_ingest(s3_client, bucket, f"{root}/raw/historical", raw)

    on_time = synthetic.ticks(
        ["AAPL", "MSFT", "BRK.B"], start=START, count=900, span=timedelta(hours=2), topic=topic
    )
    sentinel = on_time.iloc[:1].copy()
    sentinel["ts"] = [START + timedelta(hours=3)]
    # Tick 145 of batch 0 (which the killed driver commits) comes again as the first record
    # of batch 1: the dedup state in the checkpoint must survive the driver's death.
    redelivered = on_time.iloc[[145]]
    sent = pd.concat(
        [on_time.iloc[:PER_TRIGGER], redelivered, on_time.iloc[PER_TRIGGER:], sentinel],
        ignore_index=True,
    )
    sent["kafka_offset"] = range(len(sent))  # as the broker assigns them (one partition)
    ensure_topics(settings, [topic], partitions=1)
    producer = kafka_producer(settings)
    for _, row in sent.iterrows():
        producer.send(topic, key=row["symbol"].encode(), value=synthetic.tick_json(row))
    producer.send(topic, value=BAD_RECORD)
    producer.flush()
    producer.close()
    # The recompute's input: the same ticks (redelivery included) as the raw zone holds them.
    for (day, hour), part in sent.groupby([sent["ts"].dt.date, sent["ts"].dt.hour]):
        s3_client.put_object(
            Bucket=bucket,
            Key=f"{root}/raw/realtime/date={day}/hour={hour:02d}/part-0.parquet",
            Body=synthetic.to_parquet_bytes(part, "realtime"),
        )
    return Inputs(bucket, root, topic, planted, on_time, sentinel, redeliveries=len(redelivered))


class StreamDriver:
    """``market-spark stream`` on the cluster in a subprocess, configured by environment only.

    A watcher thread SIGKILLs the driver (and its JVM) as soon as batch 0 of the windows query
    is committed, whatever this process does meanwhile: left running until the local
    references were done, the driver would commit every batch and the restart would have
    none left to resume.
    """

    def __init__(self, settings: MarketSettings, inputs: Inputs, log_path: Path, s3: Any) -> None:
        paths = inputs.stream_paths
        argv = [
            sys.executable, "-m", "market_spark.cli", "stream", "--topic", inputs.topic,
            "--max-offsets-per-trigger", str(PER_TRIGGER), "--output", paths.output,
            "--quarantine", paths.quarantine, "--checkpoint", paths.checkpoint,
        ]  # fmt: skip
        self.inputs = inputs
        self.log_path = log_path
        self.committed_batches = 0  # by the time it was killed
        self._failure: BaseException | None = None
        with open(log_path, "wb") as log:
            # Its own session: the process group is the driver and its JVM (see _crash).
            self.proc = subprocess.Popen(
                argv,
                env=child_env(spark_env(settings), settings=settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._watcher = threading.Thread(
            target=self._kill_after_first_commit, args=(s3,), name="kill-driver", daemon=True
        )
        self._watcher.start()

    def _kill_after_first_commit(self, s3: Any) -> None:
        commits = f"{self.inputs.root}/stream/checkpoints/realtime/windows/commits/"
        try:
            try:
                wait_until(lambda: self._commits(s3, commits) > 0, f"{commits}0 ({self.log_path})")
            finally:
                if self.proc.poll() is None:
                    _crash(self.proc)
            self.committed_batches = self._commits(s3, commits)
        except BaseException as exc:  # re-raised in the test thread by killed()
            self._failure = exc

    def killed(self) -> None:
        """Return once the driver was SIGKILLed after its first commit (or raise why not)."""
        self._watcher.join(timeout=WAIT_S + 180)
        if self._watcher.is_alive():
            raise AssertionError("the stream driver's watcher did not finish")
        if self._failure is not None:
            raise self._failure

    def _commits(self, s3: Any, prefix: str) -> int:
        if self.proc.returncode is None and self.proc.poll() is not None:
            raise AssertionError(
                f"the stream driver exited early with {self.proc.returncode}: "
                f"{self.log_path.read_text()[-3000:]}"
            )
        listed = s3.list_objects_v2(Bucket=self.inputs.bucket, Prefix=prefix)
        return sum(1 for o in listed.get("Contents", []) if o["Key"][len(prefix) :].isdigit())


@pytest.fixture(scope="module")
def stream_driver(
    cluster: MarketSettings,
    inputs: Inputs,
    s3_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StreamDriver]:
    log_path = tmp_path_factory.mktemp("stream") / "killed-run.log"
    driver = StreamDriver(cluster, inputs, log_path, s3_client)
    try:
        yield driver
    finally:
        if driver.proc.poll() is None:
            _crash(driver.proc)


@dataclass(frozen=True)
class LocalRuns:
    batch: BatchSummary
    processed: pd.DataFrame
    quarantine: pd.DataFrame
    recomputed: pd.DataFrame


def read_delta(spark: SparkSession, uri: str) -> pd.DataFrame:
    return spark.read.format("delta").load(uri).toPandas()


def read_parquet(spark: SparkSession, uri: str) -> pd.DataFrame:
    return spark.read.parquet(uri).toPandas()


@pytest.fixture(scope="module")
def local_runs(local_stack: Any, inputs: Inputs, stream_driver: StreamDriver) -> LocalRuns:
    """The batch and the recompute on ``local[2]`` (while the stream driver runs on the cluster)."""
    settings = tuned(local_stack.settings, master="local[2]")
    spark = build_session(settings, app_name="cluster-test-local", ui_enabled=False)
    try:
        uris = inputs.batch_uris("local")
        batch = run_batch(settings, spark=spark, now=NOW, run_id="local", **uris)
        output = inputs.uri("local", "processed", "realtime_recompute")
        run_recompute(
            settings, spark=spark, input_uri=inputs.uri("raw", "realtime"), output_uri=output
        )
        return LocalRuns(
            batch,
            read_delta(spark, uris["output_uri"]),
            read_parquet(spark, uris["quarantine_uri"]),
            read_parquet(spark, output),
        )
    finally:
        spark.stop()


@pytest.fixture(scope="module")
def cluster_spark(
    cluster: MarketSettings, local_runs: LocalRuns, stream_driver: StreamDriver
) -> Iterator[SparkSession]:
    """One session on the cluster, once the local session stopped and the driver was killed."""
    stream_driver.killed()
    spark = build_session(cluster, app_name="cluster-test", ui_enabled=True)
    try:
        yield spark
    finally:
        spark.stop()


def executors(spark: SparkSession) -> int:
    """Executors registered with this application (the driver's block manager excluded)."""
    return int(spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1  # type: ignore[union-attr]


def test_batch_on_two_workers_with_a_worker_sigkilled_equals_local(
    cluster: MarketSettings, cluster_spark: SparkSession, inputs: Inputs, local_runs: LocalRuns
) -> None:
    """The batch on the cluster, worker 1 SIGKILLed mid-stage, gives the local[2] result.

    The killed worker takes its executor (and any shuffle output on it) with it; the driver
    re-runs those tasks on the survivor. The same rows and the same checksum of keys and
    values prove executors read and wrote s3a with the shipped connector jars and
    credentials, and that the lost tasks were neither dropped nor written twice.
    """
    spark = cluster_spark
    wait_until(lambda: executors(spark) == WORKERS, f"an executor on each of the {WORKERS} workers")
    victim = SparkWorkerService(cluster, index=1)
    record = victim.running()
    assert record is not None
    killed_mid_stage = threading.Event()

    def kill_when_busy() -> None:
        tracker = spark.sparkContext.statusTracker()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if tracker.getActiveStageIds():
                os.killpg(record.pid, signal.SIGKILL)  # the worker and its executor
                killed_mid_stage.set()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_busy, name="kill-worker-1", daemon=True)
    killer.start()
    uris = inputs.batch_uris("cluster")
    clustered = run_batch(cluster, spark=spark, now=NOW, run_id="cluster", **uris)
    killer.join(timeout=5)
    assert killed_mid_stage.is_set(), "worker 1 was SIGKILLed while a stage ran"
    assert not record.is_alive()

    local = local_runs.batch
    assert (clustered.rows_in, clustered.rows_out) == (local.rows_in, local.rows_out)
    assert clustered.quarantined == local.quarantined == inputs.planted
    keys = ["trade_date", "symbol"]
    processed = read_delta(spark, uris["output_uri"])
    pd.testing.assert_frame_equal(
        processed.sort_values(keys).reset_index(drop=True),
        local_runs.processed.sort_values(keys).reset_index(drop=True),
    )
    assert frame_digest(processed, keys) == frame_digest(local_runs.processed, keys)
    quarantine = read_parquet(spark, uris["quarantine_uri"])
    every = sorted(quarantine.columns)
    assert len(quarantine) == sum(inputs.planted.values())
    assert frame_digest(quarantine, every) == frame_digest(local_runs.quarantine, every)

    # The killed worker restarts, registers again and gets an executor of this application.
    start_all([victim])
    wait_until(lambda: executors(spark) == WORKERS, "an executor on the restarted worker")


def test_stream_driver_killed_and_restarted_has_no_duplicate_or_missing_window(
    cluster: MarketSettings, cluster_spark: SparkSession, inputs: Inputs, stream_driver: StreamDriver,
    references: dict[str, Callable[..., Any]],
) -> None:  # fmt: skip
    """The driver SIGKILLed after its first commit; the restart resumes from the checkpoint.

    Every closed window appears exactly once with the values an independent pandas
    computation gives; the redelivery across the kill is dropped (the dedup state lives in
    the checkpoint in the lake, written by executors); the bad record is quarantined once.
    """
    assert stream_driver.proc.returncode == -signal.SIGKILL
    paths = inputs.stream_paths
    summary = run_stream(cluster, spark=cluster_spark, topic=inputs.topic, paths=paths)
    assert summary.batches >= 1, "the restart had batches left to run"
    if stream_driver.committed_batches == 1:
        # Batch 1 starts with the redelivery: the restart ran it, with batch 0's state.
        assert summary.duplicate_ticks_dropped == inputs.redeliveries

    out = read_parquet(cluster_spark, paths.output)  # through _spark_metadata
    for col in ("window_start", "window_end"):
        out[col] = pd.to_datetime(out[col]).dt.tz_localize("UTC")
    keys = ["symbol", "window_start"]
    assert not out.duplicated(keys).any(), "a window was written twice"
    final_watermark = pd.Timestamp(inputs.sentinel["ts"].iloc[0]) - WATERMARK
    expected = references["windows"](pd.concat([inputs.on_time, inputs.sentinel]))
    expected = expected[expected["window_end"] <= final_watermark]
    references["assert_close"](out.drop(columns="date"), expected, keys=keys)  # none missing

    quarantine = read_parquet(cluster_spark, paths.quarantine)
    assert quarantine["raw_value"].tolist() == [BAD_RECORD.decode()]


def test_recompute_on_the_cluster_equals_local_and_the_stream(
    cluster: MarketSettings, cluster_spark: SparkSession, inputs: Inputs, local_runs: LocalRuns,
    references: dict[str, Callable[..., Any]],
) -> None:  # fmt: skip
    """The recompute on the cluster = the local[2] recompute = the stream's closed windows.

    Keys, counts and volumes are compared by checksum; the means and deviations within
    1e-12 relative, because partial aggregates arrive from two executors in varying order.
    """
    output = inputs.uri("cluster", "processed", "realtime_recompute")
    summary = run_recompute(
        cluster, spark=cluster_spark, input_uri=inputs.uri("raw", "realtime"), output_uri=output
    )
    assert summary.duplicate_ticks_dropped == inputs.redeliveries
    recomputed = read_parquet(cluster_spark, output)
    local = local_runs.recomputed
    keys = ["symbol", "window_start"]
    assert len(recomputed) == len(local)
    exact = [c for c in sorted(local.columns) if not pd.api.types.is_float_dtype(local[c])]
    assert frame_digest(recomputed, keys, exact) == frame_digest(local, keys, exact)
    ordered = [f.sort_values(keys).reset_index(drop=True) for f in (recomputed, local)]
    for col in sorted(set(local.columns) - set(exact)):
        np.testing.assert_allclose(
            ordered[0][col], ordered[1][col], rtol=1e-12, equal_nan=True, err_msg=col
        )

    stream = read_parquet(cluster_spark, inputs.stream_paths.output)
    closed = recomputed.merge(stream[keys], on=keys, how="inner")
    assert len(closed) == len(stream)
    references["assert_close"](closed.drop(columns="date"), stream.drop(columns="date"), keys=keys)


def test_history_server_lists_the_application_and_no_secret_is_on_a_command_line(
    cluster: MarketSettings, cluster_spark: SparkSession, s3_client: Any
) -> None:
    """Finished, the application is in the history server (event log in the lake); no
    cluster daemon or executor carries the S3A credentials on its command line."""
    secrets = [
        s.get_secret_value()
        for s in (cluster.s3.access_key_id, cluster.s3.secret_access_key)
        if s is not None
    ]
    assert secrets, "the stack generates credentials"
    daemons = [service.running() for service in cluster_services(cluster)]
    pids = {r.pid for r in daemons if r is not None}
    assert len(pids) == WORKERS + 2, "master, workers and history server run"
    for pid in pids | {d for p in pids for d in _descendants(p)}:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        assert not any(s in cmdline for s in secrets), f"an S3A credential is in pid {pid}'s argv"

    app_id = cluster_spark.sparkContext.applicationId
    cluster_spark.stop()
    history = SparkHistoryService(cluster)
    wait_until(
        lambda: any(
            a["id"] == app_id and all(t.get("completed") for t in a.get("attempts", []))
            for a in history.applications()
        ),
        f"the history server to list {app_id} as completed",
    )
    # Spark 4 rolls event logs by default: eventlog_v2_<app>/events_<n>_<app>[.zstd].
    prefix = f"spark-events/eventlog_v2_{app_id}/events_"
    logs = s3_client.list_objects_v2(Bucket=cluster.s3.bucket, Prefix=prefix)
    assert any(o["Size"] > 0 for o in logs.get("Contents", [])), f"{prefix}* is in the lake"
