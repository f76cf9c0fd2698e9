"""Record contracts shared by producers, consumers, Spark jobs and loaders.

Every record on the wire is JSON carrying ``schema_version``; anything that does not
validate goes to the dead-letter topic with the reason from :func:`validate_payload`.
Validation needs a clock (future-timestamp tolerance) and may need the symbol universe:
both come from the pydantic validation context, so tests pass a fixed ``now``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from market_common.identifiers import is_valid_symbol

SCHEMA_VERSION = 1
FUTURE_TOLERANCE = timedelta(minutes=5)
RecordKind = Literal["daily_bar", "tick", "window_metric"]


def _context_now(info: ValidationInfo) -> datetime:
    ctx = info.context or {}
    now = ctx.get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _Record(BaseModel):
    """Strict-ish base: unknown fields are rejected, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    kind: ClassVar[RecordKind]

    schema_version: int = SCHEMA_VERSION
    symbol: str

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {value} (expected {SCHEMA_VERSION})")
        return value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str, info: ValidationInfo) -> str:
        if not is_valid_symbol(value):
            raise ValueError(f"malformed symbol {value!r}")
        universe = (info.context or {}).get("universe")
        if universe is not None and value not in universe:
            raise ValueError(f"unknown symbol {value!r} (not in the configured universe)")
        return value

    def to_json(self) -> bytes:
        """Compact JSON bytes for Kafka values."""
        return self.model_dump_json().encode()


class DailyBar(_Record):
    """One symbol's OHLCV for one trading day (prices split-adjusted, see ingest docs)."""

    kind: ClassVar[RecordKind] = "daily_bar"
    trade_date: date
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: int = Field(ge=0)
    source: str = "synthetic"

    @field_validator("trade_date")
    @classmethod
    def _not_future(cls, value: date, info: ValidationInfo) -> date:
        if value > (_context_now(info) + FUTURE_TOLERANCE).date():
            raise ValueError(f"trade_date {value} is in the future")
        return value

    @model_validator(mode="after")
    def _ohlc(self) -> DailyBar:
        check_ohlc(self.open, self.high, self.low, self.close)
        return self


class Tick(_Record):
    """One trade/quote observation for the realtime feed."""

    kind: ClassVar[RecordKind] = "tick"
    ts: datetime
    price: float = Field(gt=0)
    volume: int = Field(ge=0)
    source: str = "synthetic"

    @field_validator("ts")
    @classmethod
    def _ts(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = _as_utc(value)
        if value > _context_now(info) + FUTURE_TOLERANCE:
            raise ValueError(f"timestamp {value.isoformat()} is in the future")
        return value


class WindowMetric(_Record):
    """Per-symbol 15-minute window aggregate produced by the streaming job."""

    kind: ClassVar[RecordKind] = "window_metric"
    window_start: datetime
    window_end: datetime
    ma_15m: float = Field(gt=0)
    ma_1h: float | None = Field(default=None, gt=0)
    volatility_15m: float | None = Field(default=None, ge=0)
    volume_sum_15m: int = Field(ge=0)
    tick_count: int = Field(ge=1)
    window_open: float = Field(gt=0)
    window_high: float = Field(gt=0)
    window_low: float = Field(gt=0)
    window_close: float = Field(gt=0)

    @model_validator(mode="after")
    def _window(self) -> WindowMetric:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        check_ohlc(self.window_open, self.window_high, self.window_low, self.window_close)
        return self


RECORD_TYPES: dict[str, type[_Record]] = {
    "daily_bar": DailyBar,
    "tick": Tick,
    "window_metric": WindowMetric,
}


def check_ohlc(open_: float, high: float, low: float, close: float) -> None:
    """Raise ``ValueError`` unless ``low <= open, close <= high``."""
    if high < low:
        raise ValueError(f"high {high} is below low {low}")
    for name, value in (("open", open_), ("close", close)):
        if not low <= value <= high:
            raise ValueError(f"{name} {value} is outside [low {low}, high {high}]")


class InvalidRecordError(ValueError):
    """A payload failed its contract; ``reason`` is a short, stable description."""

    def __init__(self, reason: str, payload: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.payload = payload


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def validate_payload(
    kind: RecordKind,
    payload: bytes | str | Mapping[str, Any],
    *,
    now: datetime | None = None,
    universe: Iterable[str] | None = None,
    max_bytes: int | None = None,
) -> _Record:
    """Parse and validate one payload; raise :class:`InvalidRecordError` with a reason."""
    if isinstance(payload, bytes | str):
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if max_bytes is not None and size > max_bytes:
            raise InvalidRecordError(f"oversized message: {size} bytes > {max_bytes}", payload)
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRecordError(f"malformed JSON: {exc}", payload) from None
    else:
        data = dict(payload)
    if not isinstance(data, dict):
        raise InvalidRecordError("malformed record: JSON value is not an object", payload)
    _reject_non_finite(data, payload)
    context = {
        "now": now or datetime.now(UTC),
        "universe": frozenset(universe) if universe is not None else None,
    }
    try:
        return RECORD_TYPES[kind].model_validate(data, context=context)
    except ValidationError as exc:
        raise InvalidRecordError(_reason(exc), payload) from None


def _reject_non_finite(data: Mapping[str, Any], payload: object) -> None:
    # json.loads accepts NaN/Infinity literals; name the field instead of a generic error.
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRecordError(f"{key}: non-finite number {value}", payload)


class DeadLetter(BaseModel):
    """What the DLQ topic carries: why, where from, and the untouched original payload."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    stage: str  # producer | consumer | spark | loader
    source: str
    kind: str | None = None
    original: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_payload(
        cls, *, reason: str, stage: str, source: str, payload: object, **kw: Any
    ) -> DeadLetter:
        if isinstance(payload, bytes):
            original = payload.decode("utf-8", errors="backslashreplace")
        elif isinstance(payload, str):
            original = payload
        else:
            original = json.dumps(payload, default=str)
        return cls(reason=reason, stage=stage, source=source, original=original, **kw)
