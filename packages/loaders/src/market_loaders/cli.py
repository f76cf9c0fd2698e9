"""``market-load historical|realtime [--full-refresh] [--prefix …]`` (benchmark: ``market-bench loader``).

Exit codes (``market_common.exitcodes.ExitCode``, README "Exit codes"): 0 ok, 1 load failed,
2 usage, 3 credentials/privileges rejected, 4 warehouse unreachable after retries, 5 loaded
but some files were rejected (see the summary).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from market_common.exitcodes import ExitCode
from market_common.logging import configure_logging
from market_common.settings import MarketSettings, load_settings
from market_loaders.datasets import DATASETS
from market_loaders.errors import LoaderError, SnowflakeAuthError, SnowflakeUnavailableError
from market_loaders.loader import LoadResult, load_dataset

app = typer.Typer(no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

FullRefresh = Annotated[
    bool, typer.Option("--full-refresh", help="Ignore the load audit and re-merge every file.")
]
Prefix = Annotated[
    str | None,
    typer.Option(help="Only keys under <processed>/<dataset>/<prefix>, e.g. date=2024-05."),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


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


def run_load(
    dataset_name: str,
    *,
    full_refresh: bool,
    prefix: str | None,
    as_json: bool,
    settings: MarketSettings | None = None,
    **load_kwargs: Any,
) -> int:
    """Run one load and map its outcome to an exit code (tests call this with collaborators)."""
    settings = settings or load_settings()
    try:
        result = load_dataset(
            DATASETS[dataset_name],
            settings,
            full_refresh=full_refresh,
            prefix=prefix,
            **load_kwargs,
        )
    except SnowflakeAuthError as exc:
        console.print(f"[red]authentication/permission error:[/red] {exc}")
        return ExitCode.AUTH
    except SnowflakeUnavailableError as exc:
        console.print(f"[red]warehouse unreachable:[/red] {exc}")
        return ExitCode.UNAVAILABLE
    except LoaderError as exc:
        console.print(f"[red]load failed:[/red] {exc}")
        return ExitCode.FAILED
    console.print(summary_table(result))
    for rejected in result.files_rejected:
        console.print(f"[yellow]rejected[/yellow] {rejected.key}: {rejected.reason}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
    return ExitCode.REJECTED if result.files_rejected else ExitCode.OK


@app.callback()
def _main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)


@app.command()
def historical(
    full_refresh: FullRefresh = False, prefix: Prefix = None, as_json: JsonOut = False
) -> None:
    """Load processed/historical into the daily metrics table."""
    raise typer.Exit(
        run_load("historical", full_refresh=full_refresh, prefix=prefix, as_json=as_json)
    )


@app.command()
def realtime(
    full_refresh: FullRefresh = False, prefix: Prefix = None, as_json: JsonOut = False
) -> None:
    """Load the committed files of processed/realtime into the realtime analytics table."""
    raise typer.Exit(
        run_load("realtime", full_refresh=full_refresh, prefix=prefix, as_json=as_json)
    )


if __name__ == "__main__":
    app()
