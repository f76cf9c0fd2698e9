"""What is inside the pipeline right now, read from each store (``market-pipeline inspect``).

The seed shipped a Kafka UI; this is the platform's own view, on every deployment, from the
same settings the steps use: topics with their end offsets and each consumer group's lag,
the dead letters counted by reason with one sample each, the lake's prefixes with object
counts and bytes, the quarantine counted by reason, the warehouse tables with row counts
and freshness, and the results of the last dbt build's tests. It only reads.

Every section is read on its own: a store that cannot be reached leaves its section empty
and names the error in ``Inspection.errors``, so the inspector still answers when the
pipeline is half broken, which is when it is needed most. The HTML report embeds the same
:class:`Inspection` (its data-quality and inspector sections).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from market_common.clients import kafka_consumer, s3_client, snowflake_connection
from market_common.identifiers import qualified
from market_common.kafka_offsets import topic_offsets
from market_common.settings import MarketSettings
from market_pipeline.counts import s3_filesystem
from market_pipeline.marts import DAILY_SUMMARY, MARTS_SCHEMA, PERFORMANCE, REALTIME_SIGNALS

# Dead letters read per inspection: enough to rank reasons, bounded for a huge DLQ.
DLQ_READ_LIMIT = 200_000
SAMPLE_CHARS = 300
STREAMS = ("historical", "realtime")
T = TypeVar("T")


@dataclass(frozen=True)
class TopicState:
    """A topic's partitions, retained messages, end offset sum and each group's lag."""

    topic: str
    partitions: int
    messages: int
    end_offset: int
    lag: dict[str, int] = field(default_factory=dict)  # consumer group -> messages behind


@dataclass(frozen=True)
class ReasonCount:
    """How many records were rejected for one reason, and one of them as a sample."""

    reason: str
    count: int
    sample: str


@dataclass(frozen=True)
class PrefixState:
    prefix: str
    objects: int
    bytes: int


@dataclass(frozen=True)
class TableState:
    """A warehouse table: rows (None: absent), its freshness column's latest value and age."""

    relation: str
    rows: int | None
    freshness_column: str
    latest: str | None = None
    age_hours: float | None = None
    sources: list[str] = field(default_factory=list)  # data sources of the rows, if recorded


@dataclass(frozen=True)
class DbtTests:
    """The test nodes of the last dbt build/test (``run_results.json``)."""

    command: str | None = None
    generated_at: str | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return bool(self.statuses)


@dataclass
class Inspection:
    generated_at: str
    topics: list[TopicState] = field(default_factory=list)
    dlq: list[ReasonCount] = field(default_factory=list)
    dlq_read: int = 0
    lake: list[PrefixState] = field(default_factory=list)
    quarantine: dict[str, list[ReasonCount]] = field(default_factory=dict)  # stream -> reasons
    warehouse: list[TableState] = field(default_factory=list)
    dbt: DbtTests = field(default_factory=DbtTests)
    errors: dict[str, str] = field(default_factory=dict)  # section -> why it is empty

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dbt"]["ran"] = self.dbt.ran
        return out

    @property
    def data_sources(self) -> list[str]:
        return sorted({s for t in self.warehouse for s in t.sources})


def _reasons(counts: Counter[str], samples: dict[str, str]) -> list[ReasonCount]:
    return [ReasonCount(r, n, samples.get(r, "")) for r, n in counts.most_common()]


def topics(settings: MarketSettings) -> list[TopicState]:
    """The batch, realtime and DLQ topics with each one's consumer group lag."""
    k = settings.kafka
    groups = {k.batch_topic: k.batch_group, k.realtime_topic: k.realtime_group}
    consumer = kafka_consumer(settings, group_id=None)
    try:
        out = []
        for topic in (k.batch_topic, k.realtime_topic, k.dlq_topic):
            group = groups.get(topic)
            parts = topic_offsets(settings, topic, group=group, consumer=consumer)
            out.append(
                TopicState(
                    topic=topic,
                    partitions=len(parts),
                    messages=sum(p.messages for p in parts),
                    end_offset=sum(p.end for p in parts),
                    lag={group: sum(p.lag for p in parts)} if group and parts else {},
                )
            )
        return out
    finally:
        consumer.close()


