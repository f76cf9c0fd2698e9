"""The record contract, written once: fields, numeric bounds, ordered rules, reason codes.

This module is data plus two small evaluators; every engine that judges records takes its
rules from here instead of restating them:

* :mod:`market_common.contracts` (pydantic) parses the wire shape and then runs
  :func:`first_failing` (scalar evaluator) on the typed values;
* ``market_ingest`` (vectorised fast path) evaluates the same :data:`VALUE_RULES` on numpy
  columns (``market_ingest.fastpath.rules``);
* ``market_spark.steps`` renders the same :data:`VALUE_RULES` to Spark columns, and the
  DuckDB transform of the Spark benchmark renders them with :func:`to_sql`.

Shape rules (``oversized`` … ``invalid_timestamp``) are about bytes and JSON types, so each
parser implements them natively; they are held together by the property tests, which
compare every engine's verdict on arbitrary bytes. Value rules (``unsupported_schema_version``
and ``invalid_symbol`` onwards) are expressions over typed values and exist only here.

Numeric bounds (why): prices are finite and in ``[PRICE_MIN, PRICE_MAX]`` =
``[1e-4, 1e7]`` (a hundredth of a cent to 10x the dearest listed share), so any ratio of two
prices stays below ``1e11`` and ``sum(price)``/``sum(price**2)`` over ``10**6`` rows stay
finite doubles; volume is in ``[0, VOLUME_MAX]`` = ``[0, 10**12]``, so ``sum(volume)`` over
``10**6`` rows is at most ``10**18 < 2**63`` and Spark's ANSI ``sum`` cannot overflow, and
``price * volume`` (turnover) stays below ``10**19``, a finite double.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from market_common.identifiers import SYMBOL_RE

SCHEMA_VERSION = 1
PRICE_MIN = 1e-4
PRICE_MAX = 1e7
VOLUME_MAX = 10**12

Kind = Literal["daily_bar", "tick"]
Stage = Literal["shape", "value"]


@dataclass(frozen=True)
class Reason:
    """One stable reason code: what it means, an example of bad input, where it is judged."""

    code: str
    meaning: str
    bad_input: str
    stage: Stage
    kinds: frozenset[str] = frozenset({"daily_bar", "tick"})


_BARS = frozenset({"daily_bar"})
# Precedence order: a record failing several rules is reported under the first.
REASONS: tuple[Reason, ...] = (
    Reason("oversized", "the message is larger than contracts.max_message_bytes",
           "value longer than the max message bytes", "shape"),
    Reason("malformed_json",
           "not one UTF-8 JSON object (truncated, empty, an array, duplicate keys)",
           "not UTF-8, not JSON, truncated, empty/tombstone, `null`, a non-object, several "
           "concatenated objects, duplicate keys, a byte-order mark", "shape"),
    Reason("unsupported_schema_version",
           f"schema_version is an integer other than {SCHEMA_VERSION}",
           f"`schema_version` an integer other than {SCHEMA_VERSION}", "value"),
    Reason("missing_field", "a required field is absent or null", "a field absent or `null`",
           "shape"),
    Reason("unknown_field", "a field the contract does not define",
           "a field the contract does not define", "shape"),
    Reason("wrong_type",
           'a field has the wrong JSON type ("190.5" or true for a number, 10.0 for an integer)',
           '`"190.5"`/`true` for a number, `10.0` for an integer, a number for a string, a '
           "non-64-bit integer", "shape"),
    Reason("invalid_timestamp",
           "ts / trade_date is not an ISO-8601 timestamp / date that exists",
           "`ts` not `YYYY-MM-DDTHH:MM:SS[.ffffff][Z\\|±HH:MM]`, `trade_date` not "
           "`YYYY-MM-DD`, impossible date, year outside 1700-2199", "shape"),
    Reason("invalid_symbol", "symbol does not match the ticker pattern (e.g. AAPL, BRK.B)",
           f"symbol not a ticker (`{SYMBOL_RE.pattern}`)", "value"),
    Reason("unknown_symbol", "symbol is well formed but not in the configured universe",
           "well-formed symbol outside the configured universe", "value"),
    Reason("non_finite", "NaN or +-Infinity in a number field",
           "`NaN`, `Infinity`, `-Infinity` (or a number overflowing to them) in a price",
           "value"),
    Reason("non_positive_price", "a price is zero or negative", "a price ≤ 0", "value"),
    Reason("negative_volume", "volume is negative", "volume < 0", "value"),
    Reason("out_of_bounds",
           f"a price outside [{PRICE_MIN:g}, {PRICE_MAX:g}] or a volume above {VOLUME_MAX:.0e}",
           f"price < {PRICE_MIN:g} or > {PRICE_MAX:g} (e.g. `1e308`), volume > 10^12 (e.g. "
           "2^63-1): bounds that keep every downstream sum finite and within 64 bits",
           "value"),
    Reason("high_below_low", "high is below low", "daily bar with high < low", "value", _BARS),
    Reason("price_outside_range", "open or close is outside [low, high]",
           "daily bar with open or close outside [low, high]", "value", _BARS),
    Reason("future_timestamp", "ts / trade_date is later than now + contracts.max_future_skew_s",
           "`ts` / `trade_date` later than now + skew", "value"),
    Reason("invalid_window", "window_end is not after window_start (window metrics only)",
           "window metric whose end is not after its start", "value", frozenset({"window_metric"})),
)  # fmt: skip
REASON_CODES: tuple[str, ...] = tuple(r.code for r in REASONS)
RANK: dict[str, int] = {code: i for i, code in enumerate(REASON_CODES)}


# --------------------------------------------------------------------------- fields

WireType = Literal["int", "number", "string", "date", "timestamp"]


@dataclass(frozen=True)
class FieldSpec:
    """One wire field: its JSON form (``int`` = integer literal, ``number`` = any number)."""

    name: str
    wire_type: WireType


FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "daily_bar": (
        FieldSpec("schema_version", "int"), FieldSpec("symbol", "string"),
        FieldSpec("trade_date", "date"), FieldSpec("open", "number"),
        FieldSpec("high", "number"), FieldSpec("low", "number"), FieldSpec("close", "number"),
        FieldSpec("volume", "int"), FieldSpec("source", "string"),
    ),
    "tick": (
        FieldSpec("schema_version", "int"), FieldSpec("symbol", "string"),
        FieldSpec("ts", "timestamp"), FieldSpec("price", "number"), FieldSpec("volume", "int"),
        FieldSpec("source", "string"),
    ),
}  # fmt: skip
PRICE_FIELDS: dict[str, tuple[str, ...]] = {
    "daily_bar": ("open", "high", "low", "close"),
    "tick": ("price",),
}
TIME_FIELD: dict[str, str] = {"daily_bar": "trade_date", "tick": "ts"}


# --------------------------------------------------------------------------- value rules


@dataclass(frozen=True)
class Cmp:
    """Fails when ``field <op> other`` holds; ``other`` is a field name or a constant."""

    field: str
    op: Literal["<", "<=", ">", "!="]
    other: str | float | int


# A price outside the day's range: below its low or above its high.
_OUTSIDE_RANGE: tuple[tuple[Literal["<", ">"], str], ...] = (("<", "low"), (">", "high"))


@dataclass(frozen=True)
class NotFinite:
    """Fails on NaN or ±infinity."""

    field: str


@dataclass(frozen=True)
class BadSymbol:
    """Fails when the symbol does not fully match :data:`SYMBOL_RE`."""

    field: str = "symbol"


@dataclass(frozen=True)
class OutsideUniverse:
    """Fails when a universe is configured and the symbol is not in it."""

    field: str = "symbol"


@dataclass(frozen=True)
class Future:
    """Fails when the time field is after ``now + skew`` (for dates: after that date)."""

    field: str


Predicate = Cmp | NotFinite | BadSymbol | OutsideUniverse | Future


@dataclass(frozen=True)
class Rule:
    """A reason code and the predicates that trigger it (any one of them)."""

    code: str
    any_of: tuple[Predicate, ...]


def _value_rules(kind: str) -> tuple[Rule, ...]:
    prices = PRICE_FIELDS[kind]
    rules = [
        Rule("unsupported_schema_version", (Cmp("schema_version", "!=", SCHEMA_VERSION),)),
        Rule("invalid_symbol", (BadSymbol(),)),
        Rule("unknown_symbol", (OutsideUniverse(),)),
        Rule("non_finite", tuple(NotFinite(p) for p in prices)),
        Rule("non_positive_price", tuple(Cmp(p, "<=", 0.0) for p in prices)),
        Rule("negative_volume", (Cmp("volume", "<", 0),)),
        Rule(
            "out_of_bounds",
            tuple(Cmp(p, "<", PRICE_MIN) for p in prices)
            + tuple(Cmp(p, ">", PRICE_MAX) for p in prices)
            + (Cmp("volume", ">", VOLUME_MAX),),
        ),
    ]
    if kind == "daily_bar":
        rules += [
            Rule("high_below_low", (Cmp("high", "<", "low"),)),
            Rule(
                "price_outside_range",
                tuple(Cmp(p, op, bound) for p in ("open", "close")
                      for op, bound in _OUTSIDE_RANGE),  # fmt: skip
            ),
        ]
    rules.append(Rule("future_timestamp", (Future(TIME_FIELD[kind]),)))
    assert [r.code for r in rules] == sorted((r.code for r in rules), key=RANK.__getitem__)
    return tuple(rules)


VALUE_RULES: dict[str, tuple[Rule, ...]] = {kind: _value_rules(kind) for kind in FIELDS}


@dataclass(frozen=True)
class Context:
    """What value rules depend on besides the record: the clock, skew and universe."""

    now: datetime
    future_skew: timedelta
    universe: frozenset[str] | None = None

    @property
    def latest(self) -> datetime:
        """The latest acceptable timestamp (dates: up to this instant's date)."""
        return self.now + self.future_skew


# Shared with the vectorised evaluator: the operators work on scalars and numpy arrays.
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "!=": lambda a, b: a != b,
}


