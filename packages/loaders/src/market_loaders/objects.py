"""Which processed-zone objects are data, and which of those Spark actually committed.

A Structured Streaming file sink writes part files first and lists them in
``<sink>/_spark_metadata/<batchId>`` only when the batch commits; files of a killed batch stay
behind unlisted. The log is compacted every few batches into ``<id>.compact`` (holding
every entry up to ``id``), after which older batch files may be deleted, so the committed set
is: the newest ``.compact`` file plus every plain batch file after it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

from market_loaders.errors import CommitLogError

COMMIT_LOG_DIR = "_spark_metadata"
_LOG_NAME = re.compile(r"^(\d+)(\.compact)?$")
_PARTITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class ObjectInfo:
    """An S3 object as listed: the audit compares ETag and size to detect changes."""

    key: str
    etag: str
    size: int
    last_modified: datetime


def list_objects(s3: Any, bucket: str, prefix: str) -> list[ObjectInfo]:
    """All objects under ``prefix`` (paginated), sorted by key."""
    out: list[ObjectInfo] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out.append(
                ObjectInfo(
                    key=obj["Key"],
                    etag=str(obj.get("ETag", "")).strip('"'),
                    size=int(obj["Size"]),
                    last_modified=obj["LastModified"],
                )
            )
    return sorted(out, key=lambda o: o.key)


def is_data_file(relative_key: str) -> bool:
    """Parquet part files only: Spark/Hadoop bookkeeping lives in ``_``/``.``-prefixed names."""
    parts = relative_key.split("/")
    if any(p.startswith(("_", ".")) or not p for p in parts):
        return False
    return parts[-1].endswith(".parquet")


def partition_values(relative_key: str) -> dict[str, str]:
    """Hive partition values from the directories of a key (``date=2024-01-02/part-…``)."""
    values: dict[str, str] = {}
    for part in relative_key.split("/")[:-1]:
        if m := _PARTITION.match(part):
            values[m[1]] = unquote(m[2])
    return values


def select_log_files(names: Iterable[str]) -> list[str]:
    """The log files that together describe the committed set, oldest first."""
    batches: dict[int, str] = {}
    compacts: list[int] = []
    for name in names:
        if m := _LOG_NAME.fullmatch(name):
            batch = int(m[1])
            if m[2]:
                compacts.append(batch)
                batches[batch] = name  # a compact file supersedes a plain one of the same id
            else:
                batches.setdefault(batch, name)
    start = max(compacts) if compacts else -1
    return [batches[b] for b in sorted(batches) if b >= start]


def parse_log(texts: Iterable[tuple[str, str]], bucket: str) -> set[str]:
    """Object keys added (and not deleted) by the given ``(name, text)`` log files."""
    committed: set[str] = set()
    for name, text in texts:
        lines = text.splitlines()
        if not lines or not lines[0].startswith("v"):
            raise CommitLogError(f"{COMMIT_LOG_DIR}/{name}: missing version header")
        for lineno, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                uri = urlparse(entry["path"])
                action = entry.get("action", "add")
            except (ValueError, KeyError, TypeError) as exc:
                raise CommitLogError(
                    f"{COMMIT_LOG_DIR}/{name} line {lineno}: not a sink log entry ({exc})"
                ) from exc
            if uri.netloc and uri.netloc != bucket:
                continue  # another bucket's file cannot be one of ours
            key = unquote(uri.path.lstrip("/"))
            if action == "delete":
                committed.discard(key)
            else:
                committed.add(key)
    return committed


def committed_keys(s3: Any, bucket: str, root: str) -> set[str] | None:
    """Committed object keys from ``<root>/_spark_metadata``; ``None`` when there is no log."""
    log_prefix = f"{root.rstrip('/')}/{COMMIT_LOG_DIR}/"
    listed = list_objects(s3, bucket, log_prefix)
    names = {o.key[len(log_prefix) :]: o.key for o in listed if "/" not in o.key[len(log_prefix) :]}
    if not names:
        return None
    texts: list[tuple[str, str]] = []
    for name in select_log_files(names):
        try:
            body = s3.get_object(Bucket=bucket, Key=names[name])["Body"].read()
            texts.append((name, body.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise CommitLogError(f"{names[name]}: not UTF-8 text") from exc
    return parse_log(texts, bucket)


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
