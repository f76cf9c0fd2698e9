"""DLQ values for rejects."""

from __future__ import annotations

from market_common.contracts import DeadLetter
from market_ingest.records.common import DLQ_ORIGINAL_LIMIT, Kind, Reject


def dead_letter_json(
    reject: Reject,
    *,
    kind: Kind,
    stage: str,
    source: str,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> bytes:
    """The DLQ value for a reject (``DeadLetter`` JSON: reason code, detail, original).

    Originals above ``DLQ_ORIGINAL_LIMIT`` bytes are truncated (and the detail says so)
    so one runaway message cannot exceed the DLQ's message size limit.
    """
    payload, detail = reject.payload, reject.detail
    if len(payload) > DLQ_ORIGINAL_LIMIT:
        payload = payload[:DLQ_ORIGINAL_LIMIT]
        detail = f"{detail} [original truncated to {DLQ_ORIGINAL_LIMIT} bytes]"
    return (
        DeadLetter.from_payload(
            reason=reject.reason,
            detail=detail or None,
            stage=stage,
            source=source,
            payload=payload,
            kind=kind,
            topic=topic,
            partition=partition,
            offset=offset,
        )
        .model_dump_json()
        .encode()
    )
