"""The bad-input matrix end to end: raw bytes on the topics → DLQ, quarantine and marts.

Every case of :mod:`market_testing.bad_inputs` is written straight to the batch and realtime
topics with kafka-python (no producer-side validation), interleaved with valid bars and ticks
and with duplicates. Then the real chain runs (``Pipeline`` with ``produce=False``):
consumers → raw zone (bad → DLQ), Spark batch → processed/quarantine, Spark streaming
(availableNow, reading the realtime topic itself) → processed/quarantine, loaders → the
Snowflake emulator, dbt build → marts. Every name is unique to this test.

Expected: each bad record is in the DLQ (consumer) with its planted code, each bad tick also in
the stream's quarantine with the same code; duplicates are collapsed (batch: latest delivery
wins; stream: dropped and counted); every valid record reaches the marts; no step failed.
"""

# Interpolated SQL names are test-generated identifiers.
# ruff: noqa: S608
from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from isolation import isolated_run_env

from market_common.clients import ensure_topics, kafka_consumer, kafka_producer, s3_client
from market_common.settings import MarketSettings, load_settings
from market_dags import steps
from market_ingest.calendar import last_completed_session
from market_ingest.records import validate_frame
from market_ingest.sources.synthetic import SyntheticSource
from market_pipeline.run import Pipeline, RunOptions, RunResult
from market_testing.bad_inputs import BadInput, bar_matrix, tick_matrix, tick_record
from market_testing.pytest_plugin import UniqueNames

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT", "NVDA")
# ~113 trading days: dbt tests want SMA 50 on at least half of the rows.
HISTORY_DAYS = 165
TICK_START = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)
TICK_EVERY = timedelta(seconds=10)
TICKS_PER_SYMBOL = 360  # one hour: windows 14:30, 14:45, 15:00 close, 15:15 stays open
WATERMARK = timedelta(minutes=10)  # the stream's default (market_spark.steps.tick_dedup)
BAR_CORRECTIONS = 5  # later deliveries of existing bars with another close
TICK_DUPLICATES = 10  # redeliveries of existing ticks


@dataclass(frozen=True)
class Planted:
    """What was written: Kafka offsets of bad values with codes, and the valid records."""

    bad: dict[tuple[str, int], str]  # (topic, offset) → reason
    bars: pd.DataFrame  # expected processed bars (after the corrections)
    ticks: pd.DataFrame  # distinct valid ticks


@dataclass(frozen=True)
class MatrixRun:
    settings: MarketSettings
    planted: Planted
    result: RunResult


def _bars(now: datetime) -> pd.DataFrame:
    end = last_completed_session(now)
    frame = SyntheticSource(seed=11).daily_frame(
        list(SYMBOLS), end - timedelta(days=HISTORY_DAYS), end
    )
    return frame.assign(schema_version=1)


def _ticks() -> pd.DataFrame:
    rows = []
    for k in range(TICKS_PER_SYMBOL):
        for j, symbol in enumerate(SYMBOLS):
            price = round(100 * (j + 1) + 3 * math.sin(k / 9 + j) + k / 100, 4)
            rows.append(
                tick_record(
                    symbol, TICK_START + k * TICK_EVERY, price=price, volume=100 + (k * 7 + j) % 50
                )
            )
    return pd.DataFrame(rows)


