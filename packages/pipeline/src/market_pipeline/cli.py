"""``market-pipeline``: the whole platform on one machine with one command.

    market-pipeline run [--years 2] [--symbols AAPL,MSFT] [--source synthetic] ...
    market-pipeline run --source replay --replay-path bars.csv --replay-path ticks/
    market-pipeline report [--report-dir report]     # rebuild the report from the marts

Exit codes (``market_common.exitcodes.ExitCode``, README "Exit codes"): 0 ok; 1 a step failed (message names the
step and its log); 2 usage error; 5 every record of a produce step was dead-lettered (the
top reasons and their fix are printed); 6 data-quality failures (dbt tests failed; the
report is still written).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from market_common.exitcodes import ExitCode
from market_common.logging import configure_logging
from market_common.runtime import StepFailedError, python_path
from market_common.settings import load_settings

if TYPE_CHECKING:
    from market_pipeline.run import RunOptions

app = typer.Typer(
    help="Run the stock-market platform end to end locally and report on it.",
    no_args_is_help=True,
)
console = Console(stderr=True)

DEFAULT_YEARS = 2.0


Years = Annotated[
    float,
    typer.Option(
        min=0.25, help="Years of daily bars to backfill, ending at the last completed session."
    ),
]
Symbols = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated tickers (default: MARKET_SYMBOLS, else the 10 default tickers)."
    ),
]
Source = Annotated[
    str,
    typer.Option(
        help="Market-data source: synthetic (offline, seeded), yfinance (needs Yahoo) or "
        "replay (your CSV/Parquet files, --replay-path)."
    ),
]
ReplayPaths = Annotated[
    list[Path] | None,
    typer.Option(
        "--replay-path",
        help="With --source replay: a CSV/Parquet file or directory of daily bars "
        "(symbol,trade_date,open,high,low,close,volume) and/or ticks (symbol,ts,price,volume); "
        "repeatable. Without --symbols/--years the run covers the files' tickers and dates.",
    ),
]
SessionMinutes = Annotated[
    int,
    typer.Option(
        min=1,
        max=390,
        help="Length of the simulated realtime session (one tick per symbol per second).",
    ),
]
ReportDir = Annotated[
    Path, typer.Option(help="Directory for index.html, charts/, digest.txt, schema_context.json.")
]
Seed = Annotated[int, typer.Option(help="Seed of the synthetic source (same seed, same data).")]
SkipStack = Annotated[
    bool,
    typer.Option(
        "--skip-stack", help="Do not start the local stack; use the endpoints in MARKET_* settings."
    ),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Ignore the run state and redo every step (still idempotent)."),
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log INFO messages of every component.")
]


def setup_process(verbose: bool) -> None:
    """Logging and the children's PYTHONPATH for a command that runs pipeline steps."""
    configure_logging("INFO" if verbose else "WARNING")
    # Children started as `python -m <module>` (local stack services, dbt, Spark) must see
    # the modules this process sees, also when it runs from a PEX.
    os.environ["PYTHONPATH"] = python_path()
    if not verbose:
        # kafka-python warns about routine group rebalances of brand-new topics.
        logging.getLogger("kafka").setLevel(logging.ERROR)


def run_options(
    years: float | None, symbols: str | None, source: str, session_minutes: int,
    report_dir: Path, seed: int, skip_stack: bool, force: bool,
    replay_paths: list[Path] | None = None,
) -> RunOptions:  # fmt: skip
    """The options of ``run`` checked as the CLI checks them (also used by the pipeline benchmark)."""
    from market_ingest.universe import InvalidSymbolError, resolve_symbols
    from market_pipeline.run import RunOptions

    if source not in ("synthetic", "yfinance", "replay"):
        raise typer.BadParameter("choose synthetic, yfinance or replay", param_hint="--source")
    if bool(replay_paths) != (source == "replay"):
        raise typer.BadParameter(
            "--replay-path goes with --source replay (and replay needs one)",
            param_hint="--replay-path",
        )
    try:
        chosen = tuple(resolve_symbols(symbols.split(","))) if symbols else None
    except InvalidSymbolError as exc:
        raise typer.BadParameter(str(exc), param_hint="--symbols") from exc
    if source == "replay":
        chosen, years = _replay_defaults(replay_paths or [], chosen, years)
    return RunOptions(
        years=years if years is not None else DEFAULT_YEARS,
        symbols=chosen,
        source=source,  # type: ignore[arg-type]  # checked above
        session_minutes=session_minutes,
        report_dir=report_dir,
        seed=seed,
        skip_stack=skip_stack,
        force=force,
        replay_paths=tuple(replay_paths or ()),
    )


