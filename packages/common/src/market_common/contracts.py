"""Record contracts shared by producers, consumers, Spark jobs and loaders.

Every record on the wire is one JSON object carrying ``schema_version``. Wire input is
judged strictly by :func:`validate_payload`: no type coercion (``"190.5"`` or ``true`` is
not a number, ``10.0`` is not an integer), every field required (JSON ``null`` counts as
absent), no unknown fields, finite positive prices, timestamps at most ``future_skew``
ahead of the clock, symbols matching the ticker pattern (and in the universe when one is
configured), at most ``max_message_bytes`` bytes. A rejection carries one stable code from
:data:`REASONS` (the first failing one in that order) plus a human-readable detail; the
Spark streaming job (:mod:`market_spark.steps.tick_quality`) reports the same codes in the
same order. Constructing a model in code (``Tick(symbol=..., ...)``) stays convenient:
``schema_version`` and ``source`` have defaults there, never on the wire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError  # pants: no-infer-dep (ships with pydantic)

from market_common.identifiers import is_valid_symbol

if TYPE_CHECKING:
    from market_common.settings import MarketSettings

SCHEMA_VERSION = 1
DEFAULT_FUTURE_SKEW = timedelta(minutes=5)
FUTURE_TOLERANCE = DEFAULT_FUTURE_SKEW  # the default skew, under its historical name
# Our records are ~150-190 bytes; the limit only stops garbage from reaching the lake.
DEFAULT_MAX_MESSAGE_BYTES = 2048
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
RecordKind = Literal["daily_bar", "tick", "window_metric"]

# Stable reason codes, in precedence order: a record failing several rules is reported
# under the first. Message-level problems first, then the shape, then the values.
REASONS: dict[str, str] = {
    "oversized": "the message is larger than contracts.max_message_bytes",
    "malformed_json": "not one UTF-8 JSON object (truncated, empty, an array, duplicate keys)",
    "unsupported_schema_version": f"schema_version is an integer other than {SCHEMA_VERSION}",
    "missing_field": "a required field is absent or null",
    "unknown_field": "a field the contract does not define",
    "wrong_type": 'a field has the wrong JSON type ("190.5" or true for a number, 10.0 for an integer)',
    "invalid_timestamp": "ts / trade_date is not an ISO-8601 timestamp / date that exists",
    "invalid_symbol": "symbol does not match the ticker pattern (e.g. AAPL, BRK.B)",
    "unknown_symbol": "symbol is well formed but not in the configured universe",
    "non_finite": "NaN or +-Infinity in a number field",
    "non_positive_price": "a price is zero or negative",
    "negative_volume": "volume is negative",
    "high_below_low": "high is below low",
    "price_outside_range": "open or close is outside [low, high]",
    "future_timestamp": "ts / trade_date is later than now + contracts.max_future_skew_s",
    "invalid_window": "window_end is not after window_start (window metrics only)",
}
REASON_CODES: tuple[str, ...] = tuple(REASONS)
_RANK = {code: i for i, code in enumerate(REASON_CODES)}

# Wire forms of time fields ([0-9], not \d: Python's \d also matches non-ASCII digits).
# Years 1700-2199 only: every layer (pandas' ns timestamps, Spark) can hold them.
YEAR_PATTERN = r"(?:1[7-9]|2[01])[0-9]{2}"
DATE_PATTERN = YEAR_PATTERN + r"-[0-9]{2}-[0-9]{2}"
TIMESTAMP_PATTERN = (
    DATE_PATTERN + r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_DATE_RE = re.compile(DATE_PATTERN)
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)


@dataclass(frozen=True)
class ContractPolicy:
    """The configurable limits of the contract (``MARKET_CONTRACTS__*``).

    ``universe=None`` accepts any well-formed ticker; a set restricts symbols to it.
    """

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    future_skew: timedelta = DEFAULT_FUTURE_SKEW
    universe: frozenset[str] | None = None

    @classmethod
    def from_settings(cls, settings: MarketSettings) -> ContractPolicy:
        c = settings.contracts
        return cls(
            max_message_bytes=c.max_message_bytes,
            future_skew=timedelta(seconds=c.max_future_skew_s),
            universe=frozenset(c.universe) if c.universe is not None else None,
        )


def _error(code: str, message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(code, message, ctx or None)


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context or {}


def _context_now(info: ValidationInfo) -> datetime:
    now = _context(info).get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


def _context_skew(info: ValidationInfo) -> timedelta:
    skew = _context(info).get("future_skew")
    return skew if isinstance(skew, timedelta) else DEFAULT_FUTURE_SKEW


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _check_int(value: Any, name: str) -> Any:
    # bool is an int subclass; the 64-bit bound keeps every accepted value storable.
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not INT64_MIN <= value <= INT64_MAX:
        raise _error("wrong_type", "{field} {value} does not fit a 64-bit integer",
                     field=name, value=value)  # fmt: skip
    return value


class _Record(BaseModel):
    """Base: unknown fields rejected, numbers finite, JSON ``null`` treated as absent."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    kind: ClassVar[RecordKind]

    schema_version: int = SCHEMA_VERSION
    symbol: str

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        value = _check_int(value, "schema_version")
        if isinstance(value, int) and not isinstance(value, bool) and value != SCHEMA_VERSION:
            raise _error(
                "unsupported_schema_version",
                "unsupported schema_version {value} (expected {expected})",
                value=value,
                expected=SCHEMA_VERSION,
            )
        return value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str, info: ValidationInfo) -> str:
        if not is_valid_symbol(value):
            raise _error("invalid_symbol", "malformed symbol '{symbol}'", symbol=value)
        universe = _context(info).get("universe")
        if universe is not None and value not in universe:
            raise _error(
                "unknown_symbol", "unknown symbol {symbol} (not in the configured universe)",
                symbol=value,
            )  # fmt: skip
        return value

    # Bars and ticks have a volume (window metrics do not: check_fields=False).
    @field_validator("volume", mode="before", check_fields=False)
    @classmethod
    def _volume_fits(cls, value: Any) -> Any:
        return _check_int(value, "volume")

    @field_validator("volume", check_fields=False)
    @classmethod
    def _volume(cls, value: int) -> int:
        return check_volume(value)

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
    volume: int
    source: str = "synthetic"

    @field_validator("trade_date", mode="before")
    @classmethod
    def _parse_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not _DATE_RE.fullmatch(value):
                raise _error("invalid_timestamp", "trade_date '{value}' is not YYYY-MM-DD",
                             value=value)  # fmt: skip
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise _error("invalid_timestamp", "trade_date '{value}' does not exist",
                             value=value) from None  # fmt: skip
        if isinstance(value, datetime):
            raise _error("wrong_type", "trade_date must be a date, not a timestamp")
        return value

    @field_validator("trade_date")
    @classmethod
    def _not_future(cls, value: date, info: ValidationInfo) -> date:
        if value > (_context_now(info) + _context_skew(info)).date():
            raise _error("future_timestamp", "trade_date {value} is in the future",
                         value=str(value))  # fmt: skip
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
    volume: int
    source: str = "synthetic"

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not _TIMESTAMP_RE.fullmatch(value):
                raise _error(
                    "invalid_timestamp",
                    "ts '{value}' is not an ISO-8601 timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM])",
                    value=value,
                )
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                raise _error("invalid_timestamp", "ts '{value}' does not exist",
                             value=value) from None  # fmt: skip
        return value

    @field_validator("ts")
    @classmethod
    def _ts(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = _as_utc(value)
        if value > _context_now(info) + _context_skew(info):
            raise _error("future_timestamp", "timestamp {value} is in the future",
                         value=value.isoformat())  # fmt: skip
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
            raise _error("invalid_window", "window_end must be after window_start")
        check_ohlc(self.window_open, self.window_high, self.window_low, self.window_close)
        return self


RECORD_TYPES: dict[str, type[_Record]] = {
    "daily_bar": DailyBar,
    "tick": Tick,
    "window_metric": WindowMetric,
}
# Fields a wire record must carry (the model defaults exist for code, not for the wire).
WIRE_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(model.model_fields) for kind, model in RECORD_TYPES.items()
}
_OPTIONAL_ON_WIRE = {"ma_1h", "volatility_15m"}


