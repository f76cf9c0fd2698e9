"""An :class:`~market_pipeline.inspector.Inspection` as tables: one definition of the rows,
drawn by rich in the terminal (``market-pipeline inspect``) and by the HTML report.

Tables belong to one of two report sections: ``quality`` (dbt tests, dead letters and
quarantine by reason: what was rejected and why) and ``inspector`` (topics and lag, lake
prefixes, warehouse tables and freshness: where the data is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table

from market_pipeline.inspector import Inspection

Section = Literal["quality", "inspector"]


@dataclass(frozen=True)
class ViewTable:
    section: Section
    title: str
    header: list[str]
    rows: list[list[str]]
    empty: str  # what an empty table means, said instead of an empty grid


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _dbt_tables(inspection: Inspection) -> list[ViewTable]:
    dbt = inspection.dbt
    where = f" ({dbt.command}, {dbt.generated_at})" if dbt.ran else ""
    return [
        ViewTable(
            "quality",
            f"dbt tests{where}",
            ["Status", "Tests"],
            [[status, f"{n:,}"] for status, n in dbt.statuses.items()],
            "no dbt build or test has run in this project yet",
        ),
        ViewTable(
            "quality",
            "dbt tests not passing",
            ["Test", "Status", "Message"],
            [[f["test"], f["status"], f["message"]] for f in dbt.failures],
            "every test passed" if dbt.ran else "no test results",
        ),
    ]


def tables(inspection: Inspection) -> list[ViewTable]:
    """Every table of the inspection, quality ones first."""
    quarantine = [
        [stream, r.reason, f"{r.count:,}", r.sample]
        for stream, reasons in inspection.quarantine.items()
        for r in reasons
    ]
    return [
        *_dbt_tables(inspection),
        ViewTable(
            "quality",
            f"Dead letters by reason ({inspection.dlq_read:,} read)",
            ["Reason", "Records", "Sample"],
            [[r.reason, f"{r.count:,}", r.sample] for r in inspection.dlq],
            "the dead-letter topic is empty",
        ),
        ViewTable(
            "quality",
            "Quarantined rows by reason",
            ["Stream", "Reason", "Rows", "Sample"],
            quarantine,
            "nothing is quarantined",
        ),
        ViewTable(
            "inspector",
            "Kafka topics",
            ["Topic", "Partitions", "Messages", "End offset", "Consumer group", "Lag"],
            [
                [t.topic, str(t.partitions), f"{t.messages:,}", f"{t.end_offset:,}",
                 ", ".join(t.lag) or "-", ", ".join(f"{n:,}" for n in t.lag.values()) or "-"]
                for t in inspection.topics
            ],  # fmt: skip
            "no topic could be read",
        ),
        ViewTable(
            "inspector",
            "Lake prefixes",
            ["Prefix", "Objects", "Size"],
            [[p.prefix, f"{p.objects:,}", human_bytes(p.bytes)] for p in inspection.lake],
            "the bucket could not be listed",
        ),
        ViewTable(
            "inspector",
            "Warehouse tables",
            ["Table", "Rows", "Freshness column", "Latest", "Age (h)", "Data source"],
            [
                [t.relation, "absent" if t.rows is None else f"{t.rows:,}", t.freshness_column,
                 t.latest or "-", "-" if t.age_hours is None else f"{t.age_hours:,.1f}",
                 ", ".join(t.sources) or "-"]
                for t in inspection.warehouse
            ],  # fmt: skip
            "the warehouse could not be read",
        ),
    ]


def print_inspection(inspection: Inspection, console: Console) -> None:
    """Every table, drawn by rich (an empty one says what that means)."""
    console.print(f"[bold]Pipeline inspection[/bold] {inspection.generated_at}")
    for view in tables(inspection):
        if not view.rows:
            console.print(f"[bold]{view.title}[/bold]: [dim]{view.empty}[/dim]")
            continue
        table = Table(title=view.title, title_justify="left")
        for name in view.header:
            table.add_column(name, overflow="fold")
        for row in view.rows:
            table.add_row(*row)
        console.print(table)