def _replay_defaults(
    paths: list[Path], symbols: tuple[str, ...] | None, years: float | None
) -> tuple[tuple[str, ...] | None, float | None]:
    """--symbols / --years, else the replay files' tickers and the years back to their first day."""
    from datetime import UTC, datetime

    from market_ingest.calendar import last_completed_session
    from market_ingest.errors import ReplayInputError
    from market_pipeline.replay import replay_plan

    try:
        plan = replay_plan(paths, end=last_completed_session(datetime.now(UTC)))
    except ReplayInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--replay-path") from exc
    return symbols or plan.symbols or None, years if years is not None else plan.years


@app.command()
def run(
    years: Annotated[
        float | None,
        typer.Option(
            min=0.25,
            help=f"Years of daily bars to backfill, ending at the last completed session "
            f"(default {DEFAULT_YEARS:g}; with --source replay: back to the files' first day).",
        ),
    ] = None,
    symbols: Symbols = None,
    source: Source = "synthetic",
    replay_path: ReplayPaths = None,
    session_minutes: SessionMinutes = 390,
    report_dir: ReportDir = Path("report"),
    seed: Seed = 42,
    skip_stack: SkipStack = False,
    force: Force = False,
    verbose: Verbose = False,
) -> None:
    """Stack → backfill + realtime session → raw → Spark → warehouse → dbt → report.

    Re-running is safe: steps whose inputs did not change are skipped (run state in
    <state_dir>/pipeline/run_state.json).
    """
    from market_ingest.rejections import AllRecordsRejectedError
    from market_pipeline.run import PipelineError, run_pipeline
    from market_pipeline.summary import print_summary

    setup_process(verbose)
    options = run_options(
        years, symbols, source, session_minutes, report_dir, seed, skip_stack, force, replay_path
    )
    try:
        result = run_pipeline(options, console=console)
    except (PipelineError, StepFailedError) as exc:
        console.print(f"[red]pipeline failed:[/red] {exc}")
        rejected = isinstance(exc.__cause__, AllRecordsRejectedError)
        raise typer.Exit(int(ExitCode.REJECTED if rejected else ExitCode.FAILED)) from exc
    print_summary(result, console)
    if not result.ok:
        console.print("[red]data-quality checks failed[/red] (see above); the report was written")
        raise typer.Exit(int(ExitCode.QUALITY))


@app.command()
def report(report_dir: ReportDir = Path("report")) -> None:
    """Rebuild the report directory from the marts already in the warehouse."""
    from market_common.clients import snowflake_connection
    from market_dbt.docs import model_docs
    from market_dbt.runner import DbtProject
    from market_pipeline.report import build_report

    setup_process(verbose=False)
    settings = load_settings()
    # schema_context.json from the last dbt invocation's manifest, when there is one.
    manifest = DbtProject.from_settings(settings).target_dir / "manifest.json"
    context = model_docs(json.loads(manifest.read_text())) if manifest.is_file() else None
    with snowflake_connection(settings) as conn:
        paths = build_report(
            conn, report_dir, database=settings.snowflake.batch_database, schema_context=context
        )
    console.print(f"report: {paths.index_html}\ndigest: {paths.digest}")


if __name__ == "__main__":
    app()