def check_volume(volume: int) -> int:
    """Raise ``negative_volume`` unless ``volume >= 0``."""
    if volume < 0:
        raise _error("negative_volume", "volume {volume} is negative", volume=volume)
    return volume


def check_ohlc(open_: float, high: float, low: float, close: float) -> None:
    """Raise ``high_below_low`` / ``price_outside_range`` unless ``low <= open, close <= high``."""
    if high < low:
        raise _error("high_below_low", "high {high} is below low {low}", high=high, low=low)
    for name, value in (("open", open_), ("close", close)):
        if not low <= value <= high:
            raise _error(
                "price_outside_range",
                "{name} {value} is outside [low {low}, high {high}]",
                name=name, value=value, low=low, high=high,
            )  # fmt: skip


class InvalidRecordError(ValueError):
    """A payload failed its contract.

    ``reason`` is one code of :data:`REASONS` (stable, for counting and alerting);
    ``detail`` says which field and value, for people.
    """

    def __init__(self, reason: str, detail: str, payload: object) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.payload = payload


# pydantic's own error types → our codes (custom errors already carry a code as type).
_PRICE_BOUNDS = {"greater_than", "greater_than_equal"}


def _code(err: Mapping[str, Any]) -> str:
    kind = str(err["type"])
    if kind in _RANK:
        return kind
    field = str(err["loc"][0]) if err["loc"] else ""
    if kind == "missing":
        return "missing_field"
    if kind == "extra_forbidden":
        return "unknown_field"
    if kind == "finite_number":
        return "non_finite"
    if kind in _PRICE_BOUNDS:
        return (
            "negative_volume"
            if "volume" in field or field == "tick_count"
            else "non_positive_price"
        )
    return "wrong_type"


