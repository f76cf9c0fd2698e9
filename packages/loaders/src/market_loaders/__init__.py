"""Bulk, idempotent, incremental-by-file loaders: processed-zone Parquet → Snowflake."""

from __future__ import annotations

from market_loaders.loader import (
    LoadResult,
    RejectedFile,
    load_dataset,
    load_historical,
    load_realtime,
)

__all__ = ["LoadResult", "RejectedFile", "load_dataset", "load_historical", "load_realtime"]