def scalar(pred: Predicate, row: Mapping[str, Any], ctx: Context) -> bool:
    value = row[pred.field]
    if isinstance(pred, Cmp):
        other = row[pred.other] if isinstance(pred.other, str) else pred.other
        return bool(OPS[pred.op](value, other))
    if isinstance(pred, NotFinite):
        return not math.isfinite(value)
    if isinstance(pred, BadSymbol):
        return SYMBOL_RE.fullmatch(value) is None
    if isinstance(pred, OutsideUniverse):
        return ctx.universe is not None and value not in ctx.universe
    if isinstance(value, datetime):
        return value > ctx.latest
    assert isinstance(value, date)
    return value > ctx.latest.date()


def first_failing(kind: str, row: Mapping[str, Any], ctx: Context) -> tuple[str, str] | None:
    """``(code, detail)`` of the first value rule ``row`` (typed values) fails, else ``None``.

    The detail names the predicate that fired and the offending values, for people.
    """
    for rule in VALUE_RULES[kind]:
        for p in rule.any_of:
            if scalar(p, row, ctx):
                return rule.code, describe(p, row, ctx)
    return None


def describe(pred: Predicate, row: Mapping[str, Any], ctx: Context) -> str:
    """Human-readable form of a predicate that fired on ``row``."""
    value = row[pred.field]
    if isinstance(pred, Cmp):
        shown = f"{pred.other} {row[pred.other]!r}" if isinstance(pred.other, str) else pred.other
        return f"{pred.field} {value!r} {pred.op} {shown}"
    if isinstance(pred, NotFinite):
        return f"{pred.field} is {value!r}"
    if isinstance(pred, BadSymbol):
        return f"malformed symbol {value!r}"
    if isinstance(pred, OutsideUniverse):
        return f"unknown symbol {value} (not in the configured universe)"
    return f"{pred.field} {value} is later than now + {ctx.future_skew} ({ctx.latest.isoformat()})"