def dlq_reasons(
    settings: MarketSettings, *, limit: int = DLQ_READ_LIMIT
) -> tuple[list[ReasonCount], int]:
    """Dead letters by reason (most frequent first) and how many were read (≤ ``limit``)."""
    from kafka import TopicPartition

    topic = settings.kafka.dlq_topic
    consumer = kafka_consumer(settings, group_id=None)
    counts: Counter[str] = Counter()
    samples: dict[str, str] = {}
    read = 0
    try:
        partitions = consumer.partitions_for_topic(topic) if topic in consumer.topics() else None
        if not partitions:
            return [], 0
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        idle = 0
        while read < limit and any(consumer.position(tp) < ends[tp] for tp in tps) and idle < 10:
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            idle = 0 if batch else idle + 1
            for record in (r for records in batch.values() for r in records):
                read += 1
                reason, sample = _dead_letter(record.value)
                counts[reason] += 1
                samples.setdefault(reason, sample)
        return _reasons(counts, samples), read
    finally:
        consumer.close()


def _dead_letter(value: bytes | None) -> tuple[str, str]:
    """(reason, sample) of one DLQ value; a value that is no DeadLetter is itself a reason."""
    try:
        letter = json.loads(value or b"")
        reason = str(letter["reason"])
    except (ValueError, KeyError, TypeError):
        return "unreadable_dead_letter", (value or b"")[:SAMPLE_CHARS].decode(errors="replace")
    detail = f"{letter.get('stage', '?')}: {letter.get('detail') or ''}".strip()
    original = str(letter.get("original", ""))
    return reason, f"{detail} | {original}"[:SAMPLE_CHARS]


def lake_prefixes(settings: MarketSettings, *, client: Any = None) -> list[PrefixState]:
    """Objects and bytes under each zone/stream prefix of the bucket (checkpoints too)."""
    s3 = settings.s3
    client = client or s3_client(settings)
    out = []
    for zone in (s3.raw_prefix, s3.processed_prefix, s3.quarantine_prefix, s3.checkpoint_prefix):
        for stream in STREAMS:
            prefix = f"{zone.strip('/')}/{stream}/"
            objects = size = 0
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=s3.bucket, Prefix=prefix
            ):
                contents = page.get("Contents", [])
                objects += len(contents)
                size += sum(int(o["Size"]) for o in contents)
            out.append(PrefixState(prefix, objects, size))
    return out


