"""``market-bench``: every benchmark of the platform, one command each, and the suite.

    market-bench all [--only spark --only loader]    # ./pants run benchmarks -- all
    market-bench report                              # rebuild REPORT.md from the results
    market-bench ingest | fuzz | spark | spark-s3a | loader | dbt | dags | pipeline | airflow
    market-bench scale [--only kafka --only spark]  # 3 brokers vs 1, 2 workers vs local[*]

The benchmarks live here, not in the product packages, so that no product distribution
depends on what only a benchmark needs (DuckDB, the dev stack, the suite's report). Each
command writes its result files into ``--results-dir`` (default ``benchmarks/results``);
``all`` runs each of them in a child process and builds the report. Exit codes are
``market_common.exitcodes.ExitCode``: 0 ok, 1 a benchmark failed, 2 usage, 4 a service was
unreachable, 6 the fuzz run found a disagreement between engines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from market_benchmarks import airflow, cold, scale, suite
from market_common.exitcodes import ExitCode
from market_common.settings import load_settings

app = typer.Typer(no_args_is_help=True, help=__doc__.split("\n\n")[0])
app.command("all")(suite.run_all)
app.command("report")(suite.report)
app.command("airflow")(airflow.main)
app.command("cold")(cold.main)
app.command("scale")(scale.scale)

ResultsDir = Annotated[Path, typer.Option(help="Where the result files are written.")]
RESULTS = Path("benchmarks/results")


@app.command()
def ingest(
    records: Annotated[
        int, typer.Option(help="Records to produce (the full benchmark uses 1,000,000).")
    ] = 1_000_000,
    symbols: Annotated[int, typer.Option(help="Size of the synthetic universe.")] = 500,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Output path without suffix (default: <repo>/benchmarks/results/ingest)."
        ),
    ] = None,
    skip_java: Annotated[
        bool, typer.Option(help="Skip Kafka's ProducerPerformance comparison.")
    ] = False,
    profile: Annotated[
        bool,
        typer.Option(
            help="Instead of the benchmark, profile producer and consumer (cProfile) into "
            "<repo>/benchmarks/results/ingest_profile.{json,md}."
        ),
    ] = False,
    profile_records: Annotated[
        int, typer.Option(help="Records for --profile (a run of a minute or two).")
    ] = 200_000,
) -> None:
    """Producer msgs/s vs kafka-producer-perf-test, and consumer → object store rows/s."""
    if profile:
        from market_benchmarks.ingest_profile import run_profile

        report = run_profile(
            load_settings(), records=profile_records, n_symbols=symbols, output=output
        )
        typer.echo(json.dumps({k: report[k] for k in ("date", "records", "kafka")}, indent=2))
        return
    from market_benchmarks.ingest import run_bench

    report = run_bench(
        load_settings(), records=records, n_symbols=symbols, output=output, skip_java=skip_java
    )
    typer.echo(json.dumps(report, indent=2, default=str))


@app.command()
def fuzz(
    messages: Annotated[int, typer.Option(help="Kafka values to generate and judge.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the generator (runs are repeatable).")] = 12,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Output path without suffix (default: <repo>/benchmarks/results/ingest_fuzz)."
        ),
    ] = None,
) -> None:
    """Fuzz the consumer's decoder against pydantic; exit 6 (QUALITY) on any disagreement."""
    from market_benchmarks.ingest import run_fuzz

    report = run_fuzz(messages=messages, seed=seed, output=output)
    typer.echo(json.dumps(report, indent=2, default=str))
    if report["disagreements"]:
        raise typer.Exit(int(ExitCode.QUALITY))


@app.command()
def spark(
    years: int = 10,
    symbols: int = 500,
    ticks: int = 1_000_000,
    work_dir: Annotated[str | None, typer.Option(help="Scratch dir (default: temp).")] = None,
    results_dir: Annotated[
        str | None, typer.Option(help="Default <repo>/benchmarks/results.")
    ] = None,
) -> None:
    """Spark vs DuckDB batch (local files) + streaming throughput."""
    from market_benchmarks import spark as benchmark

    result = benchmark.main(
        load_settings(), years=years, symbols=symbols, ticks=ticks,
        work_dir=work_dir, results_dir=results_dir,
    )  # fmt: skip
    typer.echo(result.to_json())


