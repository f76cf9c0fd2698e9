"""``market-load init``, ``market-load historical|realtime [--full-refresh] [--prefix …]`` (benchmark: ``market-bench loader``).

``init`` creates the databases, schemas and tables once, with an admin role (SYSADMIN in
infra/snowflake/roles.sql); the loads then need only the loader role's table privileges.

Exit codes (``market_common.exitcodes.ExitCode``, README "Exit codes"): 0 ok, 1 load failed,
2 usage, 3 credentials/privileges rejected, 4 warehouse unreachable after retries, 5 loaded
but some files were rejected (see the summary).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from market_common.console import JsonOpt, Output, QuietOpt
from market_common.exitcodes import ExitCode
from market_common.logging import configure_logging
from market_common.settings import MarketSettings, load_settings
from market_loaders.datasets import DATASETS
from market_loaders.errors import LoaderError, SnowflakeAuthError, SnowflakeUnavailableError
from market_loaders.loader import LoadResult, init_warehouse, load_dataset

app = typer.Typer(no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

FullRefresh = Annotated[
    bool, typer.Option("--full-refresh", help="Ignore the load audit and re-merge every file.")
]
Prefix = Annotated[
    str | None,
    typer.Option(help="Only keys under <processed>/<dataset>/<prefix>, e.g. date=2024-05."),
]


# What the progress line says in each phase of a load (market_loaders.loader.OnProgress).
PHASES = {"plan": "files planned", "stage": "files staged", "merge": "COPY + MERGE"}


def summary_table(result: LoadResult) -> Table:
    table = Table(title=f"market-load {result.dataset} → {result.target_table}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("run id", result.run_id),
        ("full refresh", result.full_refresh),
        ("files seen", result.files_seen),
        ("files uncommitted (ignored)", result.files_uncommitted),
        ("files skipped (unchanged)", result.files_skipped),
        ("files loaded", result.files_loaded),
        ("files rejected", len(result.files_rejected)),
        ("rows staged", result.rows_staged),
        ("rows rejected (no key)", result.rows_rejected),
        ("rows inserted", result.rows_inserted),
        ("rows updated", result.rows_updated),
        ("rows merged", result.rows_merged),
        ("duration (s)", f"{result.duration_s:.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def failure_code(exc: Exception, what: str) -> int:
    """Print why a warehouse command failed; its exit code (auth, unreachable, failed)."""
    if isinstance(exc, SnowflakeAuthError):
        console.print(f"[red]authentication/permission error:[/red] {exc}")
        return ExitCode.AUTH
    if isinstance(exc, SnowflakeUnavailableError):
        console.print(f"[red]warehouse unreachable:[/red] {exc}")
        return ExitCode.UNAVAILABLE
    console.print(f"[red]{what}:[/red] {exc}")
    return ExitCode.FAILED


def run_load(
    dataset_name: str,
    *,
    full_refresh: bool,
    prefix: str | None,
    as_json: bool,
    quiet: bool = False,
    settings: MarketSettings | None = None,
    **load_kwargs: Any,
) -> int:
    """Run one load and map its outcome to an exit code (tests call this with collaborators).

    Progress (files planned, staged, merged) and the summary table go to stderr unless
    ``quiet``; ``as_json`` prints the result as one JSON line on stdout and nothing else.
    """
    settings = settings or load_settings()
    out = Output(quiet=quiet, as_json=as_json, console=console)
    try:
        with out.progress() as bar:
            task = bar.add_task(f"load {dataset_name}", total=None, detail="discovering files")

            def show(phase: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, detail=PHASES.get(phase, phase))

            result = load_dataset(
                DATASETS[dataset_name],
                settings,
                full_refresh=full_refresh,
                prefix=prefix,
                on_progress=show,
                **load_kwargs,
            )
    except (LoaderError, SnowflakeAuthError, SnowflakeUnavailableError) as exc:
        return failure_code(exc, "load failed")
    if out.human:
        console.print(summary_table(result))
    if not as_json:  # with --json the rejected files are in the JSON
        for rejected in result.files_rejected:
            out.error(f"[yellow]rejected[/yellow] {rejected.key}: {rejected.reason}")
    else:
        out.emit(result.to_dict())
    return ExitCode.REJECTED if result.files_rejected else ExitCode.OK


@app.callback()
def _main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)


@app.command()
def init() -> None:
    """Create the databases, schemas and tables the loads write (admin role; idempotent)."""
    settings = load_settings()
    try:
        tables = init_warehouse(settings)
    except (LoaderError, SnowflakeAuthError, SnowflakeUnavailableError) as exc:
        raise typer.Exit(failure_code(exc, "init failed")) from exc
    for table in tables:
        console.print(f"ready: {table}")


@app.command()
def historical(
    full_refresh: FullRefresh = False,
    prefix: Prefix = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Load processed/historical into the daily metrics table."""
    raise typer.Exit(
        run_load(
            "historical", full_refresh=full_refresh, prefix=prefix, as_json=as_json, quiet=quiet
        )
    )


@app.command()
def realtime(
    full_refresh: FullRefresh = False,
    prefix: Prefix = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Load the committed files of processed/realtime into the realtime analytics table."""
    raise typer.Exit(
        run_load("realtime", full_refresh=full_refresh, prefix=prefix, as_json=as_json, quiet=quiet)
    )


if __name__ == "__main__":
    app()
