"""The data files of a Delta table, read from the table's own log (delta-rs), not a listing.

``processed/historical`` is a Delta table (written by ``market_spark.lake``). Its current
snapshot — the newest checkpoint plus the JSON commits after it — names every live data
file with its size and commit time; files of a run that died before its commit, and files a
later commit removed, are not in it. Delta data files are immutable (a rewrite gets a new
name), so "what changed since the last load" is the snapshot's files that the load audit has
not recorded yet: the loader reads exactly those, without listing the prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from market_common.settings import MarketSettings
from market_loaders.errors import CommitLogError
from market_loaders.objects import ObjectInfo

DELTA_LOG_DIR = "_delta_log"


def storage_options(settings: MarketSettings) -> dict[str, str]:
    """delta-rs object-store options for the configured S3 endpoint (MinIO or AWS)."""
    s3 = settings.s3
    options = {"AWS_REGION": s3.region}
    if s3.endpoint_url:
        options["AWS_ENDPOINT_URL"] = s3.endpoint_url
        options["AWS_ALLOW_HTTP"] = str(s3.endpoint_url.startswith("http://")).lower()
    if s3.path_style:
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    if s3.access_key_id and s3.secret_access_key:
        options["AWS_ACCESS_KEY_ID"] = s3.access_key_id.get_secret_value()
        options["AWS_SECRET_ACCESS_KEY"] = s3.secret_access_key.get_secret_value()
    return options


def is_delta_table(s3: Any, bucket: str, root: str) -> bool:
    """Whether ``root`` holds a Delta log (one LIST of at most one key)."""
    prefix = f"{root.rstrip('/')}/{DELTA_LOG_DIR}/"
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))


def snapshot_files(
    settings: MarketSettings, bucket: str, root: str
) -> tuple[int, list[ObjectInfo]]:
    """(version, live data files) of the Delta table at ``s3://bucket/root``.

    The ETag of each :class:`ObjectInfo` is ``delta:<commit millis>``: a file's name never
    changes content, so name + size identify it for the audit without a HEAD per object.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    uri = f"s3://{bucket}/{root.rstrip('/')}"
    try:
        table = DeltaTable(uri, storage_options=storage_options(settings))
        actions = pa.table(table.get_add_actions(flatten=True))
    except DeltaError as exc:
        raise CommitLogError(
            f"cannot read the Delta log of {uri}: {exc}. Check the table was written by "
            "market-spark batch (or rebuild it with `market-spark batch --full`)."
        ) from exc
    files = [
        ObjectInfo(
            key=f"{root.rstrip('/')}/{unquote(path)}",
            etag=f"delta:{_millis(modified)}",
            size=int(size),
            last_modified=_as_datetime(modified),
        )
        for path, size, modified in zip(
            actions.column("path").to_pylist(),
            actions.column("size_bytes").to_pylist(),
            actions.column("modification_time").to_pylist(),
            strict=True,
        )
    ]
    return int(table.version()), files


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _millis(value: Any) -> int:
    return int(_as_datetime(value).timestamp() * 1000)
