"""Market-data sources, Kafka producers and raw-zone consumers.

Public API for other packages and Airflow tasks::

    backfill(settings, years=2) -> ProduceResult
    stream(settings, session_minutes=390, clock="simulated") -> ProduceResult
    consume(settings, "batch" | "realtime", until_caught_up=True) -> ConsumeResult
"""

from __future__ import annotations

from market_ingest.consumer import ConsumeResult, consume
from market_ingest.errors import (
    IngestError,
    RawWriteError,
    ReplayInputError,
    SourceDataError,
    SourceUnavailableError,
)
from market_ingest.producer import ProduceResult, backfill, stream
from market_ingest.universe import benchmark_universe

__all__ = [
    "ConsumeResult",
    "IngestError",
    "ProduceResult",
    "RawWriteError",
    "ReplayInputError",
    "SourceDataError",
    "SourceUnavailableError",
    "backfill",
    "benchmark_universe",
    "consume",
    "stream",
]
