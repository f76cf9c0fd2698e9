"""``market-dbt``: build, export docs, or run slim CI for a pull request.

``market-dbt build`` forwards every option it does not know itself to ``dbt build``
(``market-dbt build --select +mart_stock_performance --fail-fast``), and streams dbt's
per-node lines as dbt writes them (``--quiet`` for none, ``--json`` for one JSON summary
on stdout). Exit codes are ``market_common.exitcodes.ExitCode``: 0 ok, 1 a model or the
run failed, 2 usage (unknown ``market-dbt`` option, bad value), 6 only data tests failed.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from market_common.exitcodes import ExitCode
from market_common.settings import MarketSettings, load_settings
from market_dbt.docs import export_docs
from market_dbt.errors import DbtError, DbtRunError
from market_dbt.runner import DbtRunner
from market_dbt.slim_ci import run_slim_ci

# Options not declared below are dbt's: keep them (and their values) for dbt.
PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

app = typer.Typer(
    help=(
        "Run the platform's dbt project. Unknown options after a command go to dbt. Exit "
        "codes: 0 ok, 1 failed, 2 usage, 6 only data tests failed."
    ),
    no_args_is_help=True,
)

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Do not stream dbt's output.")]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON summary on stdout (implies --quiet)."),
]


def _settings(ctx: typer.Context) -> MarketSettings:
    settings: MarketSettings = ctx.obj
    return settings


@app.callback()
def _root(
    ctx: typer.Context,
    target: Annotated[
        str | None, typer.Option(help="dbt target (default: MARKET_DBT__TARGET or local).")
    ] = None,
) -> None:
    settings = load_settings()
    if target:
        settings.dbt.target = target
    ctx.obj = settings


def _echo_line(quiet: bool) -> Callable[[str], None] | None:
    return None if quiet else typer.echo


def _exit_for(error: DbtError) -> ExitCode:
    """QUALITY when every failure is a data test that ran and failed, else FAILED."""
    failures = error.failures if isinstance(error, DbtRunError) else []
    tests_only = all(
        f.unique_id.startswith(("test.", "unit_test.")) and f.status == "fail" for f in failures
    )
    return ExitCode.QUALITY if failures and tests_only else ExitCode.FAILED


def _fail(error: DbtError) -> typer.Exit:
    typer.echo(str(error), err=True)
    return typer.Exit(int(_exit_for(error)))


@app.command(context_settings=PASSTHROUGH)
def build(ctx: typer.Context, quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """``dbt build`` with every extra option forwarded (``--select``, ``--exclude``, …)."""
    dbt_args = [a for a in ctx.args if a != "--"]  # `market-dbt build -- --select x` too
    try:
        runner = DbtRunner.from_settings(_settings(ctx))
        result = runner.invoke("build", *dbt_args, on_line=_echo_line(quiet or as_json))
    except DbtError as error:
        raise _fail(error) from error
    statuses = Counter(r["status"] for r in result.results)
    if as_json:
        summary = {"command": "build", "args": dbt_args, "nodes": len(result.results)}
        typer.echo(json.dumps({**summary, "statuses": dict(sorted(statuses.items()))}))
    else:
        typer.echo(f"built {len(result.results)} nodes", err=True)


@app.command("docs-export")
def docs_export(
    ctx: typer.Context,
    generate: Annotated[bool, typer.Option(help="Run `dbt docs generate` first.")] = False,
    manifest: Annotated[
        Path | None, typer.Option(help="Default: <project>/target/manifest.json.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON.")] = Path("dbt_docs.json"),
    quiet: QuietOpt = False,
) -> None:
    """Model and column descriptions as JSON (for the report and the docs site)."""
    try:
        runner = DbtRunner.from_settings(_settings(ctx))
        if generate:
            runner.invoke("docs", "generate", on_line=_echo_line(quiet))
        docs = export_docs(manifest or runner.project.target_dir / "manifest.json", out)
    except DbtError as error:
        raise _fail(error) from error
    typer.echo(f"wrote {len(docs['models'])} models to {out}")


@app.command("slim-ci")
def slim_ci(
    ctx: typer.Context,
    state: Annotated[Path, typer.Option(help="Directory with the prod manifest.json.")],
    pr: Annotated[int, typer.Option(help="Pull request number.")],
    keep_schema: Annotated[bool, typer.Option(help="Skip the final drop.")] = False,
) -> None:
    """Build state:modified+ into PR_<n>, then drop it."""
    try:
        runner = DbtRunner.from_settings(_settings(ctx))
        slim = run_slim_ci(runner, state_dir=state, pr_number=pr, keep_schema=keep_schema)
    except DbtError as error:
        raise _fail(error) from error
    typer.echo(f"{slim.schema}: built {', '.join(slim.built_nodes) or 'nothing'}")


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: run the app on ``argv`` (default ``sys.argv[1:]``), return its code."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="market-dbt")
    except SystemExit as exc:
        if exc.code is None:
            return int(ExitCode.OK)
        return exc.code if isinstance(exc.code, int) else int(ExitCode.FAILED)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
