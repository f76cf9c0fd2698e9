"""``market-spark`` command line; also a ``spark-submit`` entry file.

    market-spark batch [--full | --since D --until D]
    market-spark stream [--trigger availableNow|processingTime] [--topic T]
    market-spark recompute [--since D] [--until D]
    spark-submit --packages <coords> packages/spark/src/market_spark/cli.py batch

Each command prints its run summary as JSON on stdout. Exit codes
(``market_common.exitcodes.ExitCode``): 0 ok; 1 the job failed (message on stderr);
2 usage only (unknown option, bad date); 4 a service was unreachable (Maven Central/Ivy for
the connector jars, the object store, Kafka).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any, Literal

import typer

from market_common.exitcodes import ExitCode
from market_common.logging import configure_logging, get_logger
from market_common.settings import MarketSettings, load_settings
from market_spark.errors import PackageResolutionError, SparkJobError

log = get_logger("market_spark.cli")

app = typer.Typer(no_args_is_help=True, help=__doc__.split("\n")[0])

# Substrings of JVM errors that mean "could not reach the service", not "the job is wrong".
_UNREACHABLE = (
    "java.net.ConnectException",
    "java.net.UnknownHostException",
    "Connection refused",
    "Unable to execute HTTP request",
    "TimeoutException: Timed out waiting for a node assignment",
)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from exc


Since = Annotated[str | None, typer.Option(help="First trade date (inclusive), YYYY-MM-DD.")]
Until = Annotated[str | None, typer.Option(help="Last trade date (inclusive), YYYY-MM-DD.")]
RunId = Annotated[str | None, typer.Option("--run-id", help="Run id (default: generated).")]
Uri = Annotated[str | None, typer.Option()]


@app.callback()
def _root(
    ctx: typer.Context,
    master: Annotated[
        str | None, typer.Option(help="Spark master URL (default: settings.spark.master).")
    ] = None,
) -> None:
    settings = load_settings()
    if master:
        settings = settings.model_copy(
            update={"spark": settings.spark.model_copy(update={"master": master})}
        )
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


def _run(ctx: typer.Context, command: str, job: Callable[[MarketSettings, Any], str]) -> None:
    """Start the session, run ``job``, print its JSON; map failures to exit codes."""
    settings: MarketSettings = ctx.obj
    try:
        from market_spark.session import build_session

        spark = build_session(settings, app_name=f"market-spark-{command}")
        print(job(settings, spark))
    except PackageResolutionError as exc:
        log.error("%s could not start: %s", command, exc)
        raise typer.Exit(ExitCode.UNAVAILABLE) from exc
    except SparkJobError as exc:
        log.error("%s failed: %s", command, exc)
        raise typer.Exit(ExitCode.FAILED) from exc
    except Exception as exc:
        if any(marker in str(exc) for marker in _UNREACHABLE):
            log.error("%s: a service is unreachable: %s", command, str(exc)[:500])
            raise typer.Exit(ExitCode.UNAVAILABLE) from exc
        raise


@app.command()
def batch(
    ctx: typer.Context,
    input: Annotated[str | None, typer.Option("--input", help="Raw historical URI.")] = None,
    output: Annotated[str | None, typer.Option(help="Processed historical URI.")] = None,
    quarantine: Annotated[str | None, typer.Option(help="Quarantine URI.")] = None,
    since: Since = None,
    until: Until = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild the whole table (default: incremental).")
    ] = False,
    run_id: RunId = None,
) -> None:
    """raw/historical → processed/historical (Delta): only trade dates whose raw input changed."""
    first, last = _date(since), _date(until)
    if full and (first or last):
        raise typer.BadParameter("--full rebuilds everything; drop --since/--until")

    def job(settings: MarketSettings, spark: Any) -> str:
        from market_spark.batch import run_batch

        return run_batch(
            settings, spark=spark, input_uri=input, output_uri=output,
            quarantine_uri=quarantine, since=first, until=last, full=full, run_id=run_id,
        ).to_json()  # fmt: skip

    _run(ctx, "batch", job)


@app.command()
def stream(
    ctx: typer.Context,
    topic: Annotated[
        str | None, typer.Option(help="Default: settings.kafka.realtime_topic.")
    ] = None,
    trigger: Annotated[str, typer.Option(help="availableNow or processingTime.")] = "availableNow",
    interval: Annotated[str, typer.Option(help="processingTime trigger interval.")] = "1 minute",
    watermark: Annotated[str, typer.Option(help="Allowed event-time lateness.")] = "10 minutes",
    max_offsets_per_trigger: Annotated[int | None, typer.Option()] = None,
    starting_offsets: Annotated[str, typer.Option()] = "earliest",
    output: Annotated[str | None, typer.Option(help="Processed realtime URI.")] = None,
    quarantine: Annotated[str | None, typer.Option(help="Quarantine realtime URI.")] = None,
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint root URI.")] = None,
    timeout_s: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    run_id: RunId = None,
) -> None:
    """Kafka realtime topic → processed/realtime windows."""
    if trigger not in ("availableNow", "processingTime"):
        raise typer.BadParameter("--trigger must be availableNow or processingTime")
    mode: Literal["availableNow", "processingTime"] = (
        "availableNow" if trigger == "availableNow" else "processingTime"
    )

    def job(settings: MarketSettings, spark: Any) -> str:
        from market_spark.stream import StreamPaths, run_stream

        default = StreamPaths.from_settings(settings)
        paths = StreamPaths(
            output=output or default.output,
            quarantine=quarantine or default.quarantine,
            checkpoint=checkpoint or default.checkpoint,
        )
        return run_stream(
            settings, spark=spark, topic=topic, trigger=mode, interval=interval,
            watermark=watermark, max_offsets_per_trigger=max_offsets_per_trigger,
            starting_offsets=starting_offsets, paths=paths, run_id=run_id, timeout_s=timeout_s,
        ).to_json()  # fmt: skip

    _run(ctx, "stream", job)


@app.command()
def recompute(
    ctx: typer.Context,
    input: Annotated[str | None, typer.Option("--input", help="Raw realtime URI.")] = None,
    output: Annotated[
        str | None, typer.Option(help="Default processed/realtime_recompute.")
    ] = None,
    since: Since = None,
    until: Until = None,
    full: Annotated[
        bool, typer.Option("--full", help="Recompute every date (default: incremental).")
    ] = False,
    run_id: RunId = None,
) -> None:
    """raw/realtime → window metrics: the dates whose raw ticks changed (or a range, or all)."""
    first, last = _date(since), _date(until)
    if full and (first or last):
        raise typer.BadParameter("--full recomputes everything; drop --since/--until")

    def job(settings: MarketSettings, spark: Any) -> str:
        from market_spark.recompute import run_recompute

        return run_recompute(
            settings, spark=spark, input_uri=input, output_uri=output,
            since=first, until=last, full=full, run_id=run_id,
        ).to_json()  # fmt: skip

    _run(ctx, "recompute", job)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry: run the typer app and return its exit code (for ``sys.exit``)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="market-spark")
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else int(ExitCode.FAILED)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
