"""``market-ingest``: backfill, stream and consume from the command line (benchmarks: ``market-bench``).

Exit codes (``market_common.exitcodes.ExitCode``, README "Exit codes"): 0 ok (also: the
idempotency key was already produced, nothing sent); 1 records not delivered / dead letters
not acknowledged, source data unusable, raw zone or run ledger unwritable/unreadable; 2 usage
(bad option, unknown symbol, missing replay input); 4 source unreachable (e.g. Yahoo, after
retries); 5 every record was dead-lettered (the top reasons and their fix are printed); 130 interrupted by SIGINT/SIGTERM (after a clean flush and close; the shell's
128 + SIGINT, outside the table because the signal decided it, not the run).
"""

from __future__ import annotations

import json
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from market_common.exitcodes import ExitCode
from market_common.logging import configure_logging
from market_common.settings import MarketSettings, load_settings
from market_ingest.errors import IngestError, ReplayInputError, SourceUnavailableError
from market_ingest.universe import InvalidSymbolError, benchmark_universe

if TYPE_CHECKING:
    from market_ingest.producer import ProduceResult
    from market_ingest.sources import Source

app = typer.Typer(
    help=(
        "Market-data ingestion: backfill, stream, consume. Exit codes: 0 ok, "
        "1 failed (records/dead letters not acknowledged, bad source data, ledger), 2 usage, "
        "4 source unreachable, 130 interrupted."
    ),
    no_args_is_help=True,
)
console = Console(stderr=True)
# 128 + SIGINT: what a shell reports for a process stopped by Ctrl-C (not in ExitCode: the
# signal decided it, not the run).
INTERRUPTED = 128 + int(signal.SIGINT)


def exit_code_for(exc: Exception) -> ExitCode:
    """The exit code of a command that failed with ``exc`` before producing anything."""
    if isinstance(exc, SourceUnavailableError):
        return ExitCode.UNAVAILABLE
    if isinstance(exc, ReplayInputError | InvalidSymbolError) or not isinstance(exc, IngestError):
        return ExitCode.USAGE  # what the command line named is wrong (ValueError: a bad value)
    return ExitCode.FAILED


SymbolsOpt = Annotated[
    str | None,
    typer.Option(help="Comma-separated tickers (default: MARKET_SYMBOLS / settings.symbols)."),
]
UniverseOpt = Annotated[
    int | None,
    typer.Option(help="Use a deterministic synthetic universe of N symbols instead (e.g. 500)."),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        help="synthetic | yfinance | replay | alphavantage (key: MARKET_ALPHAVANTAGE_API_KEY; "
        "default: MARKET_SOURCE, else synthetic)."
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the synthetic source.")]
TopicOpt = Annotated[str | None, typer.Option(help="Override the target topic.")]
IdempotencyKeyOpt = Annotated[
    str | None,
    typer.Option(
        help="Produce at most once per key: if a run with this key completed (every record "
        "acknowledged), print its recorded summary and send nothing. Ledger under "
        "s3://<bucket>/<checkpoint_prefix>/ingest-ledger/."
    ),
]
ReplayOpt = Annotated[
    list[Path] | None,
    typer.Option("--replay-path", help="CSV/Parquet file or directory for --source replay."),
]


def _settings() -> MarketSettings:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _symbols(
    settings: MarketSettings, symbols: str | None, universe: int | None, src: Source
) -> list[str]:
    """--universe, else --symbols, else the replay files' own tickers, else settings.symbols.

    A replay of the user's own files must not dead-letter every row of tickers that are
    not in the default list: without --symbols its universe is what the files hold.
    """
    if universe:
        return benchmark_universe(universe)
    chosen = [s for s in (symbols or "").split(",") if s.strip()]
    if chosen:
        return chosen
    from market_ingest.sources.replay import ReplaySource

    if isinstance(src, ReplaySource):
        return src.symbols() or list(settings.symbols)
    return list(settings.symbols)


def _source(
    settings: MarketSettings, name: str | None, seed: int, replay: list[Path] | None
) -> Source:
    from market_ingest.sources import make_source

    return make_source(
        name or settings.source, seed=seed, replay_paths=replay or [], calendar=settings.calendar
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    )


def _report_ledger_hit(result: ProduceResult) -> None:
    if result.already_produced:
        console.print(
            f"[green]idempotency key {result.idempotency_key!r} already produced "
            f"({result.ledger}): nothing sent, recorded summary below"
        )


def _finish(summary: dict[str, object], *, ok: bool, interrupted: bool = False) -> None:
    typer.echo(json.dumps(summary, default=str))
    if interrupted:
        raise typer.Exit(INTERRUPTED)
    if not ok:
        raise typer.Exit(int(ExitCode.FAILED))


def _finish_produce(result: ProduceResult) -> None:
    """The summary line, then REJECTED when every record went to the DLQ (with the fix)."""
    from market_ingest.rejections import AllRecordsRejectedError, check_not_all_rejected

    try:
        check_not_all_rejected(
            result.kind,
            records=result.records,
            dead_lettered=result.dead_lettered,
            reasons=result.reasons,
        )
    except AllRecordsRejectedError as exc:
        typer.echo(json.dumps(result.summary(), default=str))
        console.print(f"[red]{exc}")
        raise typer.Exit(int(ExitCode.REJECTED)) from exc
    _finish(result.summary(), ok=result.ok, interrupted=result.interrupted)


@app.command()
def backfill(
    years: Annotated[float, typer.Option(help="Years of history ending at --end.")] = 1.0,
    start: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day (overrides --years).")
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day (default: last completed NYSE session)."),
    ] = None,
    symbols: SymbolsOpt = None,
    universe: UniverseOpt = None,
    source: SourceOpt = None,
    seed: SeedOpt = 42,
    topic: TopicOpt = None,
    replay_path: ReplayOpt = None,
    idempotency_key: IdempotencyKeyOpt = None,
) -> None:
    """Produce daily bars for the universe to the batch topic (with a progress bar)."""
    from market_ingest.producer import backfill as run_backfill
    from market_ingest.shutdown import stop_on_signals

    settings = _settings()
    try:
        src = _source(settings, source, seed, replay_path)
        syms = _symbols(settings, symbols, universe, src)
        with stop_on_signals() as stop, _progress() as bar:
            task = bar.add_task(f"backfill {src.name}", total=None, rate="")

            def advance(n: int) -> None:
                bar.advance(task, n)
                t = bar.tasks[task]
                bar.update(task, rate=f"{(t.completed / t.elapsed if t.elapsed else 0):,.0f} rec/s")

            result = run_backfill(
                settings,
                years=years,
                start=start.date() if start else None,
                end=end.date() if end else None,
                symbols=syms,
                source=src,
                topic=topic,
                stop=stop,
                progress=advance,
                on_total=lambda n: bar.update(task, total=n),
                idempotency_key=idempotency_key,
            )
    except (IngestError, InvalidSymbolError, ValueError) as exc:
        console.print(f"[red]{type(exc).__name__}: {exc}")
        raise typer.Exit(exit_code_for(exc)) from exc
    _report_ledger_hit(result)
    if result.records == 0:
        console.print("[yellow]the source returned no records for this range")
    _finish_produce(result)


