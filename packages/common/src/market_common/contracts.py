"""Record contracts shared by producers, consumers, Spark jobs and loaders.

Every record on the wire is one JSON object carrying ``schema_version``. Wire input is
judged strictly by :func:`validate_payload`: no type coercion (``"190.5"`` or ``true`` is
not a number, ``10.0`` is not an integer), every field required (JSON ``null`` counts as
absent), no unknown fields, at most ``max_message_bytes`` bytes; pydantic judges that
*shape*. The *values* (schema version, symbol syntax and universe, finite prices within
bounds, volume bounds, OHLC consistency, timestamps at most ``future_skew`` ahead) are
judged by the rules of :mod:`market_common.contract_spec`, the one definition every engine
uses. A rejection carries one stable code from :data:`REASONS` (the first failing one in
that order) plus a human-readable detail; the vectorised ingest path and the Spark jobs
report the same codes in the same order. Constructing a model in code (``Tick(symbol=..., ...)``) stays convenient:
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

from market_common import contract_spec

if TYPE_CHECKING:
    from market_common.settings import MarketSettings

SCHEMA_VERSION = contract_spec.SCHEMA_VERSION
DEFAULT_FUTURE_SKEW = timedelta(minutes=5)
FUTURE_TOLERANCE = DEFAULT_FUTURE_SKEW  # the default skew, under its historical name
# Our records are ~150-190 bytes; the limit only stops garbage from reaching the lake.
DEFAULT_MAX_MESSAGE_BYTES = 2048
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Bounds that keep downstream aggregates finite and within 64 bits (see contract_spec).
PRICE_MIN, PRICE_MAX, VOLUME_MAX = (
    contract_spec.PRICE_MIN,
    contract_spec.PRICE_MAX,
    contract_spec.VOLUME_MAX,
)
RecordKind = Literal["daily_bar", "tick", "window_metric"]

# Stable reason codes, in precedence order (a record failing several rules is reported
# under the first), as written once in market_common.contract_spec.
REASONS: dict[str, str] = {r.code: r.meaning for r in contract_spec.REASONS}
REASON_CODES: tuple[str, ...] = contract_spec.REASON_CODES
_RANK = contract_spec.RANK

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


def _spec_context(info: ValidationInfo) -> contract_spec.Context:
    ctx = _context(info)
    now, skew = ctx.get("now"), ctx.get("future_skew")
    return contract_spec.Context(
        now=now if isinstance(now, datetime) else datetime.now(UTC),
        future_skew=skew if isinstance(skew, timedelta) else DEFAULT_FUTURE_SKEW,
        universe=ctx.get("universe"),
    )


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
    """Base: unknown fields rejected, JSON ``null`` treated as absent."""

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
        # Judged with the shape (its code ranks before missing_field), by the spec's rule.
        value = _check_int(value, "schema_version")
        if isinstance(value, int) and not isinstance(value, bool):
            version_rule = contract_spec.VALUE_RULES["tick"][0]
            if contract_spec.scalar(version_rule.any_of[0], {"schema_version": value}, _NO_CTX):
                raise _error(
                    "unsupported_schema_version",
                    "unsupported schema_version {value} (expected {expected})",
                    value=value,
                    expected=SCHEMA_VERSION,
                )
        return value

    # Bars and ticks have a volume (window metrics do not: check_fields=False).
    @field_validator("volume", mode="before", check_fields=False)
    @classmethod
    def _volume_fits(cls, value: Any) -> Any:
        return _check_int(value, "volume")

    def to_json(self) -> bytes:
        """Compact JSON bytes for Kafka values."""
        return self.model_dump_json().encode()


class _WireRecord(_Record):
    """A wire record (bar or tick): its values are judged by the spec's value rules.

    Non-finite numbers pass the shape so that the spec's ``non_finite`` rule, in its place
    in the precedence, names them (as the vectorised and Spark engines do).
    """

    model_config = ConfigDict(allow_inf_nan=True)

    @model_validator(mode="after")
    def _values(self, info: ValidationInfo) -> _WireRecord:
        failed = contract_spec.first_failing(self.kind, self.__dict__, _spec_context(info))
        if failed is not None:
            raise _error(failed[0], "{detail}", detail=failed[1])
        return self


class DailyBar(_WireRecord):
    """One symbol's OHLCV for one trading day (prices split-adjusted, see ingest docs)."""

    kind: ClassVar[RecordKind] = "daily_bar"
    trade_date: date
    open: float
    high: float
    low: float
    close: float
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


class Tick(_WireRecord):
    """One trade/quote observation for the realtime feed."""

    kind: ClassVar[RecordKind] = "tick"
    ts: datetime
    price: float
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
    def _ts(cls, value: datetime) -> datetime:
        return _as_utc(value)


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


_NO_CTX = contract_spec.Context(now=datetime.now(UTC), future_skew=DEFAULT_FUTURE_SKEW)

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
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than Python's stack (no record nests at all).
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


# --------------------------------------------------------------------------- control records

# A control record is not data: it travels on a data topic so that it keeps its place in the
# partition's order, and says so in this Kafka header. Consumers skip it (it is neither
# archived nor dead-lettered); the streaming job acts on it.
CONTROL_HEADER = "market-control"
SESSION_CLOSE = "session-close"


@dataclass(frozen=True)
class SessionClose:
    """The producer's word that a session is complete: every tick of it is on the topic before
    this record, and no tick sent after it is older than ``closes_at``.

    Why it exists: event-time windows close when the watermark (the latest tick time minus the
    allowed lateness) passes their end, so without it the session's last 15-minute window would
    wait for the *next* session's first ticks. The streaming job treats this record as an event
    at ``closes_at`` + its watermark delay, which moves the watermark to ``closes_at`` and emits
    every window ending by then — through the same checkpointed query as the ticks, so a replay
    of the record after a crash changes nothing (exactly once is kept).
    """

    closes_at: datetime

    def headers(self) -> list[tuple[str, bytes]]:
        return [(CONTROL_HEADER, SESSION_CLOSE.encode())]

    def value(self) -> bytes:
        stamp = _as_utc(self.closes_at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return json.dumps({"closes_at": stamp}, separators=(",", ":")).encode()

    @classmethod
    def from_value(cls, value: bytes) -> SessionClose:
        return cls(closes_at=_as_utc(datetime.fromisoformat(json.loads(value)["closes_at"])))


def control_kind(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    """The control kind a Kafka record's headers name (e.g. :data:`SESSION_CLOSE`), or None
    for a data record."""
    for key, value in headers or ():
        if key == CONTROL_HEADER and value is not None:
            return value.decode("utf-8", errors="replace")
    return None
