"""Helpers of the consumer tests on the local stack: produce values, read raw and the DLQ."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from market_common.clients import ensure_topics, kafka_consumer, kafka_producer
from market_common.settings import MarketSettings


def produce(settings: MarketSettings, values: list[bytes]) -> None:
    ensure_topics(settings, [settings.kafka.batch_topic])
    producer = kafka_producer(settings)
    for value in values:
        producer.send(settings.kafka.batch_topic, key=b"AAPL", value=value)
    producer.flush()
    producer.close()


def raw_offsets(s3: Any, settings: MarketSettings) -> list[int]:
    """Every ``kafka_offset`` in the raw zone, with repeats (sorted)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3.bucket, Prefix=f"{settings.s3.raw_prefix}/historical/"
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=settings.s3.bucket, Key=k)["Body"].read()))
        for k in keys
    ]
    table = pa.concat_tables(tables) if tables else None
    return sorted(table.column("kafka_offset").to_pylist()) if table is not None else []


def dead_letters(settings: MarketSettings) -> list[dict[str, Any]]:
    dlq = kafka_consumer(
        settings, settings.kafka.dlq_topic, group_id=None, consumer_timeout_ms=8_000
    )
    letters = [json.loads(m.value) for m in dlq]
    dlq.close()
    return sorted(letters, key=lambda letter: letter["offset"])
