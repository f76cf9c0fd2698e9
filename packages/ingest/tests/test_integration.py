"""End to end on the local stack: producer → Kafka → consumer → MinIO raw zone (+ DLQ)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market_common.clients import kafka_consumer, kafka_producer
from market_common.contracts import SESSION_CLOSE, SessionClose, control_kind
from market_common.settings import MarketSettings, load_settings
from market_ingest.calendar import session_bounds, trading_days
from market_ingest.consumer import consume
from market_ingest.producer import backfill, stream
from market_ingest.records import validate_frame
from market_ingest.sources.synthetic import SyntheticSource
from market_ingest.universe import benchmark_universe

pytestmark = pytest.mark.integration

N_SYMBOLS, N_DAYS = 20, 500  # 10,000 records
END = date(2024, 12, 31)


@pytest.fixture
def settings(local_stack: Any, unique_name: Any) -> MarketSettings:
    s = load_settings()
    s.kafka.batch_topic = unique_name("batch")
    s.kafka.realtime_topic = unique_name("rt")
    s.kafka.dlq_topic = unique_name("dlq")
    s.kafka.batch_group = unique_name("gb")
    s.kafka.realtime_group = unique_name("gr")
    s.s3.raw_prefix = f"it-ingest/{unique_name('raw')}/raw"
    return s


def read_raw(s3: Any, settings: MarketSettings, stream_dir: str) -> tuple[pa.Table, list[str]]:
    prefix = f"{settings.s3.raw_prefix}/{stream_dir}/"
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3.bucket, Prefix=prefix
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=settings.s3.bucket, Key=k)["Body"].read()))
        for k in sorted(keys)
    ]
    return (pa.concat_tables(tables) if tables else pa.table({})), keys


def _pairs(table: pa.Table) -> set[tuple[str, date]]:
    return set(
        zip(table.column("symbol").to_pylist(), table.column("trade_date").to_pylist(), strict=True)
    )


def _reset_group_to_start(settings: MarketSettings, topic: str, group: str) -> None:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    c = kafka_consumer(settings, group_id=group)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
        c.assign(parts)
        c.seek_to_beginning(*parts)
        c.commit({tp: OffsetAndMetadata(c.position(tp), "", -1) for tp in parts})
    finally:
        c.close(autocommit=False)


def test_round_trip_exactly_once_in_raw_even_after_reset(
    settings: MarketSettings, s3_client: Any
) -> None:
    symbols = benchmark_universe(N_SYMBOLS, seed=3)
    days = trading_days(date(2020, 1, 1), END)[-N_DAYS:]
    start = days[0].astype(date)
    produced = backfill(settings, start=start, end=END, symbols=symbols, source="synthetic", seed=9)
    assert produced.ok and produced.acked == N_SYMBOLS * N_DAYS == 10_000

    expected = SyntheticSource(seed=9).daily_frame(symbols, start, END)
    expected_pairs = set(zip(expected["symbol"], expected["trade_date"].dt.date, strict=True))
    assert len(expected_pairs) == 10_000

    # Window of 1,500 offsets: several complete windows plus a provisional tail per partition.
    first = consume(settings, "batch", until_caught_up=True, window_rows=1_500)
    table, keys = read_raw(s3_client, settings, "historical")
    assert first.stopped_by == "caught_up" and first.dead_lettered == 0
    assert table.num_rows == 10_000
    assert _pairs(table) == expected_pairs
    assert all("/historical/year=" in k for k in keys)
    closes = dict(
        zip(
            zip(
                table.column("symbol").to_pylist(),
                table.column("trade_date").to_pylist(),
                strict=True,
            ),
            table.column("close").to_pylist(),
            strict=True,
        )
    )
    for row in expected.sample(50, random_state=1).itertuples():
        assert closes[(row.symbol, row.trade_date.date())] == row.close

    _reset_group_to_start(settings, settings.kafka.batch_topic, settings.kafka.batch_group)
    second = consume(settings, "batch", until_caught_up=True, window_rows=1_500)
    again, keys_again = read_raw(s3_client, settings, "historical")
    assert second.messages == 10_000 and second.objects_written == len(
        keys
    ), "everything was rewritten"
    assert sorted(keys_again) == sorted(keys), "same deterministic keys"
    assert again.num_rows == 10_000 and _pairs(again) == expected_pairs
    offsets = set(
        zip(
            again.column("kafka_partition").to_pylist(),
            again.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )
    assert len(offsets) == 10_000

    # A restart without reset re-reads only the provisional tails and changes nothing.
    third = consume(settings, "batch", until_caught_up=True, window_rows=1_500)
    assert (
        third.messages < 3 * 1_500
        and read_raw(s3_client, settings, "historical")[0].num_rows == 10_000
    )


MALFORMED: list[bytes] = [
    b'{"symbol": "AAPL", "trade_da',
    b"not json at all",
    b"[1, 2, 3]",
    b"",
    b'{"schema_version":1,"symbol":"AAPL","trade_date":"2024-01-02","open":"abc","high":2,"low":1,"close":1.5,"volume":1}',
    b'{"schema_version":1,"symbol":"AAPL","trade_date":"2024-01-02","open":-1,"high":2,"low":1,"close":1.5,"volume":1}',
    b'{"schema_version":1,"symbol":"AAPL","trade_date":"2024-01-02","open":1.2,"high":1,"low":2,"close":1.5,"volume":1}',
    b'{"schema_version":2,"symbol":"AAPL","trade_date":"2024-01-02","open":1.2,"high":2,"low":1,"close":1.5,"volume":1}',
    b'{"schema_version":1,"symbol":"AAPL","trade_date":"2999-01-02","open":1.2,"high":2,"low":1,"close":1.5,"volume":1}',
    b'{"schema_version":1,"symbol":"AAPL","trade_date":"2024-01-02","open":NaN,"high":2,"low":1,"close":1.5,"volume":1}',
]


def test_malformed_messages_go_to_the_dlq(settings: MarketSettings, s3_client: Any) -> None:
    symbols = ["AAPL", "MSFT", "NVDA", "JPM"]
    frame = (
        SyntheticSource(seed=1).daily_frame(symbols, date(2023, 1, 1), END).assign(schema_version=1)
    )
    valid = validate_frame("daily_bar", frame, now=datetime.now(UTC))
    assert not valid.rejects
    bad = [
        MALFORMED[i % len(MALFORMED)]
        + (b" " * (i // len(MALFORMED)) if MALFORMED[i % len(MALFORMED)] else b"")
        for i in range(50)
    ]
    bad[-1] = b"x" * 5000  # oversized
    raw = kafka_producer(settings)  # a plain producer: no validation on this path
    topic = settings.kafka.batch_topic
    from market_common.clients import ensure_topics

    ensure_topics(settings, [topic])
    step = len(valid.payloads) // 50
    for i, (sym, payload) in enumerate(zip(valid.frame["symbol"], valid.payloads, strict=True)):
        raw.send(topic, key=sym.encode(), value=payload)
        if i % step == 0 and i // step < 50:
            raw.send(topic, key=symbols[i % 4].encode(), value=bad[i // step])
    raw.flush()
    raw.close()

    result = consume(settings, "batch", until_caught_up=True, window_rows=700)
    assert result.stopped_by == "caught_up" and result.dead_lettered == 50 and result.ok
    table, _ = read_raw(s3_client, settings, "historical")
    assert table.num_rows == len(valid.payloads)
    assert _pairs(table) == set(zip(frame["symbol"], frame["trade_date"].dt.date, strict=True))

    dlq = kafka_consumer(
        settings, settings.kafka.dlq_topic, group_id=None, consumer_timeout_ms=10_000
    )
    letters = [json.loads(m.value) for m in dlq]
    dlq.close()
    assert len(letters) == 50
    assert all(letter["reason"] and letter["stage"] == "consumer" for letter in letters)
    assert all(letter["topic"] == topic and letter["offset"] is not None for letter in letters)
    assert sorted(letter["original"] for letter in letters) == sorted(
        b.decode("utf-8", "backslashreplace") for b in bad
    )


def test_realtime_session_lands_by_date_and_hour(settings: MarketSettings, s3_client: Any) -> None:
    symbols = ["AAPL", "MSFT"]
    produced = stream(
        settings, session_minutes=3, clock="simulated", symbols=symbols, source="synthetic"
    )
    assert produced.ok and produced.acked == 3 * 60 * len(symbols)
    result = consume(settings, "realtime", until_caught_up=True)
    table, keys = read_raw(s3_client, settings, "realtime")
    assert table.num_rows == produced.acked and result.rows_written == produced.acked
    assert all("/realtime/date=" in k and "/hour=" in k for k in keys)
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"


def _topic_records(settings: MarketSettings, topic: str) -> list[Any]:
    from kafka import TopicPartition

    consumer = kafka_consumer(settings, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        records: list[Any] = []
        while sum(consumer.position(tp) for tp in parts) < sum(end.values()):
            for batch in consumer.poll(timeout_ms=1_000).values():
                records += batch
        return records
    finally:
        consumer.close()


def test_a_full_session_ends_with_a_session_close_that_the_archive_skips(
    settings: MarketSettings, s3_client: Any
) -> None:
    """A stream that reaches the close sends a SessionClose last on every partition (the
    streaming job emits the last window on it); one stopped mid-session sends none; the
    consumer commits past it without archiving or dead-lettering it."""
    symbols = ["AAPL", "MSFT", "BRK.B"]
    partial = stream(
        settings, session_minutes=2, clock="simulated", symbols=symbols, source="synthetic"
    )
    assert partial.ok and partial.session_closed_at is None
    full = stream(
        settings, session_minutes=390, clock="simulated", symbols=symbols, source="synthetic"
    )
    assert full.ok and full.acked == 390 * 60 * len(symbols)
    assert full.session_closed_at is not None

    records = _topic_records(settings, settings.kafka.realtime_topic)
    controls = [r for r in records if control_kind(r.headers) == SESSION_CLOSE]
    partitions = {r.partition for r in records}
    assert {r.partition for r in controls} == partitions and len(controls) == len(partitions)
    ticks = [r for r in records if control_kind(r.headers) is None]
    last_tick = max(datetime.fromisoformat(json.loads(r.value)["ts"]) for r in ticks)
    closes_at = SessionClose.from_value(controls[0].value).closes_at
    # The session's close by the exchange calendar, with nothing after it from this stream.
    day = last_tick.astimezone(ZoneInfo("America/New_York")).date()
    assert closes_at == session_bounds(day)[1] and last_tick < closes_at
    for control in controls:
        assert control.offset == max(r.offset for r in records if r.partition == control.partition)

    result = consume(settings, "realtime", until_caught_up=True)
    table, _ = read_raw(s3_client, settings, "realtime")
    assert table.num_rows == len(ticks) == partial.acked + full.acked
    assert result.control_records == len(controls) and result.dead_lettered == 0
    assert sum(result.committed.values()) == len(records), "committed past the control records"


def test_stopping_midway_then_resuming_keeps_rows_exact(
    settings: MarketSettings, s3_client: Any
) -> None:
    symbols = ["AAPL", "MSFT", "NVDA", "JPM", "V"]
    produced = backfill(
        settings, start=date(2023, 6, 1), end=END, symbols=symbols, source="synthetic"
    )
    assert produced.ok
    partial = consume(
        settings,
        "batch",
        until_caught_up=False,
        max_messages=700,
        window_rows=300,
        poll_records=200,
    )
    assert (
        partial.stopped_by == "max_messages" and partial.committed
    ), "durable progress was committed"
    mid, _ = read_raw(s3_client, settings, "historical")
    assert 0 < mid.num_rows < produced.acked
    rest = consume(settings, "batch", until_caught_up=True, window_rows=300)
    assert rest.stopped_by == "caught_up"
    table, _ = read_raw(s3_client, settings, "historical")
    assert table.num_rows == produced.acked
    offsets = set(
        zip(
            table.column("kafka_partition").to_pylist(),
            table.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )
    assert len(offsets) == produced.acked
