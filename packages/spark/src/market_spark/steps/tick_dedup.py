"""One row per tick: redeliveries are dropped, and in a stream so are ticks behind the watermark.

Kafka delivery and re-ingestion are at-least-once and a tick carries no id, so its identity is
its payload (:data:`KEY`, the fields of ``market_common.contracts.Tick``); two genuinely distinct
trades with the same payload in the same millisecond are indistinguishable from a redelivery.
Kafka coordinates are not part of the key: a redelivery gets a new offset.

In a stream this is the first stateful operator, so it is the one that drops late ticks, one
input row at a time: its ``numRowsDroppedByWatermark`` (progress ``stateOperators`` entry named
:data:`OPERATOR_NAME`) counts late ticks exactly, while the window aggregation behind it would
count dropped partial-aggregate groups. A key is remembered until the watermark passes its
``ts`` + the watermark delay; a redelivery arriving after that is late and counted as late.
On a batch DataFrame (which ``dropDuplicatesWithinWatermark`` refuses) it is
``dropDuplicates(KEY)``: all ticks are on time there.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

KEY = ("schema_version", "symbol", "ts", "price", "volume", "source")
DEFAULT_WATERMARK = "10 minutes"
# ``StreamingDeduplicateWithinWatermarkExec.shortName`` in query progress.
OPERATOR_NAME = "dedupeWithinWatermark"


def transform(df: DataFrame, *, watermark: str = DEFAULT_WATERMARK) -> DataFrame:
    """Valid ticks → the same columns, unique on :data:`KEY`, with the event-time watermark on ts.

    Which copy survives (in a stream the first one seen) changes no metric: copies have equal
    ts, price and volume. Only its Kafka offset can differ, which matters solely for the open/close
    tie-break between different ticks of one symbol in the same millisecond.
    """
    if not df.isStreaming:
        return df.dropDuplicates(list(KEY))
    return df.withWatermark("ts", watermark).dropDuplicatesWithinWatermark(list(KEY))