def utc_naive(moment: datetime) -> datetime:
    """``moment`` as a naive UTC datetime (naive input is taken to be UTC already)."""
    offset = moment.utcoffset() or timedelta(0)
    return moment.replace(tzinfo=None) - offset


# --------------------------------------------------------------------------- SQL form

_SQL_QUOTE = re.compile(r"'")


def _sql_literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + _SQL_QUOTE.sub("''", value) + "'"
    return repr(value)


def to_sql(
    kind: str,
    ctx: Context,
    *,
    full_match: Callable[[str, str], str],
    not_finite: Callable[[str], str],
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """A SQL ``CASE`` giving each row's reason (``NULL`` when valid) from :data:`VALUE_RULES`.

    The dialect supplies ``full_match(column, pattern)`` and ``not_finite(column)``;
    ``extra`` are ``(code, condition)`` pairs for rules only that engine needs (such as
    ``missing_field`` on nullable columns), placed by the code's precedence.
    """
    conditions: list[tuple[str, str]] = list(extra)
    for rule in VALUE_RULES[kind]:
        parts: list[str] = []
        for p in rule.any_of:
            if isinstance(p, Cmp):
                other = p.other if isinstance(p.other, str) else _sql_literal(p.other)
                parts.append(f"{p.field} {'<>' if p.op == '!=' else p.op} {other}")
            elif isinstance(p, NotFinite):
                parts.append(not_finite(p.field))
            elif isinstance(p, BadSymbol):
                parts.append(f"NOT {full_match(p.field, SYMBOL_RE.pattern)}")
            elif isinstance(p, OutsideUniverse):
                if ctx.universe is not None:
                    listed = ", ".join(_sql_literal(s) for s in sorted(ctx.universe))
                    parts.append(f"{p.field} NOT IN ({listed})")
            elif p.field == "trade_date":
                parts.append(f"{p.field} > DATE '{ctx.latest.date().isoformat()}'")
            else:
                stamp = utc_naive(ctx.latest).isoformat()
                parts.append(f"{p.field} > TIMESTAMP '{stamp}'")
        if parts:
            conditions.append((rule.code, " OR ".join(f"({c})" for c in parts)))
    conditions.sort(key=lambda c: RANK[c[0]])
    whens = " ".join(f"WHEN {cond} THEN '{code}'" for code, cond in conditions)
    return f"CASE {whens} END"


def reason_table_markdown() -> str:
    """The README's reason-code table, generated (``tests`` check the README holds it)."""
    stream = "DLQ; ticks also quarantine/realtime"
    batch = "raw bars not written by the consumer: quarantine/historical"
    where = {"shape": stream, "value": f"{stream}; {batch}"}
    lines = ["| code | bad input | where it ends up |", "|---|---|---|"]
    for r in REASONS:
        if r.kinds == frozenset({"window_metric"}):
            continue
        dest = f"DLQ; {batch}" if r.kinds == _BARS else where[r.stage]
        lines.append(f"| `{r.code}` | {r.bad_input} | {dest} |")
    return "\n".join(lines)


if __name__ == "__main__":  # regenerate the README table: python -m market_common.contract_spec
    print(reason_table_markdown())
