"""How every console script talks to a person and to a script at the same time.

People watch stderr: progress bars, tables and notes go there, drawn by rich (live on a
terminal; on a pipe rich prints only the final state, so logs stay short). Scripts read
stdout: a command's machine-readable result is a JSON object, the last thing on stdout
(with ``--json``: on one line, the form Airflow's runners parse). Two flags, the
same on every ``market-*`` command that runs a long step:

* ``--quiet`` / ``-q``: no progress and no notes (errors are still printed);
* ``--json``: the JSON summary on stdout and nothing else (implies ``--quiet``).

Commands that always printed their JSON summary (``market-ingest``, ``market-spark``) keep
doing so; for them ``--json`` only silences stderr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or notes on stderr (errors still are).")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON summary on stdout and nothing else.")
]


def stderr_console() -> Console:
    """The console people read: stderr, so stdout stays machine-readable."""
    return Console(stderr=True)


@dataclass(frozen=True)
class Output:
    """One command's output mode, built from its ``--quiet`` / ``--json`` flags."""

    quiet: bool = False
    as_json: bool = False
    console: Console = field(default_factory=stderr_console)

    @property
    def human(self) -> bool:
        """True when progress and notes are wanted (neither --quiet nor --json)."""
        return not (self.quiet or self.as_json)

    def progress(self, *columns: ProgressColumn | str) -> Progress:
        """A rich progress display on stderr, disabled (draws nothing) for scripts.

        Default columns: spinner, description, bar, ``done/total``, elapsed time, and a
        free-text ``detail`` field (``progress.update(task, detail="1,200 rec/s")``).
        """
        return Progress(
            *(columns or default_columns()),
            console=self.console,
            disable=not self.human,
        )

    def note(self, message: str) -> None:
        """A line for people (rich markup allowed); nothing for scripts."""
        if self.human:
            self.console.print(message)

    def error(self, message: str) -> None:
        """A line that always reaches stderr, whatever the flags."""
        self.console.print(message)

    def emit(self, summary: dict[str, Any]) -> None:
        """The result for scripts: one JSON object on one stdout line."""
        typer.echo(json.dumps(summary, default=str))


def default_columns() -> tuple[ProgressColumn | str, ...]:
    return (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
