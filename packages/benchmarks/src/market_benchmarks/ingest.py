"""Ingestion benchmark: our producer vs Kafka's own perf tool, and consumer → object store.

1. Producer: N synthetic daily bars (500-symbol universe) through the real path
   (vectorised validation, JSON encoding, kafka-python ``send`` with acks=all,
   idempotence and the configured compression) to a fresh topic; msgs/s = acked / time.
2. ``org.apache.kafka.tools.ProducerPerformance`` from the broker's jars with the same
   record count, our average record size, ``acks=all`` and the same compression: the
   ceiling for this broker on this machine. Its payloads are random letters, which
   compress differently from our JSON; the ratio is still the honest comparison.
3. Consumer: a fresh group reads the produced topic into a throw-away raw prefix
   (Parquet on MinIO, offsets committed); rows/s = rows written / run time, including
   the group join. Then kafka-python alone polls the same topic and drops the records: the
   consumer's ceiling on this machine.

``--profile`` runs :mod:`market_benchmarks.ingest_profile` instead (where the time goes).
Results go to ``benchmarks/results/ingest.json`` and ``.md`` (override with ``output``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from market_common.clients import ensure_topics, kafka_admin, s3_client
from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_ingest.calendar import trading_days
from market_ingest.consumer import consume
from market_ingest.producer import RecordProducer
from market_ingest.records import MAX_RECORD_BYTES, validate_frame
from market_ingest.sources.synthetic import ANCHOR, SyntheticSource
from market_ingest.universe import benchmark_universe

log = get_logger(__name__)

PRODUCER_GOAL_RATIO = 0.5
CONSUMER_GOAL_ROWS_S = 50_000
_PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


def machine() -> dict[str, Any]:
    """The ``machine`` block of the ingest result files (benchmark and profile)."""
    return {
        "cpu_count": os.cpu_count(),
        # Other work on the machine skews both sides; recorded so runs can be compared.
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def repo_root() -> Path:
    """The repository containing the cwd (``pants.toml``), else the one holding this file."""
    for start in (Path.cwd().resolve(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "pants.toml").is_file():
                return candidate
    return Path.cwd()


def _bench_frame(records: int, n_symbols: int, end: date) -> Any:
    symbols = benchmark_universe(n_symbols)
    days_needed = -(-records // n_symbols)
    days = trading_days(ANCHOR, end)[-days_needed:]
    start = days[0].astype(date)
    frame = SyntheticSource(seed=7).daily_frame(symbols, start, end)
    return symbols, frame.iloc[:records].reset_index(drop=True)


def bench_producer(
    settings: MarketSettings, *, records: int, n_symbols: int, topic: str
) -> dict[str, Any]:
    end = date(2025, 12, 31)
    symbols, frame = _bench_frame(records, n_symbols, end)
    frame = frame.assign(schema_version=1)
    # Validation + encoding alone, to show serialisation does not dominate.
    t0 = time.perf_counter()
    for i in range(0, len(frame), 100_000):
        validate_frame("daily_bar", frame.iloc[i : i + 100_000], universe=symbols)
    encode_s = time.perf_counter() - t0

    out = RecordProducer(settings, "daily_bar", source_name="bench", topic=topic, universe=symbols)
    t0 = time.perf_counter()
    for i in range(0, len(frame), 50_000):
        out.send_frame(frame.iloc[i : i + 50_000])
    result = out.close()
    elapsed = time.perf_counter() - t0
    return {
        "records": result.sent,
        "acked": result.acked,
        "failed": result.failed,
        "dead_lettered": result.dead_lettered,
        "elapsed_s": round(elapsed, 3),
        "msgs_per_s": round(result.acked / elapsed, 1),
        "avg_record_bytes": round(result.bytes_sent / max(result.sent, 1), 1),
        "validate_encode_s": round(encode_s, 3),
        "validate_encode_share": round(encode_s / elapsed, 3),
    }


def bench_java_producer(
    settings: MarketSettings, *, records: int, record_size: int, topic: str
) -> dict[str, Any]:
    try:
        from market_devstack.kafka import kafka_java_command
    except ImportError as exc:  # the dev-only local stack package is not installed
        return {"skipped": f"market_devstack not importable: {exc}"}
    k = settings.kafka
    props = [f"bootstrap.servers={k.bootstrap_servers}", f"acks={k.acks}"]
    if k.compression_type:
        props.append(f"compression.type={k.compression_type}")
    props += [f"linger.ms={k.linger_ms}", f"batch.size={k.batch_size}"]
    argv = kafka_java_command(
        "org.apache.kafka.tools.ProducerPerformance",
        [
            "--topic", topic,
            "--num-records", str(records),
            "--record-size", str(record_size),
            "--throughput", "-1",
            "--producer-props", *props,
        ],
    )  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    matches = _PERF_LINE.findall(proc.stdout)
    if proc.returncode != 0 or not matches:
        return {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-500:]}"}
    sent, rate, mb = matches[-1]
    return {
        "records": int(sent),
        "msgs_per_s": float(rate),
        "mb_per_s": float(mb),
        "producer_props": props,
        "summary": proc.stdout.strip().splitlines()[-1],
    }


def bench_consumer(settings: MarketSettings, *, topic: str, prefix: str) -> dict[str, Any]:
    local = settings.model_copy(deep=True)
    local.s3.raw_prefix = prefix
    result = consume(local, "batch", topic=topic, group=f"{topic}-bench", until_caught_up=True)
    return {
        "rows_written": result.rows_written,
        "objects_written": result.objects_written,
        "bytes_written": result.bytes_written,
        "elapsed_s": round(result.elapsed_s, 3),
        "rows_per_s": round(result.rows_written / result.elapsed_s, 1) if result.elapsed_s else 0.0,
    }


def bench_poll_ceiling(settings: MarketSettings, *, topic: str) -> dict[str, Any]:
    """kafka-python alone: poll the topic from the start and drop the records.

    Same fetch settings as the raw-zone consumer, no group (assigned partitions), no
    decoding beyond kafka-python's own, no writes: the consumer's ceiling on this machine.
    Runs after the consumer, so it reads a page cache the consumer warmed.
    """
    from kafka import TopicPartition

    from market_common.clients import kafka_consumer

    consumer = kafka_consumer(
        settings, group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024, max_poll_records=20_000
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        rows, t0 = 0, time.perf_counter()
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            batch = consumer.poll(timeout_ms=500, max_records=20_000)
            rows += sum(len(r) for r in batch.values())
        elapsed = time.perf_counter() - t0
    finally:
        consumer.close(autocommit=False)
    return {"rows": rows, "elapsed_s": round(elapsed, 3), "rows_per_s": round(rows / elapsed, 1)}


def _cleanup(settings: MarketSettings, topics: list[str], prefix: str) -> None:
    s3 = s3_client(settings)
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.s3.bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=settings.s3.bucket, Delete={"Objects": keys})
    admin = kafka_admin(settings)
    try:
        admin.delete_topics(topics)
    except Exception as exc:  # best effort: leftovers are harmless, unique names
        log.warning("could not delete bench topics", extra={"error": str(exc)[:200]})
    finally:
        admin.close()


def run_bench(
    settings: MarketSettings,
    *,
    records: int = 1_000_000,
    n_symbols: int = 500,
    output: Path | None = None,
    skip_java: bool = False,
) -> dict[str, Any]:
    """Run all three measurements and write ``<output>.json`` / ``.md``."""
    run_id = uuid.uuid4().hex[:8]
    ours, theirs = f"bench-ingest-{run_id}", f"bench-perftest-{run_id}"
    prefix = f"bench/{run_id}/raw"
    ensure_topics(settings, [ours, theirs])
    try:
        producer = bench_producer(settings, records=records, n_symbols=n_symbols, topic=ours)
        java = (
            {"skipped": "--skip-java"}
            if skip_java
            else bench_java_producer(
                settings,
                records=records,
                record_size=int(round(producer["avg_record_bytes"])),
                topic=theirs,
            )
        )
        consumer = bench_consumer(settings, topic=ours, prefix=prefix)
        consumer["kafka_python_poll_only"] = bench_poll_ceiling(settings, topic=ours)
    finally:
        _cleanup(settings, [ours, theirs], prefix)
    ratio = (
        round(producer["msgs_per_s"] / java["msgs_per_s"], 3) if java.get("msgs_per_s") else None
    )
    report = {
        "benchmark": "ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "numpy": np.__version__},
        "records": records,
        "symbols": n_symbols,
        "kafka": {
            "partitions": settings.kafka.partitions,
            "acks": settings.kafka.acks,
            "compression": settings.kafka.compression_type,
            "gzip_level": settings.kafka.gzip_level,
            "linger_ms": settings.kafka.linger_ms,
            "batch_size": settings.kafka.batch_size,
        },
        "producer": producer,
        "kafka_producer_perf_test": java,
        "producer_ratio": ratio,
        "producer_ratio_goal": PRODUCER_GOAL_RATIO,
        "consumer": consumer,
        "consumer_goal_rows_per_s": CONSUMER_GOAL_ROWS_S,
    }
    base = output or repo_root() / "benchmarks" / "results" / "ingest"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    base.with_suffix(".md").write_text(render_markdown(report))
    return report


def _verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return "meets goal" if value >= goal else "below goal"


def render_markdown(report: dict[str, Any]) -> str:
    p, j, c = report["producer"], report["kafka_producer_perf_test"], report["consumer"]
    java_rate = (
        f"{j['msgs_per_s']:,.0f}"
        if "msgs_per_s" in j
        else j.get("skipped") or j.get("error", "n/a")
    )
    ratio = report["producer_ratio"]
    lines = [
        "# Ingest benchmark",
        "",
        f"{report['date']} · {report['machine']['cpu_count']} cores · "
        f"load {report['machine']['load_avg_1m_at_end']} · {report['machine']['platform']}",
        f"{report['records']:,} records, {report['symbols']} symbols, "
        f"{report['kafka']['partitions']} partitions, acks={report['kafka']['acks']}, "
        f"compression={report['kafka']['compression']}"
        + (
            f" (level {report['kafka']['gzip_level']})" if report["kafka"].get("gzip_level") else ""
        ),
        "",
        "| measurement | value | goal | verdict |",
        "| --- | --- | --- | --- |",
        f"| our producer (msgs/s) | {p['msgs_per_s']:,.0f} | | |",
        f"| kafka-producer-perf-test (msgs/s, {p['avg_record_bytes']:.0f}-byte records) | {java_rate} | | |",
        f"| ratio ours / Java | {ratio if ratio is not None else 'n/a'} | ≥ {report['producer_ratio_goal']} "
        f"| {_verdict(ratio, report['producer_ratio_goal'])} |",
        f"| validation + JSON encoding share of producer time | {p['validate_encode_share']:.1%} | | |",
        f"| consumer → object store (rows/s) | {c['rows_per_s']:,.0f} | ≥ {report['consumer_goal_rows_per_s']:,} "
        f"| {_verdict(c['rows_per_s'], report['consumer_goal_rows_per_s'])} |",
    ]
    poll = c.get("kafka_python_poll_only")
    if poll:
        lines.append(
            f"| kafka-python poll only, records dropped (rows/s): the consumer's ceiling "
            f"| {poll['rows_per_s']:,.0f} | | |"
        )
    lines += [
        "",
        f"Consumer wrote {c['rows_written']:,} rows in {c['objects_written']} objects "
        f"({c['bytes_written'] / 1e6:.1f} MB) in {c['elapsed_s']} s (includes the group join).",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- fuzz run

_JUNK: tuple[bytes, ...] = (b"", b"null", b"[]", b"0", b'"x"', b"{}", b"{}null", b"\xff\xfe")
_ODD_VALUES: tuple[Any, ...] = (
    None, True, "1", 1.5, -1, 0, 2**63 - 1, 2**64, 1e308, float("nan"), float("inf"),
    5e-324, [], {}, {"a": [1]}, "2024-02-30", "ZZZZ", "bad sym", 10**13,
)  # fmt: skip


def _fuzz_message(rng: Any, valid: list[bytes]) -> bytes:
    """One Kafka value: valid (half the time), spoiled, concatenated or junk."""
    base = valid[rng.randrange(len(valid))]
    roll = rng.random()
    if roll < 0.5:
        return base
    if roll < 0.75:
        record = json.loads(base)
        field = rng.choice(sorted(record))
        if rng.random() < 0.2:
            del record[field]
        else:
            record[field] = rng.choice(_ODD_VALUES)
        return json.dumps(record, allow_nan=True).encode()
    if roll < 0.85:
        return base + valid[rng.randrange(len(valid))]
    if roll < 0.9:
        return b"\xef\xbb\xbf" + base
    if roll < 0.95:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    return rng.choice(_JUNK)


def run_fuzz(
    *, messages: int = 100_000, seed: int = 12, batch: int = 5_000, output: Path | None = None
) -> dict[str, Any]:
    """Long fuzz run of the decoder: ``messages`` values, every verdict cross-checked.

    Each value is judged by the consumer's fast path (:func:`decode_values`, in poll-sized
    batches) and alone by pydantic (``validate_payload``); the run counts verdicts per
    reason and every disagreement (the goal is zero). Results go to
    ``benchmarks/results/ingest_fuzz.json`` and ``.md``.
    """
    import random

    from market_common.contracts import InvalidRecordError, validate_payload
    from market_ingest.records import decode_values

    rng = random.Random(seed)  # noqa: S311 - a repeatable generator, not cryptography
    now = datetime(2026, 1, 2, tzinfo=UTC)
    _, frame = _bench_frame(2_000, 50, date(2025, 12, 31))
    valid = validate_frame("daily_bar", frame.assign(schema_version=1), now=now).payloads
    reasons: dict[str, int] = {}
    accepted = disagreements = 0
    examples: list[str] = []
    t0 = time.perf_counter()
    for start in range(0, messages, batch):
        values = [_fuzz_message(rng, valid) for _ in range(min(batch, messages - start))]
        decoded = decode_values("daily_bar", values, now=now)
        fast = {r.index: r.reason for r in decoded.rejects}
        rows = set(decoded.frame.index.tolist())
        for i, value in enumerate(values):
            try:
                validate_payload("daily_bar", value, now=now, max_bytes=MAX_RECORD_BYTES)
                verdict = None
            except InvalidRecordError as exc:
                verdict = exc.reason
            got = fast.get(i) if i not in rows else None
            if (i in rows) == (i in fast) or got != verdict:
                disagreements += 1
                examples.append(value[:120].decode("utf-8", "backslashreplace"))
            if verdict is None:
                accepted += 1
            else:
                reasons[verdict] = reasons.get(verdict, 0) + 1
    elapsed = time.perf_counter() - t0
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "messages": messages,
        "seed": seed,
        "accepted": accepted,
        "rejected": dict(sorted(reasons.items())),
        "disagreements": disagreements,
        "disagreement_examples": examples[:10],
        "elapsed_s": round(elapsed, 2),
    }
    base = output or repo_root() / "benchmarks" / "results" / "ingest_fuzz"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Ingest decoder fuzz run",
        "",
        f"{messages:,} Kafka values (seed {seed}): valid bars, spoiled fields, concatenated "
        "objects, BOMs, random bytes and junk. Each judged by the consumer's fast path and "
        "alone by pydantic.",
        "",
        f"- accepted: {accepted:,}; disagreements between the engines: **{disagreements}** "
        "(goal 0)",
        f"- elapsed: {elapsed:.1f} s",
        "",
        "| reason | messages |",
        "|---|---|",
        *[f"| `{code}` | {count:,} |" for code, count in sorted(reasons.items())],
    ]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return report