@app.command("spark-s3a")
def spark_s3a(
    years: int = 10,
    symbols: int = 500,
    results_dir: Annotated[
        str | None, typer.Option(help="Default <repo>/benchmarks/results.")
    ] = None,
) -> None:
    """Spark batch through S3A (layouts compared, full + incremental day) vs DuckDB, same bucket."""
    from market_benchmarks import spark_s3a as benchmark

    result = benchmark.main(load_settings(), years=years, symbols=symbols, results_dir=results_dir)
    typer.echo(result.to_json())


@app.command()
def loader(
    rows: Annotated[int, typer.Option(help="Rows loaded by the bulk loader.")] = 200_000,
    row_by_row_rows: Annotated[
        int, typer.Option(help="Rows merged one statement each (extrapolated per-row cost).")
    ] = 200,
    out_dir: Annotated[Path, typer.Option(help="Where warehouse.json/.md are written.")] = RESULTS,
) -> None:
    """Bulk loader vs the seed's row-by-row MERGE on the same warehouse (emulator locally)."""
    from market_benchmarks.loader import run_bench
    from market_loaders.errors import SnowflakeUnavailableError

    try:
        report = run_bench(
            load_settings(), rows=rows, row_by_row_rows=row_by_row_rows, out_dir=out_dir
        )
    except SnowflakeUnavailableError as exc:
        typer.echo(f"warehouse unreachable: {exc}", err=True)
        raise typer.Exit(int(ExitCode.UNAVAILABLE)) from exc
    typer.echo(json.dumps(report, indent=2, default=str))


@app.command()
def dbt(
    symbols: Annotated[int, typer.Option(help="Symbols in the generated history.")] = 500,
    days: Annotated[int, typer.Option(help="Trading days per symbol (2520 = 10 years).")] = 2520,
    results_dir: Annotated[
        Path, typer.Option(help="Where warehouse.json / warehouse.md are updated.")
    ] = RESULTS,
) -> None:
    """Time `dbt build` on ~1.26M daily rows loaded through the bulk loader."""
    from market_benchmarks.dbt import run_dbt_bench
    from market_pipeline.cli import setup_process

    setup_process(verbose=False)
    report = run_dbt_bench(load_settings(), symbols=symbols, days=days, out_dir=results_dir)
    typer.echo(
        f"{report['rows']:,} rows: load {report['load_seconds']} s, "
        f"dbt build {report['dbt_build_seconds']} s → {results_dir / 'warehouse.md'}"
    )


@app.command()
def dags(
    repeat: Annotated[int, typer.Option(help="Parses per DAG file.")] = 5,
    results_dir: Annotated[
        Path | None, typer.Option(help="Default <repo>/benchmarks/results.")
    ] = None,
) -> None:
    """Parse time of each DAG file with Airflow's DagBag (what the DAG processor pays)."""
    from market_benchmarks.dags import run

    typer.echo(json.dumps(run(repeat=repeat, results_dir=results_dir)))


@app.command()
def pipeline(
    years: Annotated[float, typer.Option(help="History per symbol, in years.")] = 2.0,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated tickers.")] = None,
    session_minutes: Annotated[int, typer.Option(help="Realtime session length.")] = 390,
    report_dir: Annotated[Path, typer.Option(help="Where the run's report goes.")] = Path("report"),
    results_dir: Annotated[
        Path, typer.Option(help="Where pipeline.json / pipeline.md are written.")
    ] = RESULTS,
) -> None:
    """Time a full command-1 run on fresh topics, prefixes and databases (a clean-clone run)."""
    from market_benchmarks.pipeline import run_bench
    from market_common.runtime import StepFailedError
    from market_pipeline.cli import run_options, setup_process
    from market_pipeline.run import PipelineError

    setup_process(verbose=False)
    options = run_options(years, symbols, "synthetic", session_minutes, report_dir, 42, False, True)
    try:
        record = run_bench(options, results_dir=results_dir)
    except (PipelineError, StepFailedError) as exc:
        typer.echo(f"benchmark run failed: {exc}", err=True)
        raise typer.Exit(int(ExitCode.FAILED)) from exc
    typer.echo(f"wall time {record['wall_time_s']} s → {results_dir / 'pipeline.md'}")


def main() -> None:
    """Console script and ``./pants run benchmarks`` entry point."""
    app(prog_name="market-bench")


if __name__ == "__main__":
    main()