def quarantine_reasons(settings: MarketSettings) -> dict[str, list[ReasonCount]]:
    """Quarantined rows per stream, counted by their ``reason`` column, one sample each."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    fs = s3_filesystem(settings)
    out: dict[str, list[ReasonCount]] = {}
    for stream in STREAMS:
        path = f"{settings.s3.bucket}/{settings.s3.quarantine_prefix.strip('/')}/{stream}"
        try:
            dataset = ds.dataset(path, format="parquet", filesystem=fs, partitioning="hive")
        except FileNotFoundError:
            out[stream] = []
            continue
        if "reason" not in dataset.schema.names:
            out[stream] = []
            continue
        counts: Counter[str] = Counter()
        for item in pc.value_counts(dataset.to_table(columns=["reason"])["reason"]).to_pylist():
            counts[str(item["values"])] += int(item["counts"])
        samples = {}
        for reason in counts:
            row = dataset.head(1, filter=pc.field("reason") == reason).to_pylist()
            samples[reason] = json.dumps(row[0] if row else {}, default=str)[:SAMPLE_CHARS]
        out[stream] = _reasons(counts, samples)
    return out


def warehouse_tables(
    settings: MarketSettings, *, connection: Any = None, now: datetime | None = None
) -> list[TableState]:
    """The loader tables (fresh = last load) and the marts (fresh = latest data)."""
    from market_loaders.datasets import HISTORICAL, REALTIME

    sf = settings.snowflake
    marts = sf.batch_database, MARTS_SCHEMA
    tables = [
        ((sf.batch_database, sf.schema_, sf.batch_table), HISTORICAL.load_ts_column, "SOURCE"),
        ((sf.stream_database, sf.schema_, sf.stream_table), REALTIME.load_ts_column, None),
        ((*marts, PERFORMANCE.upper()), "TRADE_DATE", None),
        ((*marts, DAILY_SUMMARY.upper()), "TRADE_DATE", None),
        ((*marts, REALTIME_SIGNALS.upper()), "WINDOW_START_AT", None),
    ]
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    own = connection is None
    conn = connection or snowflake_connection(settings)
    try:
        return [_table_state(conn, parts, column, by, moment) for parts, column, by in tables]
    finally:
        if own:
            conn.close()


def _table_state(
    conn: Any, parts: tuple[str, str, str], column: str, source_column: str | None, now: datetime
) -> TableState:
    relation = qualified(*parts)
    cursor = conn.cursor()
    try:
        try:
            cursor.execute(f"select count(*), max({column}) from {relation}")  # noqa: S608
        except Exception as exc:  # drivers differ in the class of "does not exist"
            if "does not exist" in str(exc).lower() or "not found" in str(exc).lower():
                return TableState(relation, None, column)
            raise
        rows, latest = cursor.fetchone() or (0, None)
        if not rows:  # the emulator answers max() of no rows with the epoch, not NULL
            latest = None
        sources: list[str] = []
        if source_column and rows:
            cursor.execute(f"select distinct {source_column} from {relation}")  # noqa: S608
            sources = sorted(str(v) for (v,) in cursor.fetchall() if v is not None)
    finally:
        cursor.close()
    age = None
    if latest is not None:
        moment = latest if isinstance(latest, datetime) else datetime.fromisoformat(str(latest))
        moment = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        age = round((now - moment).total_seconds() / 3600, 2)
    return TableState(relation, int(rows), column, str(latest) if latest else None, age, sources)


def dbt_tests(target_dir: Path) -> DbtTests:
    """Test results of the last dbt build/test in ``target_dir`` (empty if it ran none)."""
    path = target_dir / "run_results.json"
    if not path.is_file():
        return DbtTests()
    data = json.loads(path.read_text())
    tests = [
        r for r in data.get("results", []) if r["unique_id"].startswith(("test.", "unit_test."))
    ]
    failures = [
        {"test": r["unique_id"], "status": r["status"], "message": (r.get("message") or "")[:300]}
        for r in tests
        if r["status"] not in ("pass", "success")
    ]
    return DbtTests(
        command=(data.get("args") or {}).get("which"),
        generated_at=(data.get("metadata") or {}).get("generated_at"),
        statuses=dict(sorted(Counter(r["status"] for r in tests).items())),
        failures=failures,
    )


def inspect_pipeline(
    settings: MarketSettings,
    *,
    dbt_target_dir: Path | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Inspection:
    """Read every section (see module docstring); unreadable sections are named in errors."""
    if dbt_target_dir is None:
        from market_dbt.runner import DbtProject

        dbt_target_dir = DbtProject.from_settings(settings).target_dir
    moment = now()
    result = Inspection(generated_at=moment.strftime("%Y-%m-%d %H:%M:%S UTC"))

    def section(name: str, read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except Exception as exc:  # one unreachable store must not hide the others
            result.errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            return default

    result.topics = section("topics", lambda: topics(settings), [])
    no_letters: tuple[list[ReasonCount], int] = ([], 0)
    result.dlq, result.dlq_read = section("dlq", lambda: dlq_reasons(settings), no_letters)
    result.lake = section("lake", lambda: lake_prefixes(settings), [])
    result.quarantine = section("quarantine", lambda: quarantine_reasons(settings), {})
    result.warehouse = section("warehouse", lambda: warehouse_tables(settings, now=moment), [])
    result.dbt = section("dbt", lambda: dbt_tests(dbt_target_dir), DbtTests())
    return result
