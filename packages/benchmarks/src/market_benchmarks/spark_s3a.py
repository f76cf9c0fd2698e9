"""``market-bench spark-s3a``: the historical batch on the real path, table layouts compared.

Raw bars (``years`` x ``symbols``, the ingest layout ``year=YYYY/part-*.parquet``) are put in
the stack's object store; everything after that reads and writes the bucket:

* Spark :func:`~market_spark.batch.run_batch` through S3A for each layout of
  :data:`LAYOUTS` — a full rebuild, then, after one new trading day lands in raw, an
  incremental run (job start → commit, the ``duration_s`` of its summary);
* DuckDB doing the same transform (:func:`market_benchmarks.spark.duckdb_transform`) reading the
  raw files from and writing month-partitioned Parquet to the same bucket. DuckDB's httpfs
  extension is not installable here (extensions download from DuckDB's own site; PyPI's
  ``duckdb-ext-httpfs`` is built for an older DuckDB), so DuckDB reads and writes through
  pyarrow's S3 filesystem (a registered Arrow dataset) — the same objects, another client.

Outputs are cross-checked (rows, value checksum). Writes ``<results_dir>/spark_s3a.{json,md}``
and deletes its objects afterwards.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from market_benchmarks.spark import NOW, duckdb_counts, duckdb_transform, repo_results_dir

from market_common.clients import s3_client
from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_spark import lake, synthetic

log = get_logger(__name__)

LAYOUTS = (
    lake.DEFAULT_LAYOUT,
    lake.Layout("delta", "date"),
    lake.Layout("parquet", "date"),
)
FIRST_DAY = date(2015, 1, 1)
RAW_FILE_ROWS = 100_000  # the consumer's flush size order of magnitude


@dataclass
class LayoutResult:
    layout: str
    full_s: float
    full_files: int
    incremental_s: float
    incremental_dates: list[str]
    rows: int
    checksum: float


@dataclass
class S3ABenchResult:
    rows: int
    years: int
    symbols: int
    session_s: float
    layouts: list[LayoutResult]
    duckdb_s: float
    duckdb_rows: int
    ratio_spark_to_duckdb: float
    incremental_s: float
    incremental_goal_s: float
    outputs_match: bool
    load_average: float
    cores: int
    spark_master: str
    generated_at: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_markdown(self) -> str:
        lines = [
            "# Spark batch on the real path (s3a): table layouts",
            "",
            f"{self.rows:,} raw rows ({self.years} years x {self.symbols} symbols) in MinIO; "
            f"{self.cores} cores, load average {self.load_average:.1f}, master "
            f"`{self.spark_master}`; {self.generated_at}. Session start {self.session_s:.1f} s "
            "(not in the figures).",
            "",
            "| layout | full rebuild s | data files | incremental day s | dates replaced |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for r in self.layouts:
            lines.append(
                f"| {r.layout} | {r.full_s:.2f} | {r.full_files} | {r.incremental_s:.2f} "
                f"| {', '.join(r.incremental_dates)} |"
            )
        lines += [
            f"| DuckDB, same transform, same bucket | {self.duckdb_s:.2f} | | | |",
            "",
            f"Chosen layout `{self.layouts[0].layout}`: full rebuild "
            f"{self.ratio_spark_to_duckdb:.2f}x DuckDB (goal ≤ 2x: "
            f"**{'met' if self.ratio_spark_to_duckdb <= 2 else 'not met'}**); incremental day "
            f"{self.incremental_s:.2f} s (goal ≤ {self.incremental_goal_s:g} s: "
            f"**{'met' if self.incremental_s <= self.incremental_goal_s else 'not met'}**). "
            f"Outputs identical (rows, value checksum) across layouts and DuckDB: "
            f"{self.outputs_match}.",
            "",
            *self.notes,
            "",
        ]
        return "\n".join(lines)


def _put_raw(s3: Any, bucket: str, prefix: str, frame: Any, name: str) -> None:
    years = [d.year for d in frame["trade_date"]]
    for year, part in frame.assign(_year=years).groupby("_year"):
        part = part.drop(columns="_year")
        for i in range(0, len(part), RAW_FILE_ROWS):
            body = synthetic.to_parquet_bytes(part.iloc[i : i + RAW_FILE_ROWS], "historical")
            key = f"{prefix}/year={year}/{name}-{i // RAW_FILE_ROWS:05d}.parquet"
            s3.put_object(Bucket=bucket, Key=key, Body=body)


def _delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def _table_stats(spark: Any, uri: str, layout: lake.Layout) -> tuple[int, float, int]:
    from pyspark.sql import functions as F

    df = spark.read.format(layout.format).load(uri)
    row = df.agg(F.count(F.lit(1)), F.sum(F.col("close") * F.col("volume"))).first()
    return int(row[0]), float(row[1] or 0.0), len(df.inputFiles())


def run_duckdb_s3(settings: MarketSettings, raw_prefix: str, out_prefix: str) -> dict[str, Any]:
    """DuckDB's transform over the bucket's raw files, output written back (month Parquet)."""
    import duckdb
    import pyarrow.dataset as ds
    from pyarrow import fs

    s3 = settings.s3
    filesystem = fs.S3FileSystem(
        access_key=s3.access_key_id.get_secret_value() if s3.access_key_id else None,
        secret_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        endpoint_override=s3.endpoint_url,
        region=s3.region,
        scheme="http" if (s3.endpoint_url or "").startswith("http://") else "https",
    )
    raw = ds.dataset(f"{s3.bucket}/{raw_prefix}", filesystem=filesystem, format="parquet")
    con = duckdb.connect()
    con.register("raw_bars", raw)
    duckdb_transform(con, "raw_bars")
    processed = con.execute(
        "SELECT * EXCLUDE (date), strftime(trade_date, '%Y-%m') AS month FROM processed "
        "ORDER BY month, trade_date, symbol"
    ).to_arrow_table()
    ds.write_dataset(
        processed, f"{s3.bucket}/{out_prefix}", filesystem=filesystem, format="parquet",
        partitioning=["month"], partitioning_flavor="hive", existing_data_behavior="delete_matching",
    )  # fmt: skip
    return duckdb_counts(con)


def main(
    settings: MarketSettings,
    *,
    years: int = 10,
    symbols: int = 500,
    results_dir: str | None = None,
) -> S3ABenchResult:
    """Run the s3a comparison and write ``spark_s3a.json`` / ``spark_s3a.md``."""
    from market_spark.batch import run_batch
    from market_spark.session import build_session

    s3, bucket = s3_client(settings), settings.s3.bucket
    root = f"bench/s3a-{uuid.uuid4().hex[:8]}"
    days = synthetic.business_days(FIRST_DAY, years * 252 + 1)
    names = synthetic.symbols(symbols)
    try:
        history = synthetic.raw_historical(names, days[:-1], seed=42)
        _put_raw(s3, bucket, f"{root}/raw", history, "part")
        t0 = time.perf_counter()
        spark = build_session(settings, app_name="market-spark-bench-s3a", ui_enabled=False)
        session_s = time.perf_counter() - t0
        raw_uri = f"s3a://{bucket}/{root}/raw"

        def output(layout: lake.Layout, zone: str = "processed") -> str:
            return f"s3a://{bucket}/{root}/{layout.name}/{zone}"

        fulls: dict[str, float] = {}
        for layout in LAYOUTS:
            summary = run_batch(
                settings, spark=spark, now=NOW, full=True, layout=layout, input_uri=raw_uri,
                output_uri=output(layout), quarantine_uri=output(layout, "quarantine"),
            )  # fmt: skip
            fulls[layout.name] = summary.duration_s
            log.info("full rebuild", extra={"layout": layout.name, "s": summary.duration_s})
        t0 = time.perf_counter()
        duck = run_duckdb_s3(settings, f"{root}/raw", f"{root}/duckdb/processed")
        duck_s = time.perf_counter() - t0

        new_day = synthetic.raw_historical(names, days[-1:], seed=7)
        _put_raw(s3, bucket, f"{root}/raw", new_day, "daily")
        results = []
        for layout in LAYOUTS:
            summary = run_batch(
                settings, spark=spark, now=NOW, layout=layout, input_uri=raw_uri,
                output_uri=output(layout), quarantine_uri=output(layout, "quarantine"),
            )  # fmt: skip
            rows, checksum, files = _table_stats(spark, output(layout), layout)
            results.append(
                LayoutResult(
                    layout=layout.name, full_s=fulls[layout.name], full_files=files,
                    incremental_s=summary.duration_s,
                    incremental_dates=summary.partitions_written, rows=rows, checksum=checksum,
                )  # fmt: skip
            )
        spark.stop()
    finally:
        _delete_prefix(s3, bucket, f"{root}/")

    total = len(history) + len(new_day)
    first = results[0]
    same = all(
        r.rows == first.rows and abs(r.checksum - first.checksum) <= 1e-9 * abs(first.checksum)
        for r in results
    )
    # DuckDB ran before the new day: compare it with the full rebuild's row count.
    duck_match = int(duck["rows_out"]) == first.rows - symbols
    result = S3ABenchResult(
        rows=total,
        years=years,
        symbols=symbols,
        session_s=round(session_s, 2),
        layouts=results,
        duckdb_s=round(duck_s, 3),
        duckdb_rows=int(duck["rows_out"]),
        ratio_spark_to_duckdb=round(first.full_s / duck_s, 2),
        incremental_s=first.incremental_s,
        incremental_goal_s=30.0,
        outputs_match=same and duck_match,
        load_average=round(os.getloadavg()[1], 2),
        cores=os.cpu_count() or 0,
        spark_master=settings.spark.master,
        generated_at=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        notes=[
            "Full rebuild and incremental times are `run_batch`'s own `duration_s` (planning, "
            "raw listing, read, transform, commit, vacuum, state). Parquet `date=` is the "
            "former layout: every file is committed by S3A renames (copy + delete on S3).",
        ],
    )
    out = Path(results_dir) if results_dir else repo_results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "spark_s3a.json").write_text(result.to_json() + "\n")
    (out / "spark_s3a.md").write_text(result.to_markdown())
    log.info("s3a benchmark written", extra={"dir": str(out)})
    return result