def _interleave(valid: list[bytes], bad: list[BadInput]) -> list[tuple[bytes, str | None]]:
    """Valid values with one bad value after every few of them."""
    step = max(1, len(valid) // (len(bad) + 1))
    out: list[tuple[bytes, str | None]] = []
    queue = list(bad)
    for i, value in enumerate(valid):
        out.append((value, None))
        if queue and i % step == step - 1:
            case = queue.pop(0)
            out.append((case.payload, case.reason))
    out += [(case.payload, case.reason) for case in queue]
    return out


def _send(
    settings: MarketSettings, topic: str, values: list[tuple[bytes, str | None]]
) -> dict[tuple[str, int], str]:
    producer = kafka_producer(settings)
    try:
        futures = [(producer.send(topic, value=value), reason) for value, reason in values]
        producer.flush()
        return {
            (topic, f.get(timeout=30).offset): reason for f, reason in futures if reason is not None
        }
    finally:
        producer.close()


def _plant(settings: MarketSettings, now: datetime) -> Planted:
    k = settings.kafka
    ensure_topics(settings, [k.batch_topic, k.realtime_topic, k.dlq_topic], partitions=1)
    bars = _bars(now)
    checked = validate_frame("daily_bar", bars, now=now, universe=SYMBOLS)
    assert not checked.rejects, "the valid bars are valid"
    corrected = bars.iloc[40 : 40 + BAR_CORRECTIONS].assign(close=lambda f: f["high"])
    fixes = validate_frame("daily_bar", corrected, now=now, universe=SYMBOLS).payloads
    bad_bars = bar_matrix(SYMBOLS[0], bars["trade_date"].iloc[0].date(), now=now,
                          max_bytes=settings.contracts.max_message_bytes)  # fmt: skip
    bad = _send(
        settings,
        k.batch_topic,
        _interleave(checked.payloads, bad_bars) + [(p, None) for p in fixes],
    )

    ticks = _ticks()
    tick_values = [json.dumps(r, separators=(",", ":")).encode() for r in ticks.to_dict("records")]
    bad_ticks = tick_matrix(SYMBOLS[1], TICK_START + timedelta(minutes=20), now=now,
                            max_bytes=settings.contracts.max_message_bytes)  # fmt: skip
    # Redeliveries right behind their originals: duplicates, not late ticks, for the stream.
    with_copies = [
        copy
        for i, v in enumerate(tick_values)
        for copy in ([v, v] if 100 <= i < 100 + TICK_DUPLICATES else [v])
    ]
    bad |= _send(settings, k.realtime_topic, _interleave(with_copies, bad_ticks))
    expected_bars = bars.set_index(["symbol", "trade_date"])
    expected_bars.update(corrected.set_index(["symbol", "trade_date"]))
    return Planted(bad, expected_bars.reset_index(), ticks)


@pytest.fixture(scope="module")
def matrix_run(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixRun]:
    names = UniqueNames("bad-input-matrix")
    prefix = names("bim")
    work = tmp_path_factory.mktemp("matrix")
    overrides = {
        **isolated_run_env(prefix, work),
        "MARKET_SPARK__MASTER": "local[2]",
        "MARKET_SPARK__SHUFFLE_PARTITIONS": "2",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in overrides.items():
            patch.setenv(key, value)
        settings = load_settings().model_copy(update={"symbols": list(SYMBOLS)})
        planted = _plant(settings, datetime.now(UTC))
        options = RunOptions(
            symbols=SYMBOLS, report_dir=work / "report", produce=False, skip_stack=True
        )
        # Any exception (a failed step, a Spark child's non-zero exit) fails the test here.
        result = Pipeline(options, settings=settings).run()
        yield MatrixRun(result.settings, planted, result)


def _query(settings: MarketSettings, sql: str) -> pd.DataFrame:
    from market_common.clients import snowflake_connection

    with snowflake_connection(settings) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return pd.DataFrame(cursor.fetchall(), columns=[c[0].lower() for c in cursor.description])


def _dead_letters(settings: MarketSettings) -> list[dict[str, Any]]:
    consumer = kafka_consumer(
        settings, settings.kafka.dlq_topic, group_id=None, auto_offset_reset="earliest"
    )
    try:
        letters: list[dict[str, Any]] = []
        while batch := consumer.poll(timeout_ms=5000):
            letters += [json.loads(r.value) for records in batch.values() for r in records]
        return letters
    finally:
        consumer.close()


def _parquet(settings: MarketSettings, *parts: str, columns: list[str]) -> pd.DataFrame:
    s3 = s3_client(settings)
    prefix = "/".join(parts) + "/"
    frames = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3.bucket, Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet") and "_spark_metadata" not in obj["Key"]:
                body = s3.get_object(Bucket=settings.s3.bucket, Key=obj["Key"])["Body"].read()
                frames.append(pq.read_table(io.BytesIO(body), columns=columns).to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _expected_windows(ticks: pd.DataFrame) -> pd.DataFrame:
    """Windows the stream closes: end at or before the watermark (max event time - delay)."""
    t = ticks.assign(ts=pd.to_datetime(ticks["ts"], utc=True).dt.tz_localize(None))
    t["window_start"] = t["ts"].dt.floor("15min")
    watermark = t["ts"].max() - WATERMARK
    closed = t[t["window_start"] + pd.Timedelta(minutes=15) <= watermark]
    return (
        closed.sort_values("ts")
        .groupby(["symbol", "window_start"], as_index=False)
        .agg(tick_count=("price", "size"), window_high=("price", "max"), window_low=("price", "min"),
             window_close=("price", "last"))  # fmt: skip
    )


def test_every_step_ran_and_dbt_tests_passed(matrix_run: MatrixRun) -> None:
    ran = {s.name: s.status for s in matrix_run.result.steps}
    for step in (
        steps.CONSUME_BATCH, steps.ARCHIVE_TICKS, steps.SPARK_BATCH, steps.SPARK_STREAM,
        steps.LOAD_HISTORICAL, steps.LOAD_REALTIME, steps.STAGING, steps.MARTS, steps.TESTS,
    ):  # fmt: skip
        assert ran.get(step) == "ran", f"step {step} ran (status {ran.get(step)})"
    assert (
        matrix_run.result.ok
    ), f"dbt tests failed: {matrix_run.result.dbt and matrix_run.result.dbt.failures}"


def test_every_bad_record_is_dead_lettered_with_its_code(matrix_run: MatrixRun) -> None:
    settings, planted = matrix_run.settings, matrix_run.planted
    letters = _dead_letters(settings)
    got = {(d["topic"], d["offset"]): d["reason"] for d in letters}
    assert len(got) == len(letters), "each bad record is dead-lettered once"
    assert {d["stage"] for d in letters} == {"consumer"}
    assert got == planted.bad, "DLQ holds exactly the planted records, each with its code"
    for topic in (settings.kafka.batch_topic, settings.kafka.realtime_topic):
        counts = Counter(reason for (t, _), reason in got.items() if t == topic)
        assert counts == Counter(r for (t, _), r in planted.bad.items() if t == topic), topic
    consumed = {s.name: s.result for s in matrix_run.result.steps}
    assert consumed[steps.CONSUME_BATCH]["dead_lettered"] + consumed[steps.ARCHIVE_TICKS][
        "dead_lettered"
    ] == len(planted.bad)


def test_bad_ticks_are_quarantined_by_the_stream_with_the_same_codes(matrix_run: MatrixRun) -> None:
    settings, planted = matrix_run.settings, matrix_run.planted
    rt = settings.kafka.realtime_topic
    expected = {offset: reason for (topic, offset), reason in planted.bad.items() if topic == rt}
    quarantine = _parquet(
        settings,
        settings.s3.quarantine_prefix,
        "realtime",
        columns=["kafka_offset", "reason", "raw_value"],
    )
    assert quarantine["raw_value"].str.len().max() > 0, "raw values are kept (and readable)"
    assert dict(zip(quarantine["kafka_offset"], quarantine["reason"], strict=True)) == expected
    assert len(quarantine) == len(expected), "each bad tick quarantined once"
    stream = next(s.result for s in matrix_run.result.steps if s.name == steps.SPARK_STREAM)
    assert stream["quarantined"] == dict(sorted(Counter(expected.values()).items()))
    assert stream["duplicate_ticks_dropped"] == TICK_DUPLICATES
    assert stream["late_rows_dropped"] == 0


def test_batch_path_resolves_duplicates_and_quarantines_nothing_left(matrix_run: MatrixRun) -> None:
    batch = next(s.result for s in matrix_run.result.steps if s.name == steps.SPARK_BATCH)
    assert batch["quarantined"] == {}, "the consumer already dead-lettered every bad bar"
    assert batch["duplicates_removed"] == BAR_CORRECTIONS
    assert batch["rows_out"] == len(matrix_run.planted.bars)


def test_every_valid_bar_reaches_the_marts(matrix_run: MatrixRun) -> None:
    settings, bars = matrix_run.settings, matrix_run.planted.bars
    analytics = f"{settings.snowflake.batch_database}.ANALYTICS"
    mart = _query(
        settings, f"select symbol, trade_date, close_price from {analytics}.MART_STOCK_PERFORMANCE"
    )
    got = {(r.symbol, pd.Timestamp(r.trade_date)): float(r.close_price) for r in mart.itertuples()}
    expected = {(r.symbol, pd.Timestamp(r.trade_date)): float(r.close) for r in bars.itertuples()}
    assert got.keys() == expected.keys(), "one mart row per valid (symbol, trading day)"
    assert got == pytest.approx(expected), "later deliveries won (latest ingestion)"
    summary = _query(settings, f"select count(*) as n from {analytics}.MART_DAILY_SUMMARY")
    assert summary["n"][0] == bars["trade_date"].nunique()


def test_every_valid_tick_reaches_the_realtime_mart(matrix_run: MatrixRun) -> None:
    settings = matrix_run.settings
    expected = _expected_windows(matrix_run.planted.ticks)
    assert len(expected) == 3 * len(SYMBOLS)
    sf = settings.snowflake
    table = _query(
        settings,
        f"select symbol, window_start, tick_count from {sf.stream_database}.{sf.schema_}.{sf.stream_table}",
    )
    counts = {
        (r.symbol, pd.Timestamp(r.window_start)): int(r.tick_count) for r in table.itertuples()
    }
    assert counts == {
        (r.symbol, r.window_start): r.tick_count for r in expected.itertuples()
    }, "every valid tick counted once; no bad or duplicate tick in a window"
    mart = _query(
        settings,
        "select symbol, window_start_at, window_high_price, window_low_price, window_close_price "
        f"from {sf.batch_database}.ANALYTICS.MART_REALTIME_SIGNALS",
    )
    got = {(r.symbol, pd.Timestamp(r.window_start_at)): (r.window_high_price, r.window_low_price, r.window_close_price)
           for r in mart.itertuples()}  # fmt: skip
    want = {
        (r.symbol, r.window_start): (r.window_high, r.window_low, r.window_close)
        for r in expected.itertuples()
    }
    assert got.keys() == want.keys(), "one mart row per closed window"
    for key, values in want.items():
        assert got[key] == pytest.approx(values), key
