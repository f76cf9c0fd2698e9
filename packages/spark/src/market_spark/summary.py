"""Run summaries: logged, returned and written as JSON beside the output."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: ``20240102T143000Z-1a2b3c4d``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class BatchSummary:
    """What one historical batch run read, wrote and quarantined.

    ``rows_in = rows_out + duplicates_removed + sum(quarantined.values())``;
    ``partitions_written``: the trade dates replaced; ``mode``: full, incremental or range.
    """

    run_id: str
    input_uri: str
    output_uri: str
    quarantine_uri: str
    rows_in: int
    rows_out: int
    duplicates_removed: int
    quarantined: dict[str, int]
    partitions_written: list[str]
    started_at: str
    finished_at: str
    duration_s: float
    mode: str = "full"

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"rows_quarantined": self.rows_quarantined}, indent=2)


@dataclass(frozen=True)
class StreamSummary:
    """What one streaming run (all its micro-batches) processed.

    ``late_rows_dropped``: valid ticks behind the watermark (the tick dedup operator's
    ``numRowsDroppedByWatermark``, one per tick); ``duplicate_ticks_dropped``: valid ticks whose
    payload was already seen. ``valid_ticks`` = ticks aggregated + late + duplicates.
    """

    run_id: str
    topic: str
    trigger: str
    batches: int
    input_rows: int
    valid_ticks: int
    quarantined: dict[str, int]
    windows_written: int
    late_rows_dropped: int
    duplicate_ticks_dropped: int
    watermark: str | None
    output_uri: str
    quarantine_uri: str
    checkpoint_uri: str
    duration_s: float
    progress: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("progress")
        return json.dumps(data, indent=2)


@dataclass(frozen=True)
class RecomputeSummary:
    """What one batch recompute of the realtime windows read and wrote.

    ``duplicate_ticks_dropped``: valid ticks whose payload was already seen (redeliveries).
    """

    run_id: str
    input_uri: str
    output_uri: str
    ticks_in: int
    valid_ticks: int
    invalid: dict[str, int]
    duplicate_ticks_dropped: int
    windows_written: int
    dates_written: list[str]
    duration_s: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)
