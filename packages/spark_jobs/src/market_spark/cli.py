"""``market-spark`` command line; also a ``spark-submit`` entry file.

    market-spark batch [--since D] [--until D]
    market-spark stream [--trigger availableNow|processingTime] [--topic T]
    market-spark recompute [--since D] [--until D]
    market-spark bench [--years N] [--symbols N] [--ticks N]
    spark-submit --packages <coords> packages/spark_jobs/src/market_spark/cli.py batch

Each command prints its run summary as JSON on stdout; errors exit with status 2 and an
actionable message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date

from market_common.logging import configure_logging, get_logger
from market_common.settings import MarketSettings, load_settings
from market_spark.errors import SparkJobError

log = get_logger("market_spark.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="market-spark", description=__doc__.split("\n")[0])
    p.add_argument("--master", help="Spark master URL (default: settings.spark.master)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("batch", help="raw/historical → processed/historical")
    b.add_argument("--input", help="raw historical URI")
    b.add_argument("--output", help="processed historical URI")
    b.add_argument("--quarantine", help="quarantine URI")
    b.add_argument("--since", type=date.fromisoformat, help="first trade_date (inclusive)")
    b.add_argument("--until", type=date.fromisoformat, help="last trade_date (inclusive)")
    b.add_argument("--run-id")

    s = sub.add_parser("stream", help="Kafka realtime topic → processed/realtime windows")
    s.add_argument("--topic", help="default: settings.kafka.realtime_topic")
    s.add_argument("--trigger", choices=("availableNow", "processingTime"), default="availableNow")
    s.add_argument("--interval", default="1 minute", help="processingTime trigger interval")
    s.add_argument("--watermark", default="10 minutes", help="allowed event-time lateness")
    s.add_argument("--max-offsets-per-trigger", type=int)
    s.add_argument("--starting-offsets", default="earliest")
    s.add_argument("--output", help="processed realtime URI")
    s.add_argument("--quarantine", help="quarantine realtime URI")
    s.add_argument("--checkpoint", help="checkpoint root URI (two queries below it)")
    s.add_argument("--timeout-s", type=float, help="stop after this many seconds")
    s.add_argument("--run-id")

    r = sub.add_parser("recompute", help="raw/realtime → window metrics (backfill)")
    r.add_argument("--input", help="raw realtime URI")
    r.add_argument("--output", help="output URI (default processed/realtime_recompute)")
    r.add_argument("--since", type=date.fromisoformat)
    r.add_argument("--until", type=date.fromisoformat)
    r.add_argument("--run-id")

    bench = sub.add_parser("bench", help="Spark vs DuckDB batch + streaming throughput")
    bench.add_argument("--years", type=int, default=10)
    bench.add_argument("--symbols", type=int, default=500)
    bench.add_argument("--ticks", type=int, default=1_000_000)
    bench.add_argument("--work-dir", help="scratch directory (default: a temp dir)")
    bench.add_argument("--results-dir", help="default: <repo>/benchmarks/results")
    return p


def _settings(args: argparse.Namespace) -> MarketSettings:
    settings = load_settings()
    if args.master:
        settings = settings.model_copy(
            update={"spark": settings.spark.model_copy(update={"master": args.master})}
        )
    return settings


def run(args: argparse.Namespace, settings: MarketSettings) -> str:
    """Execute one parsed command; return the summary JSON."""
    if args.command == "bench":
        from market_spark import bench

        return bench.main(
            settings,
            years=args.years,
            symbols=args.symbols,
            ticks=args.ticks,
            work_dir=args.work_dir,
            results_dir=args.results_dir,
        ).to_json()

    from market_spark.session import build_session

    spark = build_session(settings, app_name=f"market-spark-{args.command}")
    if args.command == "batch":
        from market_spark.batch import run_batch

        return run_batch(
            settings,
            spark=spark,
            input_uri=args.input,
            output_uri=args.output,
            quarantine_uri=args.quarantine,
            since=args.since,
            until=args.until,
            run_id=args.run_id,
        ).to_json()
    if args.command == "stream":
        from market_spark.stream import StreamPaths, run_stream

        default = StreamPaths.from_settings(settings)
        paths = StreamPaths(
            output=args.output or default.output,
            quarantine=args.quarantine or default.quarantine,
            checkpoint=args.checkpoint or default.checkpoint,
        )
        return run_stream(
            settings,
            spark=spark,
            topic=args.topic,
            trigger=args.trigger,
            interval=args.interval,
            watermark=args.watermark,
            max_offsets_per_trigger=args.max_offsets_per_trigger,
            starting_offsets=args.starting_offsets,
            paths=paths,
            run_id=args.run_id,
            timeout_s=args.timeout_s,
        ).to_json()
    from market_spark.recompute import run_recompute

    return run_recompute(
        settings,
        spark=spark,
        input_uri=args.input,
        output_uri=args.output,
        since=args.since,
        until=args.until,
        run_id=args.run_id,
    ).to_json()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)
    try:
        print(run(args, settings))
    except SparkJobError as exc:
        log.error("%s failed: %s", args.command, exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
