"""Row counts per layer for the run summary, read from the stores themselves.

Counting the stores (not adding up what this run did) keeps the summary truthful on a
re-run that skipped steps: Parquet row counts come from file footers (no data is read),
Kafka counts from partition offsets, warehouse counts from ``count(*)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from market_common.clients import kafka_consumer, snowflake_connection
from market_common.identifiers import qualified
from market_common.settings import MarketSettings


def s3_filesystem(settings: MarketSettings) -> Any:
    """pyarrow's S3 filesystem on the settings' endpoint (footers and columns, not boto)."""
    import pyarrow.fs as pafs

    s3 = settings.s3
    return pafs.S3FileSystem(
        access_key=s3.access_key_id.get_secret_value() if s3.access_key_id else None,
        secret_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        endpoint_override=s3.endpoint_url,
        region=s3.region,
        allow_bucket_creation=False,
    )


def parquet_rows(settings: MarketSettings, *parts: str, filesystem: Any = None) -> int:
    """Rows of every Parquet file under ``<bucket>/<parts>`` (0 when nothing is there).

    Files and directories starting with ``_`` or ``.`` (Spark's ``_spark_metadata``,
    ``_SUCCESS``) are ignored.
    """
    import pyarrow.dataset as ds

    fs = filesystem or s3_filesystem(settings)
    path = "/".join([settings.s3.bucket, *(p.strip("/") for p in parts if p)])
    try:
        dataset = ds.dataset(path, format="parquet", filesystem=fs, partitioning="hive")
    except FileNotFoundError:
        return 0
    return int(dataset.count_rows())


def topic_messages(settings: MarketSettings, topics: Iterable[str]) -> dict[str, int]:
    """Messages currently held per topic (end minus beginning offsets; 0 for a missing topic)."""
    from kafka import TopicPartition

    consumer = kafka_consumer(settings, group_id=None)
    try:
        existing = consumer.topics()
        out: dict[str, int] = {}
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic) if topic in existing else None
            if not partitions:
                out[topic] = 0
                continue
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends, begins = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
            out[topic] = int(sum(ends[tp] - begins[tp] for tp in tps))
        return out
    finally:
        consumer.close()


def table_rows(connection: Any, database: str, schema: str, table: str) -> int | None:
    """``count(*)`` of a table, or None when it does not exist (yet)."""
    cursor = connection.cursor()
    try:
        sql = f"select count(*) from {qualified(database, schema, table)}"  # noqa: S608
        cursor.execute(sql)
        row = cursor.fetchone()
        return int(row[0]) if row else 0
    except Exception as exc:  # drivers differ in the class of "does not exist"
        if "does not exist" in str(exc).lower() or "not found" in str(exc).lower():
            return None
        raise
    finally:
        cursor.close()


@dataclass(frozen=True)
class LayerCounts:
    """Rows per layer (``None`` = the layer could not be read)."""

    kafka: dict[str, int]
    raw: dict[str, int]
    processed: dict[str, int]
    quarantined: dict[str, int]
    warehouse: dict[str, int | None]


def layer_counts(settings: MarketSettings, *, connection: Any = None) -> LayerCounts:
    """Count every layer the pipeline writes, using ``settings``' names and prefixes."""
    s3, k, sf = settings.s3, settings.kafka, settings.snowflake
    fs = s3_filesystem(settings)
    streams = ("historical", "realtime")

    def rows(prefix: str) -> dict[str, int]:
        return {stream: parquet_rows(settings, prefix, stream, filesystem=fs) for stream in streams}

    own = connection is None
    conn = connection or snowflake_connection(settings)
    try:
        warehouse = {
            sf.batch_table: table_rows(conn, sf.batch_database, sf.schema_, sf.batch_table),
            sf.stream_table: table_rows(conn, sf.stream_database, sf.schema_, sf.stream_table),
        }
    finally:
        if own:
            with contextlib.suppress(Exception):
                conn.close()
    return LayerCounts(
        kafka=topic_messages(settings, [k.batch_topic, k.realtime_topic, k.dlq_topic]),
        raw=rows(s3.raw_prefix),
        processed=rows(s3.processed_prefix),
        quarantined=rows(s3.quarantine_prefix),
        warehouse=warehouse,
    )
