"""``market-devstack up | down | status | logs [service]``.

Exit codes (``market_common.exitcodes.ExitCode``, README "Exit codes"): 0 ok; 1 the stack
failed (a service did not start or stop, binaries could not be built, a required tool is
missing); 2 usage (e.g. an unknown service name); 4 ``status``: a service is not healthy, or
a port is taken by a process the stack did not start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from market_common.exitcodes import ExitCode
from market_devstack.errors import (
    DevStackError,
    PortInUseError,
    UnknownServiceError,
)

if TYPE_CHECKING:
    from market_common.settings import MarketSettings

app = typer.Typer(
    help="Embedded local stack: Kafka (KRaft), MinIO and fakesnow on 127.0.0.1 "
    "(opt-in: Airflow on PostgreSQL with `up --with airflow`, a Spark cluster with "
    "`--spark-workers N`, a Kafka cluster with `--kafka-brokers 3`).",
    no_args_is_help=True,
)
console = Console()

OnlyOption = Annotated[
    Optional[str],  # noqa: UP007 - typer needs Optional on 3.11
    typer.Option("--only", help="Comma-separated subset: kafka,minio,snowflake,spark."),
]
WithOption = Annotated[
    Optional[str],  # noqa: UP007 - typer needs Optional on 3.11
    typer.Option(
        "--with",
        help="Opt-in group(s) to start as well: airflow (PostgreSQL + Airflow api-server, "
        "scheduler, dag-processor, triggerer; UI on stack.airflow_port, default 8080).",
    ),
]


def _settings() -> MarketSettings:
    from market_common.settings import load_settings

    return load_settings()


def exit_code_for(exc: DevStackError) -> ExitCode:
    """What a failed command exits with (the shared table)."""
    if isinstance(exc, UnknownServiceError):
        return ExitCode.USAGE  # fix the command line
    if isinstance(exc, PortInUseError):
        return ExitCode.UNAVAILABLE  # the endpoint is someone else's: not reachable for us
    return ExitCode.FAILED


def _fail(exc: DevStackError) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=exit_code_for(exc))


def _table(info: object) -> Table:
    from market_devstack.stack import StackInfo

    assert isinstance(info, StackInfo)
    table = Table(title=f"local stack ({info.state_dir})")
    for column in ("service", "state", "pid", "endpoints", "log"):
        table.add_column(column)
    for name, st in info.services.items():
        if st.healthy:
            state = "[green]healthy[/]"
        elif st.running:
            state = "[yellow]running, not healthy[/]"
        else:
            state = "[dim]stopped[/]"
        if st.reused:
            state += " (reused)"
        endpoints = "\n".join(f"{k}: {v}" for k, v in st.endpoints.items())
        table.add_row(name, state, str(st.pid or "-"), endpoints, str(st.log_path or ""))
    return table


def scaled_settings(
    settings: MarketSettings, *, kafka_brokers: int | None, spark_workers: int | None
) -> MarketSettings:
    """``settings`` with the opt-in cluster sizes of ``up`` (None keeps the settings' value).

    More than one broker also sets the replication the cluster is for
    (:func:`market_devstack.kafka.cluster_replication`: 3 copies, ``min.insync.replicas=2``).
    """
    from market_devstack.kafka import cluster_replication

    stack = settings.stack
    kafka = settings.kafka
    if kafka_brokers is not None:
        stack = stack.model_copy(update={"kafka_brokers": kafka_brokers})
        factor, min_isr = cluster_replication(kafka_brokers)
        kafka = kafka.model_copy(
            update={"replication_factor": factor, "min_insync_replicas": min_isr}
        )
    if spark_workers is not None:
        stack = stack.model_copy(update={"spark_workers": spark_workers})
    return settings.model_copy(update={"stack": stack, "kafka": kafka})


@app.command()
def up(
    only: OnlyOption = None,
    with_: WithOption = None,
    kafka_brokers: Annotated[
        Optional[int],  # noqa: UP007
        typer.Option(
            "--kafka-brokers",
            min=1,
            help="Run a KRaft cluster of N broker+controller nodes (RF 3, min ISR 2 for N>=3).",
        ),
    ] = None,
    spark_workers: Annotated[
        Optional[int],  # noqa: UP007
        typer.Option(
            "--spark-workers",
            min=0,
            help="Also run a Spark standalone master, N workers and the history server.",
        ),
    ] = None,
) -> None:
    """Start (or reuse) the services and wait until they are healthy."""
    from market_devstack import stack

    started = time.monotonic()
    try:
        settings = scaled_settings(
            _settings(), kafka_brokers=kafka_brokers, spark_workers=spark_workers
        )
        info = stack.ensure_up(settings, only=only, with_=with_, console=console)
    except DevStackError as exc:
        raise _fail(exc) from exc
    console.print(_table(info))
    console.print(
        f"ready in {time.monotonic() - started:.1f}s; credentials in "
        f"{info.state_dir / 'stack.env'} (read automatically by market_common settings)"
    )


@app.command()
def down(only: OnlyOption = None) -> None:
    """Stop the services this stack started (pid files); others are left alone."""
    from market_devstack import stack

    try:
        stopped = stack.down(_settings(), only=only, console=console)
    except DevStackError as exc:
        raise _fail(exc) from exc
    for name, was_running in stopped.items():
        console.print(f"{name}: {'stopped' if was_running else 'was not running'}")


@app.command()
def status(only: OnlyOption = None) -> None:
    """Show each service's process and health; exit 4 if any is not healthy."""
    from market_devstack import stack

    try:
        info = stack.status(_settings(), only=only)
    except DevStackError as exc:
        raise _fail(exc) from exc
    console.print(_table(info))
    if not info.healthy:
        raise typer.Exit(code=ExitCode.UNAVAILABLE)


@app.command()
def logs(
    service: Annotated[
        Optional[str],  # noqa: UP007
        typer.Argument(
            help="kafka, minio, snowflake, postgres, airflow-<process> or the group airflow; "
            "the core services and every started opt-in one if omitted."
        ),
    ] = None,
    lines: Annotated[int, typer.Option("-n", "--lines", help="Lines per log.")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing.")] = False,
) -> None:
    """Print the tail of the service logs in <state_dir>/logs/."""
    from market_devstack.service import tail
    from market_devstack.stack import (
        SERVICE_NAMES,
        make_services,
        normalise_services,
        started_optional,
    )

    settings = _settings()
    try:
        names = normalise_services(service, default=SERVICE_NAMES + started_optional(settings))
    except DevStackError as exc:
        raise _fail(exc) from exc
    # One log per process: a cluster's nodes each have their own (kafka-2, spark-worker-1, …).
    services = [s for n in names for s in make_services(n, settings, discover=True)]
    names = [s.name for s in services]
    paths: list[Path] = [s.log_path for s in services]
    for name, path in zip(names, paths, strict=True):
        console.rule(f"{name} — {path}")
        console.print(tail(path, lines), markup=False, highlight=False, soft_wrap=True)
    if follow:
        positions = {p: p.stat().st_size if p.exists() else 0 for p in paths}
        try:
            while True:
                for name, path in zip(names, paths, strict=True):
                    if not path.exists():
                        continue
                    with open(path, "rb") as handle:
                        handle.seek(positions[path])
                        chunk = handle.read()
                        positions[path] = handle.tell()
                    for line in chunk.decode(errors="replace").splitlines():
                        console.print(f"[dim]{name}[/] {line}", highlight=False, soft_wrap=True)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


def main() -> None:
    app()


def deprecated_alias() -> None:
    """``market-localstack``: the old script name, kept for one release (removed in 0.3)."""
    typer.echo("market-localstack is deprecated (removed in 0.3): use market-devstack", err=True)
    app(prog_name="market-devstack")


if __name__ == "__main__":
    main()
