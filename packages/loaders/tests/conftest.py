"""Fixtures: a private corner of the local stack per test (S3 prefix + database names)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market_common.settings import MarketSettings

if TYPE_CHECKING:
    from market_devstack.stack import StackInfo
    from market_testing.pytest_plugin import UniqueNames

pytest_plugins = ["market_testing.pytest_plugin"]


@dataclass
class Lake:
    """Unique processed-zone prefix + unique databases on the shared stack."""

    settings: MarketSettings
    s3: Any
    connect: Callable[..., Any]

    @property
    def bucket(self) -> str:
        return self.settings.s3.bucket

    def key(self, dataset: str, relative: str) -> str:
        return f"{self.settings.s3.processed_prefix}/{dataset}/{relative}"

    def put_parquet(self, dataset: str, relative: str, table: pa.Table) -> str:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        key = self.key(dataset, relative)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=buf.getvalue())
        return key

    @staticmethod
    def bars(day: date, symbols: list[str], scale: float = 1.0) -> pa.Table:
        """One processed daily bar per symbol for ``day`` (``scale`` changes every price)."""
        n = len(symbols)
        base = [scale * (100 + i + day.toordinal() % 7) for i in range(n)]
        return pa.table(
            {
                "symbol": symbols,
                "trade_date": pa.array([day] * n, pa.date32()),
                "open": base,
                "high": [b + 2 for b in base],
                "low": [b - 2 for b in base],
                "close": [b + 1 for b in base],
                "volume": pa.array([1000 * (i + 1) for i in range(n)], pa.int64()),
                "source": ["synthetic"] * n,
                "ingested_at": pa.array([datetime(2024, 6, 1)] * n, pa.timestamp("ns", tz="UTC")),
            }
        )

    def put_text(self, dataset: str, relative: str, text: str) -> str:
        key = self.key(dataset, relative)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode())
        return key

    @staticmethod
    def checksum(rows: list[tuple[Any, ...]]) -> str:
        """Order-sensitive digest of rows (callers sort); includes load timestamps on purpose."""
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    def rows(self, fqn: str, order_by: str) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            query = f"select * from {fqn} order by {order_by}"  # noqa: S608 - test-built names
            return list(conn.cursor().execute(query).fetchall())
        finally:
            conn.close()


@pytest.fixture
def lake(
    local_stack: StackInfo, unique_name: UniqueNames, snowflake_conn_factory: Callable[..., Any]
) -> Iterator[Lake]:
    tag = unique_name("ld")
    settings = local_stack.settings.model_copy(deep=True)
    settings.s3.processed_prefix = f"{tag}/processed"
    settings.snowflake.batch_database = unique_name.ident("LB")
    settings.snowflake.stream_database = unique_name.ident("LS")
    s3 = local_stack.s3_client()
    yield Lake(settings=settings, s3=s3, connect=snowflake_conn_factory)
    listing = s3.list_objects_v2(Bucket=settings.s3.bucket, Prefix=f"{tag}/")
    for obj in listing.get("Contents", []):
        s3.delete_object(Bucket=settings.s3.bucket, Key=obj["Key"])
