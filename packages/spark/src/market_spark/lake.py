"""The processed historical table: a Delta Lake table, and what changed in the raw zone.

**Layout (chosen by measurement, ``benchmarks/results/spark.md``).** ``processed/historical``
is a Delta table partitioned by ``month`` (``yyyy-MM`` of ``trade_date``). Delta writes each
data file once, at its final name, and commits by writing one ``_delta_log/<version>.json``
object, so a commit costs no renames (S3A's rename is a copy + delete per file) and is atomic:
a run killed before its log entry leaves files no reader sees, and the next commit's vacuum
deletes them. Month partitions keep a full rebuild at one file per month (120 for 10 years,
~10k rows each at 500 symbols) instead of one per trade date (2,520 of ~500 rows), which is
what Spark's per-file writer cost and S3's per-object cost punish.

**Writes.** A full rebuild overwrites the table. An incremental or date-range run replaces
exactly the trade dates it recomputed (``replaceWhere trade_date IN (…)``): Delta removes the
rows of those dates (files that hold only them are dropped, mixed files are rewritten without
them) and adds the new rows, in one commit. Writes are static overwrites whatever the session's
``partitionOverwriteMode`` says. After a commit, :func:`vacuum` (``VACUUM … RETAIN 0 HOURS``
without its Spark jobs) deletes files no longer in the table, so every data file under the
table is live: file-listing readers (row counts, zone snapshots) see exactly the table, while
the loader reads the log.

**What changed.** :class:`RawInputs` is the listing (path, size, modification time) of the raw
files under the input. The batch stores the listing it processed in
``<table>/_state/raw_inputs.json`` *after* its commit, so a crash between the two only makes the
next run recompute the same dates again (an idempotent replace). Raw files are written once by
the consumer; a correction is a new delivery in a new file, which changes the dates it holds.

Single writer: Delta's S3 log store (``S3SingleDriverLogStore``) is safe with one writing
driver at a time, which is how the DAG runs the batch (one active run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from market_spark import storage
from market_spark.errors import SparkJobError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MONTH_COLUMN = "month"
STATE_FILE = "_state/raw_inputs.json"


@dataclass(frozen=True)
class Layout:
    """How the processed table is stored: ``delta`` or plain ``parquet``, by month or date.

    The product uses :data:`DEFAULT_LAYOUT`; the others exist so the benchmark measures the
    alternatives through the same job. Parquet replaces dates by dynamic partition overwrite
    (rename-based commit), so it supports date-granular replacement only with ``date``.
    """

    format: str = "delta"
    partition: str = MONTH_COLUMN

    def __post_init__(self) -> None:
        if self.format not in ("delta", "parquet") or self.partition not in (MONTH_COLUMN, "date"):
            raise ValueError(f"unsupported layout {self}")
        if self.format == "parquet" and self.partition != "date":
            raise ValueError(
                "a Parquet table can replace single dates only when partitioned by date"
            )

    @property
    def name(self) -> str:
        return f"{self.format}-{self.partition}"

    def with_partition(self, df: DataFrame) -> DataFrame:
        """``df`` plus the partition column derived from ``trade_date``."""
        from pyspark.sql import functions as F

        if self.partition == "date":
            return df.withColumn("date", F.col("trade_date"))
        return df.withColumn(MONTH_COLUMN, F.date_format(F.col("trade_date"), "yyyy-MM"))


DEFAULT_LAYOUT = Layout()


class LakeStateError(SparkJobError):
    """The stored raw-input state of a table cannot be read; rerun with ``--full``."""


@dataclass(frozen=True)
class RawFile:
    """One raw data file as the Hadoop FileSystem lists it."""

    path: str
    size: int
    modified_ms: int


@dataclass(frozen=True)
class RawInputs:
    """The raw files of an input location; compared between runs to find what changed."""

    files: Mapping[str, RawFile]

    def changed_since(self, previous: RawInputs) -> list[str]:
        """Paths that are new or whose size or modification time differ from ``previous``."""
        return sorted(p for p, f in self.files.items() if previous.files.get(p) != f)

    def to_json(self) -> str:
        return json.dumps(
            {"files": {p: [f.size, f.modified_ms] for p, f in sorted(self.files.items())}}
        )

    @classmethod
    def from_json(cls, text: str, *, where: str) -> RawInputs:
        try:
            entries = json.loads(text)["files"]
            files = {p: RawFile(p, int(s), int(m)) for p, (s, m) in entries.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise LakeStateError(
                f"{where} is not a raw-input state file ({exc}); run `market-spark batch --full` "
                "to rebuild the table and rewrite it"
            ) from exc
        return cls(files)


def list_raw_files(spark: SparkSession, uri: str) -> RawInputs:
    """Every ``.parquet`` file below ``uri`` (recursively), skipping ``_``/``.`` names."""
    fs, path = storage._fs_path(spark, uri)
    files: dict[str, RawFile] = {}
    if not fs.exists(path):
        return RawInputs(files)
    it = fs.listFiles(path, True)
    root = str(fs.makeQualified(path)).rstrip("/") + "/"
    while it.hasNext():
        status = it.next()
        full = str(status.getPath())
        relative = full[len(root) :] if full.startswith(root) else full
        if not full.endswith(".parquet") or any(
            part.startswith(("_", ".")) for part in relative.split("/")
        ):
            continue
        files[full] = RawFile(full, int(status.getLen()), int(status.getModificationTime()))
    return RawInputs(files)


def load_state(spark: SparkSession, table_uri: str) -> RawInputs | None:
    """The raw inputs the last committed run processed; ``None`` before the first run."""
    uri = f"{table_uri.rstrip('/')}/{STATE_FILE}"
    if not storage.exists(spark, uri):
        return None
    return RawInputs.from_json(storage.read_text(spark, uri), where=uri)


def save_state(spark: SparkSession, table_uri: str, inputs: RawInputs) -> None:
    """Record ``inputs`` as processed; call only after the table commit succeeded."""
    storage.write_text(spark, f"{table_uri.rstrip('/')}/{STATE_FILE}", inputs.to_json())


def table_exists(spark: SparkSession, uri: str, layout: Layout = DEFAULT_LAYOUT) -> bool:
    """Whether a table of ``layout`` was committed at ``uri`` (a Delta log / any data)."""
    marker = "_delta_log" if layout.format == "delta" else STATE_FILE
    return storage.exists(spark, f"{uri.rstrip('/')}/{marker}")


def dates_predicate(dates: Iterable[date], column: str = "trade_date") -> str:
    """SQL predicate selecting ``dates`` (a ``replaceWhere`` condition); never empty."""
    listed = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(dates)))
    if not listed:
        raise ValueError("dates_predicate needs at least one date")
    return f"{column} IN ({listed})"


def write_table(
    df: DataFrame,
    uri: str,
    *,
    replace_where: str | None = None,
    layout: Layout = DEFAULT_LAYOUT,
) -> None:
    """Commit ``df`` to the table at ``uri``: overwrite it, or replace ``replace_where``.

    ``df`` carries ``layout``'s partition column and is in the order the files should have
    (the caller sorts). Delta checks that every written row satisfies ``replace_where``; a
    Parquet table replaces the date partitions present in ``df`` instead.
    """
    writer = df.write.format(layout.format).mode("overwrite").partitionBy(layout.partition)
    if layout.format == "parquet":
        mode = "dynamic" if replace_where is not None else "static"
        writer.option("partitionOverwriteMode", mode).save(uri)
        return
    # Static: the session's dynamic mode conflicts with replaceWhere, and a full rebuild
    # must drop partitions that no longer have rows.
    writer = writer.option("partitionOverwriteMode", "static")
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    else:
        writer = writer.option("overwriteSchema", "true")
    writer.save(uri)


def vacuum(spark: SparkSession, uri: str, layout: Layout = DEFAULT_LAYOUT) -> int:
    """Delete every data file under a Delta table that its current version does not reference.

    What ``VACUUM … RETAIN 0 HOURS`` does, without its Spark jobs (a listing job, a cached
    frame, a count: minutes on a busy 2-core machine): one recursive listing through the
    Hadoop FileSystem minus the snapshot's files. Safe with the single writer this table has.
    Returns the number of files deleted.
    """
    if layout.format != "delta":
        return 0
    live = set(spark.read.format("delta").load(uri).inputFiles())
    fs, path = storage._fs_path(spark, uri)
    root = str(fs.makeQualified(path)).rstrip("/") + "/"
    it = fs.listFiles(path, True)
    doomed = []
    while it.hasNext():
        status_path = it.next().getPath()
        full = str(status_path)
        relative = full[len(root) :] if full.startswith(root) else full
        if any(part.startswith(("_", ".")) for part in relative.split("/")):
            continue  # the log, the state, run summaries, checksums
        if full not in live:
            doomed.append(status_path)
    for doomed_path in doomed:
        fs.delete(doomed_path, False)
    return len(doomed)
