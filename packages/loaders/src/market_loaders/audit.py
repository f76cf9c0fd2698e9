"""Incremental-by-file decisions: which objects to (re)load given the load audit.

The audit is append-only (one row per file per load), so it doubles as load history; the
decision looks at the latest row per object key. A file is loaded when it was never loaded,
when its ETag or size changed since, or on a full refresh; otherwise it is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from market_loaders.objects import ObjectInfo

Reason = Literal["new", "changed", "full-refresh"]


@dataclass(frozen=True)
class AuditRecord:
    """One row of ``LOAD_AUDIT``."""

    object_key: str
    etag: str | None
    size: int | None
    row_count: int | None
    loaded_at: datetime


@dataclass
class LoadPlan:
    to_load: list[tuple[ObjectInfo, Reason]] = field(default_factory=list)
    skipped: list[ObjectInfo] = field(default_factory=list)


def latest_by_key(records: Iterable[AuditRecord]) -> dict[str, AuditRecord]:
    """The most recent audit row of every object key."""
    latest: dict[str, AuditRecord] = {}
    for rec in records:
        current = latest.get(rec.object_key)
        if current is None or rec.loaded_at >= current.loaded_at:
            latest[rec.object_key] = rec
    return latest


def plan_files(
    objects: Sequence[ObjectInfo], records: Iterable[AuditRecord], *, full_refresh: bool = False
) -> LoadPlan:
    """Decide per object: load (new / changed / full refresh) or skip (unchanged)."""
    latest = latest_by_key(records)
    plan = LoadPlan()
    for obj in objects:
        seen = latest.get(obj.key)
        if full_refresh:
            plan.to_load.append((obj, "full-refresh"))
        elif seen is None:
            plan.to_load.append((obj, "new"))
        elif seen.etag != obj.etag or seen.size != obj.size:
            plan.to_load.append((obj, "changed"))
        else:
            plan.skipped.append(obj)
    return plan
