"""Shared names of the record-frame modules: kinds, fields, limits, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from market_common import contract_spec
from market_common.contracts import DATE_PATTERN, DEFAULT_MAX_MESSAGE_BYTES

Kind = Literal["daily_bar", "tick"]

# Wire fields per kind, in the order they are serialised (the contract's definition).
FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields) for kind, fields in contract_spec.FIELDS.items()
}
FLOAT_FIELDS: dict[str, tuple[str, ...]] = contract_spec.PRICE_FIELDS
INT_FIELDS = ("schema_version", "volume")
STR_FIELDS = ("symbol", "source")
TIME_FIELD: dict[str, str] = contract_spec.TIME_FIELD

# Largest accepted JSON value by default (settings: contracts.max_message_bytes).
MAX_RECORD_BYTES = DEFAULT_MAX_MESSAGE_BYTES
DLQ_ORIGINAL_LIMIT = 64 * 1024

# The string forms the vectorised path parses itself; anything else is left to pydantic.
DATE_RE = rf"^{DATE_PATTERN}$"
TS_RE = rf"^{DATE_PATTERN}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(?:\.[0-9]{{1,6}})?(?:Z|[+-]00:00)$"

# The contract's wire forms start in 1700; earlier values in frames need pydantic's verdict.
EARLIEST = pd.Timestamp("1700-01-01")


@dataclass(frozen=True)
class Reject:
    """One record that failed its contract: position in the input, reason code, original
    payload, and the contract's human-readable detail."""

    index: int
    reason: str
    payload: bytes
    detail: str = ""


@dataclass
class Validated:
    """Outcome of validating a frame: canonical accepted rows plus rejects.

    ``frame`` holds the accepted rows in canonical dtypes (index = positions in the input);
    ``payloads`` their JSON bytes (producer side only, else empty).
    """

    frame: pd.DataFrame
    payloads: list[bytes] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    slow_rows: int = 0