@app.command()
def stream(
    session_minutes: Annotated[int, typer.Option(help="Length of the session to emit.")] = 390,
    clock: Annotated[
        str,
        typer.Option(help="simulated (replay the last session at full speed) | wall (real time)."),
    ] = "simulated",
    symbols: SymbolsOpt = None,
    universe: UniverseOpt = None,
    source: SourceOpt = None,
    seed: SeedOpt = 42,
    topic: TopicOpt = None,
    replay_path: ReplayOpt = None,
    idempotency_key: IdempotencyKeyOpt = None,
) -> None:
    """Produce realtime ticks to the realtime topic until the session ends or SIGTERM."""
    from market_ingest.producer import stream as run_stream
    from market_ingest.shutdown import stop_on_signals

    if clock not in {"simulated", "wall"}:
        raise typer.BadParameter("--clock must be simulated or wall")
    settings = _settings()
    try:
        src = _source(settings, source, seed, replay_path)
        syms = _symbols(settings, symbols, universe, src)
        with stop_on_signals() as stop:
            result = run_stream(
                settings,
                session_minutes=session_minutes,
                clock=clock,
                symbols=syms,
                source=src,
                topic=topic,
                stop=stop,
                idempotency_key=idempotency_key,
            )
    except (IngestError, InvalidSymbolError, ValueError) as exc:
        console.print(f"[red]{type(exc).__name__}: {exc}")
        raise typer.Exit(exit_code_for(exc)) from exc
    _report_ledger_hit(result)
    _finish_produce(result)


@app.command()
def consume(
    kind: Annotated[
        str, typer.Argument(help="batch (→ raw/historical) | realtime (→ raw/realtime).")
    ],
    until_caught_up: Annotated[
        bool, typer.Option(help="Stop once every assigned partition is at its end offset.")
    ] = False,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    max_messages: Annotated[
        int | None, typer.Option(help="Stop after reading this many messages.")
    ] = None,
    window_rows: Annotated[
        int | None, typer.Option(help="Offsets per raw object window (memory bound per partition).")
    ] = None,
    flush_seconds: Annotated[
        float, typer.Option(help="Also write the open window this often (freshness).")
    ] = 60.0,
    topic: TopicOpt = None,
    group: Annotated[str | None, typer.Option(help="Override the consumer group.")] = None,
) -> None:
    """Consume a topic into the raw zone (Parquet, Hive-partitioned), committing after writes."""
    from market_ingest.consumer import consume as run_consume
    from market_ingest.shutdown import stop_on_signals

    if kind not in {"batch", "realtime"}:
        raise typer.BadParameter("kind must be batch or realtime")
    settings = _settings()
    with stop_on_signals() as stop:
        result = run_consume(
            settings,
            kind,  # type: ignore[arg-type]
            until_caught_up=until_caught_up,
            max_seconds=max_seconds,
            max_messages=max_messages,
            stop=stop,
            topic=topic,
            group=group,
            window_rows=window_rows,
            flush_seconds=flush_seconds,
        )
    summary = {k: v for k, v in vars(result).items() if k != "keys"}
    summary["messages_per_s"] = round(result.messages_per_s, 1)
    _finish(summary, ok=result.ok, interrupted=result.stopped_by == "signal")
