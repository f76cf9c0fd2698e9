"""Where the ingest paths spend their time: cProfile of producer and consumer on the stack.

``market-bench ingest --profile`` runs the real paths at a small size (default 200,000
bars) under cProfile and writes ``benchmarks/results/ingest_profile.{json,md}``:

* producer: the thread calling :meth:`RecordProducer.send_frame` (validation, JSON
  encoding, kafka-python's record accumulator) and kafka-python's sender thread (batch
  compression, produce requests, completing every record's future), profiled separately;
* consumer: the thread running :func:`market_ingest.consumer.consume` (kafka-python's
  fetch and record decoding, our decode/validation, Arrow building, Parquet, S3 PUT).

Own time is grouped into buckets by module; a C function's own time goes to the bucket of
the Python function that called it, except for compression, socket and wait primitives,
which are buckets of their own. cProfile roughly doubles the cost of per-call Python code,
so the shares, not the rates, are the finding.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import pstats
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from market_common.clients import ensure_topics
from market_common.settings import MarketSettings

Func = tuple[str, int, str]

# (bucket, pattern on "file:function"), first match wins; C functions are named "~:<...>".
PRODUCER_BUCKETS: tuple[tuple[str, str], ...] = (
    ("compression (gzip)", r"~:.*zlib|/kafka/codec\.py|/gzip\.py"),
    ("waiting (epoll, locks, sleep)", r"~:.*(epoll|_thread\.lock|time\.sleep)"),
    ("network I/O and protocol", r"~:.*_socket|/kafka/(net|protocol|conn)|/selectors\.py|/socket\.py"),
    ("JSON encoding", r"/market_ingest/records/encoding\.py"),
    ("validation (records, pandas, numpy)", r"/market_ingest/records/|/pandas/|/numpy/"),
    ("record batch building (varints, CRC)", r"/kafka/record/"),
    ("send path (accumulator, futures, sender)", r"/kafka/(producer|future|partitioner|metrics)"),
    ("our send loop", r"/market_ingest/producer\.py"),
)  # fmt: skip
CONSUMER_BUCKETS: tuple[tuple[str, str], ...] = (
    ("decompression (gzip)", r"~:.*zlib|/kafka/codec\.py|/gzip\.py"),
    ("waiting (epoll, locks, sleep)", r"~:.*(epoll|_thread\.lock|time\.sleep)"),
    ("kafka-python fetch and record decoding", r"/kafka/(consumer|record|future|coordinator|structs)"),
    ("network I/O and protocol", r"~:.*_socket|/kafka/(net|protocol|conn|client)|/selectors\.py|/socket\.py"),
    ("JSON decode (pyarrow.json)", r"/market_ingest/records/decoding\.py|/pyarrow/json"),
    ("validation (records, pandas, numpy)", r"/market_ingest/records/|/pandas/|/numpy/"),
    ("Arrow building", r"/market_ingest/rawzone\.py:(to_table|split_by_partition)|/pyarrow/(?!parquet)"),
    ("Parquet write", r"/market_ingest/rawzone\.py:parquet_bytes|/pyarrow/parquet"),
    ("S3 requests (boto3)", r"/(boto3|botocore|s3transfer|urllib3|http|ssl|email)/|/http/"),
    ("consumer loop and offsets", r"/market_ingest/(consumer|offsets)\.py"),
    ("imports", r"<frozen importlib|~:<built-in method (builtins\.)?(compile|exec|__import__)"),
)  # fmt: skip


def _name(func: Func) -> str:
    file, line, name = func
    if file == "~":
        return f"~:{name}"
    short = re.sub(r".*/(site-packages|src|lib/python3\.\d+)/", "", file)
    return f"{short}:{line}:{name}"


def _bucket(func: Func, rules: tuple[tuple[str, str], ...]) -> str | None:
    key = f"~:{func[2]}" if func[0] == "~" else f"{func[0]}:{func[2]}"
    for bucket, pattern in rules:
        if re.search(pattern, key):
            return bucket
    return None


def buckets(stats: pstats.Stats, rules: tuple[tuple[str, str], ...]) -> dict[str, float]:
    """Own time per bucket; an unmatched C function's time goes to its callers' buckets."""
    out: dict[str, float] = {}
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    for func, (_cc, _nc, tt, _ct, callers) in raw.items():
        bucket = _bucket(func, rules)
        if bucket is None and func[0] == "~" and callers:
            for caller, entry in callers.items():
                share = entry[2] if isinstance(entry, tuple) else 0.0
                target = _bucket(caller, rules) or "other"
                out[target] = out.get(target, 0.0) + share
            continue
        out[bucket or "other"] = out.get(bucket or "other", 0.0) + tt
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def top(stats: pstats.Stats, key: str, n: int = 15) -> list[dict[str, Any]]:
    """The ``n`` functions with the most own (``tottime``) or cumulative time."""
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    index = {"tottime": 2, "cumtime": 3}[key]
    rows = sorted(raw.items(), key=lambda kv: -kv[1][index])[:n]
    return [
        {"function": _name(f), "calls": v[1], "own_s": round(v[2], 3), "cum_s": round(v[3], 3)}
        for f, v in rows
    ]


def summarise(
    profile: cProfile.Profile, rules: tuple[tuple[str, str], ...], **extra: Any
) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    groups = buckets(stats, rules)
    return {
        **extra,
        "profiled_own_s": round(total, 3),
        "buckets": [
            {"bucket": b, "own_s": round(s, 3), "share": round(s / total, 3) if total else 0.0}
            for b, s in groups.items()
        ],
        "top_own": top(stats, "tottime"),
        "top_cumulative": top(stats, "cumtime"),
    }


@contextlib.contextmanager
def profiled_sender() -> Iterator[list[dict[str, Any]]]:
    """Profile every kafka-python producer sender thread started inside the block."""
    from kafka.producer import sender

    runs: list[dict[str, Any]] = []
    original = sender.Sender.run

    def run(self: Any) -> None:
        profile = cProfile.Profile()
        started, cpu = time.perf_counter(), time.thread_time()
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()
            runs.append(
                {
                    "profile": profile,
                    "wall_s": time.perf_counter() - started,
                    "cpu_s": time.thread_time() - cpu,
                }
            )

    sender.Sender.run = run  # type: ignore[method-assign]
    try:
        yield runs
    finally:
        sender.Sender.run = original  # type: ignore[method-assign]


def profile_producer(
    settings: MarketSettings, *, records: int, n_symbols: int, topic: str
) -> dict[str, Any]:
    from market_benchmarks.ingest import _bench_frame
    from market_ingest.producer import RecordProducer

    symbols, frame = _bench_frame(records, n_symbols, date(2025, 12, 31))
    frame = frame.assign(schema_version=1)
    main = cProfile.Profile()
    with profiled_sender() as senders:
        out = RecordProducer(
            settings, "daily_bar", source_name="bench", topic=topic, universe=symbols
        )
        t0, cpu0 = time.perf_counter(), time.thread_time()
        main.enable()
        for i in range(0, len(frame), 50_000):
            out.send_frame(frame.iloc[i : i + 50_000])
        send_loop_s = time.perf_counter() - t0
        result = out.close()
        main.disable()
        wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    sender = senders[0] if senders else None
    return {
        "records": result.acked,
        "wall_s": round(wall, 3),
        "send_loop_s": round(send_loop_s, 3),
        "msgs_per_s_profiled": round(result.acked / wall, 1),
        "main_thread": summarise(main, PRODUCER_BUCKETS, cpu_s=round(cpu, 3)),
        "sender_thread": (
            summarise(
                sender["profile"],
                PRODUCER_BUCKETS,
                cpu_s=round(sender["cpu_s"], 3),
                wall_s=round(sender["wall_s"], 3),
            )
            if sender
            else None
        ),
    }


def profile_consumer(settings: MarketSettings, *, topic: str, prefix: str) -> dict[str, Any]:
    from market_ingest.consumer import consume

    local = settings.model_copy(deep=True)
    local.s3.raw_prefix = prefix
    import boto3  # noqa: F401 - imported before profiling: a one-off cost, not throughput

    profile = cProfile.Profile()
    cpu0 = time.thread_time()
    profile.enable()
    result = consume(local, "batch", topic=topic, group=f"{topic}-profile", until_caught_up=True)
    profile.disable()
    return {
        "rows_written": result.rows_written,
        "objects_written": result.objects_written,
        "elapsed_s": round(result.elapsed_s, 3),
        "rows_per_s_profiled": round(result.rows_written / result.elapsed_s, 1),
        "main_thread": summarise(
            profile, CONSUMER_BUCKETS, cpu_s=round(time.thread_time() - cpu0, 3)
        ),
    }


def run_profile(
    settings: MarketSettings,
    *,
    records: int = 200_000,
    n_symbols: int = 500,
    output: Path | None = None,
) -> dict[str, Any]:
    """Profile producer and consumer on fresh names; write ``<output>.json`` / ``.md``."""
    from market_benchmarks.ingest import _cleanup, machine, repo_root

    run_id = uuid.uuid4().hex[:8]
    topic, prefix = f"bench-profile-{run_id}", f"bench/{run_id}/raw"
    ensure_topics(settings, [topic])
    try:
        producer = profile_producer(settings, records=records, n_symbols=n_symbols, topic=topic)
        consumer = profile_consumer(settings, topic=topic, prefix=prefix)
    finally:
        _cleanup(settings, [topic], prefix)
    report = {
        "benchmark": "ingest_profile",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "records": records,
        "symbols": n_symbols,
        "kafka": {
            "compression": settings.kafka.compression_type,
            "gzip_level": settings.kafka.gzip_level,
            "linger_ms": settings.kafka.linger_ms,
            "batch_size": settings.kafka.batch_size,
        },
        "producer": producer,
        "consumer": consumer,
    }
    base = output or repo_root() / "benchmarks" / "results" / "ingest_profile"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    base.with_suffix(".md").write_text(render_markdown(report))
    return report


def _thread_md(title: str, t: dict[str, Any], wall: float) -> list[str]:
    lines = [
        f"### {title}",
        "",
        f"CPU {t['cpu_s']} s of {wall} s wall; profiled own time {t['profiled_own_s']} s.",
        "",
        "| bucket | own s | share |",
        "|---|---:|---:|",
        *[f"| {b['bucket']} | {b['own_s']} | {b['share']:.1%} |" for b in t["buckets"]],
        "",
        "Top functions by own time:",
        "",
        "| function | calls | own s | cum s |",
        "|---|---:|---:|---:|",
        *[f"| `{r['function']}` | {r['calls']:,} | {r['own_s']} | {r['cum_s']} |" for r in t["top_own"]],
        "",
        "Top functions by cumulative time:",
        "",
        "| function | calls | own s | cum s |",
        "|---|---:|---:|---:|",
        *[
            f"| `{r['function']}` | {r['calls']:,} | {r['own_s']} | {r['cum_s']} |"
            for r in t["top_cumulative"]
        ],
        "",
    ]  # fmt: skip
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    p, c, k, m = report["producer"], report["consumer"], report["kafka"], report["machine"]
    lines = [
        "# Ingest profile",
        "",
        f"{report['date']} · {m['cpu_count']} cores · load {m['load_avg_1m_at_end']} · "
        f"{report['records']:,} daily bars, {report['symbols']} symbols · "
        f"compression={k['compression']} (gzip level {k['gzip_level']}), "
        f"linger_ms={k['linger_ms']}, batch_size={k['batch_size']:,}",
        "",
        "cProfile of the real paths on the local stack (`market-bench ingest --profile`). "
        "cProfile roughly doubles the cost of per-call Python code, so read the shares; "
        "the rates of the unprofiled benchmark are in `ingest.md`. C functions count "
        "towards the bucket of their Python caller, except compression, sockets and waits.",
        "",
        f"## Producer: {p['msgs_per_s_profiled']:,.0f} msgs/s profiled "
        f"({p['records']:,} acked in {p['wall_s']} s)",
        "",
        *_thread_md("Thread calling send_frame", p["main_thread"], p["wall_s"]),
    ]
    if p.get("sender_thread"):
        s = p["sender_thread"]
        lines += _thread_md("kafka-python sender thread", s, s["wall_s"])
    lines += [
        f"## Consumer: {c['rows_per_s_profiled']:,.0f} rows/s profiled "
        f"({c['rows_written']:,} rows, {c['objects_written']} objects in {c['elapsed_s']} s, "
        "group join included)",
        "",
        *_thread_md("Thread running consume()", c["main_thread"], c["elapsed_s"]),
    ]
    return "\n".join(lines)
