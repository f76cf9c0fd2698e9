"""Kafka records of the realtime topic → typed ticks (nothing is dropped here).

The value is judged as :func:`market_common.contracts.validate_payload` judges it, in Spark
SQL: a JSON document is parsed into a VARIANT, which keeps the JSON type of every field, so
``"190.5"`` (a string) or ``10.0`` (not an integer) are told apart from valid values instead
of being coerced or nulled. ``NaN``/``Infinity`` literals, which Python's JSON parser
accepts but VARIANT does not, are rewritten to a marker object on a second attempt so they
reach the ``non_finite`` rule like in the contract. Message-level and shape problems go to
``parse_error`` (a contract reason code); value rules are :mod:`tick_quality`'s.

A control record (:func:`market_common.contracts.control_kind` of its Kafka headers, read
when the source has a ``headers`` column) is not a tick: a ``SessionClose`` gets its
``closes_at`` in :data:`CLOSES_AT` and no ``parse_error``; every data record has a null there.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from market_common.contracts import (
    CONTROL_HEADER,
    SCHEMA_VERSION,
    SESSION_CLOSE,
    TIMESTAMP_PATTERN,
    WIRE_FIELDS,
    ContractPolicy,
)
from market_spark.schemas import TICK_COLUMNS
from market_spark.steps.rules import first_failing, full_match, policy_or_default

CLOSES_AT = "closes_at"
PARSED_COLUMNS = (*TICK_COLUMNS, "kafka_timestamp", "raw_value", "parse_error", CLOSES_AT)
FIELDS = WIRE_FIELDS["tick"]
# JSON type each field must have: integer literal, any number, or string.
JSON_TYPE = {"schema_version": "int", "symbol": "str", "ts": "str", "price": "number",
             "volume": "int", "source": "str"}  # fmt: skip
NON_FINITE_KEY = "__non_finite__"
# A bare NaN / Infinity / -Infinity token in value position (outside strings in practice:
# only tried after the strict parse failed).
_NON_FINITE_LITERAL_RE = r"([:\[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])"
_NON_FINITE_VALUE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _type(name: str) -> Column:
    """``BIGINT``, ``DOUBLE``, ``DECIMAL(p,s)``, ``STRING``, ``OBJECT<…>``, ``VOID`` (null)…"""
    return F.expr(f"schema_of_variant(variant_get(v, '$.{name}'))")


def _get(name: str, sql_type: str) -> Column:
    return F.expr(f"try_variant_get(v, '$.{name}', '{sql_type}')")


def _non_finite_token(name: str) -> Column:
    return F.expr(f"try_variant_get(v, '$.{name}.{NON_FINITE_KEY}', 'string')")


def _closes_at(df: DataFrame) -> Column:
    """``closes_at`` of a SessionClose record, null for every other record."""
    if "headers" not in df.columns:
        return F.lit(None).cast("timestamp")
    is_close = F.exists(
        F.col("headers"),
        lambda h: (h["key"] == CONTROL_HEADER) & (h["value"] == F.lit(SESSION_CLOSE.encode())),
    )
    stamp = F.get_json_object(F.col("value").cast("string"), "$.closes_at")
    return F.when(F.coalesce(is_close, F.lit(False)), F.try_to_timestamp(stamp))


def transform(df: DataFrame, *, policy: ContractPolicy | None = None) -> DataFrame:
    """Kafka source rows (value, topic, partition, offset, timestamp) → :data:`PARSED_COLUMNS`.

    ``policy`` (default: the job's settings) supplies ``max_message_bytes``.
    """
    policy = policy_or_default(policy)
    raw = F.col("value").cast("string")
    strict = F.try_parse_json(raw)
    text = F.when(
        strict.isNull() & raw.isNotNull(),
        F.regexp_replace(raw, _NON_FINITE_LITERAL_RE, f'$1{{"{NON_FINITE_KEY}":"$2"}}'),
    ).otherwise(raw)
    staged = df.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").cast("int").alias("kafka_partition"),
        F.col("offset").cast("long").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        # Parquet strings must be UTF-8: invalid bytes become U+FFFD (the reason says why).
        F.make_valid_utf8(raw).alias("raw_value"),
        F.octet_length(F.col("value")).alias("_bytes"),
        F.is_valid_utf8(F.col("value")).alias("_utf8"),
        text.alias("_text"),
        _closes_at(df).alias(CLOSES_AT),
    ).withColumn("v", F.try_parse_json(F.col("_text")))

    types = {name: _type(name) for name in FIELDS}
    non_finite = {
        name: types[name].startswith("OBJECT") & _non_finite_token(name).isNotNull()
        for name in FIELDS
        if JSON_TYPE[name] == "number"
    }

    def type_ok(name: str) -> Column:
        t = types[name]
        if JSON_TYPE[name] == "int":
            return t == "BIGINT"
        if JSON_TYPE[name] == "str":
            return t == "STRING"
        return t.isin("BIGINT", "DOUBLE", "FLOAT") | t.startswith("DECIMAL") | non_finite[name]

    present = {name: types[name].isNotNull() & (types[name] != "VOID") for name in FIELDS}
    ok = {name: present[name] & type_ok(name) for name in FIELDS}
    version = _get("schema_version", "bigint")
    ts_text = _get("ts", "string")
    ts = F.try_to_timestamp(ts_text)
    keys = F.json_object_keys(F.col("_text"))
    unknown = F.size(F.array_except(keys, F.array(*[F.lit(n) for n in FIELDS]))) > 0
    rules = [
        ("oversized", F.col("_bytes") > policy.max_message_bytes),
        (
            "malformed_json",
            F.col("_bytes").isNull()
            | ~F.col("_utf8")
            | F.col("v").isNull()
            | ~F.coalesce(F.expr("schema_of_variant(v)").startswith("OBJECT"), F.lit(False))
            # parse_json stops after the first value: '{..}{..}' must not pass as one record.
            | ~F.coalesce(F.expr("json_array_length(concat('[', _text, ']'))") == 1, F.lit(False)),
        ),
        ("unsupported_schema_version", ok["schema_version"] & (version != SCHEMA_VERSION)),
        ("missing_field", _any([~present[n] for n in FIELDS])),
        ("unknown_field", F.coalesce(unknown, F.lit(False))),
        ("wrong_type", _any([present[n] & ~type_ok(n) for n in FIELDS])),
        ("invalid_timestamp", ~full_match(ts_text, TIMESTAMP_PATTERN) | ts.isNull()),
    ]
    price = F.coalesce(
        *[
            F.when(_non_finite_token("price") == token, F.lit(value))
            for token, value in _NON_FINITE_VALUE.items()
        ],
        _get("price", "double"),
    )
    return staged.select(
        F.when(ok["symbol"], _get("symbol", "string")).alias("symbol"),
        F.when(ok["ts"], ts).alias("ts"),
        F.when(ok["price"], price).alias("price"),
        F.when(ok["volume"], _get("volume", "bigint")).alias("volume"),
        F.when(ok["source"], _get("source", "string")).alias("source"),
        # An out-of-int-range version is still unsupported: keep it unequal to ours.
        F.when(
            ok["schema_version"],
            F.when(version.between(INT_MIN, INT_MAX), version).otherwise(F.lit(-1)),
        )
        .cast("int")
        .alias("schema_version"),
        F.col("kafka_topic"),
        F.col("kafka_partition"),
        F.col("kafka_offset"),
        F.col("kafka_timestamp"),
        F.col("raw_value"),
        F.when(F.col(CLOSES_AT).isNull(), first_failing(rules)).alias("parse_error"),
        F.col(CLOSES_AT),
    ).select(*[F.col(c) for c in PARSED_COLUMNS])


def _any(conditions: list[Column]) -> Column:
    out = F.lit(False)
    for condition in conditions:
        out = out | F.coalesce(condition, F.lit(False))
    return out