def _first(errors: Iterable[tuple[str, str]]) -> tuple[str, str]:
    return min(errors, key=lambda e: _RANK[e[0]])


def _describe(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "record"
    return f"{loc}: {err['msg']}"


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json_object(payload: bytes | str) -> dict[str, Any]:
    """The JSON object of a wire payload, or ``malformed_json`` (also for duplicate keys
    and a leading byte-order mark, which the other parsers reject).

    ``NaN``/``Infinity`` literals parse (to non-finite floats) so the record is rejected as
    ``non_finite`` in the field that holds them rather than as malformed.
    """
    try:
        # Decoding first rejects a UTF-8 BOM, which json.loads(bytes) would skip silently.
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRecordError("malformed_json", str(exc)[:200], payload) from None
    if not isinstance(data, dict):
        raise InvalidRecordError(
            "malformed_json", f"JSON value is a {type(data).__name__}, not an object", payload
        )
    return data


def validate_payload(
    kind: RecordKind,
    payload: bytes | str | Mapping[str, Any],
    *,
    now: datetime | None = None,
    universe: Iterable[str] | None = None,
    max_bytes: int | None = None,
    future_skew: timedelta = DEFAULT_FUTURE_SKEW,
) -> _Record:
    """Parse and validate one wire payload; raise :class:`InvalidRecordError` with a code."""
    if isinstance(payload, bytes | str):
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if max_bytes is not None and size > max_bytes:
            raise InvalidRecordError("oversized", f"{size} bytes > {max_bytes}", payload)
        data = parse_json_object(payload)
    else:
        data = dict(payload)
    errors: list[tuple[str, str]] = [
        ("missing_field", f"{name}: Field required")
        for name in WIRE_FIELDS[kind]
        if data.get(name) is None and name not in _OPTIONAL_ON_WIRE
    ]
    context = {
        "now": now or datetime.now(UTC),
        "universe": frozenset(universe) if universe is not None else None,
        "future_skew": future_skew,
    }
    try:
        record = RECORD_TYPES[kind].model_validate(data, strict=True, context=context)
    except ValidationError as exc:
        errors += [(_code(e), _describe(e)) for e in exc.errors(include_url=False)]
    if errors:
        raise InvalidRecordError(*_first(errors), payload)
    return record


class DeadLetter(BaseModel):
    """What the DLQ topic carries: why (code + detail), where from, the untouched payload."""

    model_config = ConfigDict(extra="forbid")

    reason: str  # a code of REASONS (or a stage-specific code such as "load_failed")
    detail: str | None = None
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
