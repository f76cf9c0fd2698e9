"""Benchmark: the bulk loader vs the seed's row-by-row MERGE, same warehouse, same run.

The processed zone is laid out as the Spark batch writes it: a Delta table partitioned by
``month`` (here written with delta-rs, one commit per year), read by the loader from its log
(s3a/real path: MinIO, not local files). After the full history, one new trading day is
committed and loaded incrementally (goal ≤ 10 s): only the new day's file is read.

The seed's ``load_to_snowflake.py`` sent one ``MERGE`` per row (client-side ``%s``
parameters). That path is far too slow to run on the full dataset, so it runs on a sample of
``row_by_row_rows`` rows and its per-row cost is extrapolated to the full row count (stated in
the report). The bulk number is end to end: S3 listing and reads, normalisation, PUT, COPY,
MERGE and audit. Results go to ``<out_dir>/warehouse.json`` (key ``loader``) and a marked
section of ``<out_dir>/warehouse.md``, leaving other sections of those files alone.
"""

from __future__ import annotations

import json
import platform
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from market_common.clients import s3_client, snowflake_connection
from market_common.settings import MarketSettings
from market_loaders import sql
from market_loaders.datasets import HISTORICAL, Dataset
from market_loaders.loader import ensure_tables, load_historical, target_ref
from market_loaders.sql import TableRef

SECTION = "loader"


def historical_table(symbols: int, days: int, day0: date, *, seed: int = 7) -> list[pa.Table]:
    """One deterministic processed-zone file per trade date (as the Spark batch job writes)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    names = [f"S{i:04d}" for i in range(symbols)]
    tables = []
    for d in range(days):
        close = [rng.uniform(10, 500) for _ in names]
        tables.append(
            pa.table(
                {
                    "symbol": names,
                    "trade_date": pa.array([day0 + timedelta(days=d)] * symbols, pa.date32()),
                    "open": [c * rng.uniform(0.98, 1.02) for c in close],
                    "high": [c * 1.03 for c in close],
                    "low": [c * 0.97 for c in close],
                    "close": close,
                    "volume": pa.array(
                        [rng.randrange(1_000, 10_000_000) for _ in names], pa.int64()
                    ),
                    "source": ["synthetic"] * symbols,
                    "ingested_at": pa.array([datetime(2024, 1, 1)] * symbols, pa.timestamp("us")),
                }
            )
        )
    return tables


def commit_delta(settings: MarketSettings, uri: str, table: pa.Table) -> None:
    """Append ``table`` to the Delta table at ``uri`` (month partitions, as Spark writes)."""
    from deltalake import write_deltalake

    from market_loaders.delta_log import storage_options

    month = pc.strftime(table.column("trade_date"), format="%Y-%m")
    write_deltalake(
        uri,
        table.append_column("month", month),
        mode="append",
        partition_by=["month"],
        storage_options=storage_options(settings) | {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"},
    )


def row_by_row_merge(target: TableRef, dataset: Dataset) -> str:
    """The seed's statement: one MERGE per row, values as client-side ``%s`` parameters."""
    cols = [c.name for c in dataset.value_columns]
    key = dataset.key
    ts = dataset.load_ts_column
    select = ", ".join(f"%s as {c}" for c in cols)
    on = " and ".join(f"t.{k} = s.{k}" for k in key)
    sets = ", ".join(f"{c} = s.{c}" for c in cols if c not in key)
    # Identifiers come from TableRef/Column (validated); values are %s parameters.
    return (
        f"merge into {target.fqn} as t using (select {select}) as s on {on} "  # noqa: S608
        f"when matched then update set {sets}, {ts} = current_timestamp() "
        f"when not matched then insert ({', '.join(cols)}, {ts}) "
        f"values ({', '.join(f's.{c}' for c in cols)}, current_timestamp())"
    )


def run_bench(
    settings: MarketSettings, *, rows: int, row_by_row_rows: int, out_dir: Path
) -> dict[str, Any]:
    """Run both loaders against fresh names and write the report section; return it."""
    tag = uuid.uuid4().hex[:8]
    settings = settings.model_copy(deep=True)
    settings.s3.processed_prefix = f"bench-{tag}/processed"
    settings.snowflake.batch_database = f"BENCH_LOADER_{tag.upper()}"
    symbols = 500
    days = max(1, rows // symbols)
    tables = historical_table(symbols, days, date(2015, 1, 1))
    total_rows = sum(t.num_rows for t in tables)

    s3 = s3_client(settings)
    uri = f"s3://{settings.s3.bucket}/{settings.s3.processed_prefix}/historical"
    history, new_day = pa.concat_tables(tables[:-1]), tables[-1]
    years = pc.year(history.column("trade_date"))
    for year in sorted(set(years.to_pylist())):
        commit_delta(settings, uri, history.filter(pc.equal(years, year)))

    import snowflake.connector  # noqa: F401 - import once, outside the timed section

    started = time.perf_counter()
    first = load_historical(settings, s3=s3)
    bulk_s = time.perf_counter() - started
    started = time.perf_counter()
    second = load_historical(settings, s3=s3)
    noop_s = time.perf_counter() - started
    commit_delta(settings, uri, new_day)
    started = time.perf_counter()
    daily = load_historical(settings, s3=s3)
    daily_s = time.perf_counter() - started

    # Row-by-row: same warehouse, same columns, a sibling table, the seed's connection style.
    target = target_ref(HISTORICAL, settings)
    rbr_target = target.sibling(f"{target.name}_ROW_BY_ROW")
    sample = pa.concat_tables(tables).slice(0, row_by_row_rows).to_pylist()
    # The loader's own statements bind with qmark (as its connections do); the seed's
    # statement below uses client-side %s, so each gets a connection in its own style.
    setup = snowflake_connection(
        settings, database=target.database, schema=target.schema, paramstyle="qmark"
    )
    try:
        audit = target.sibling(settings.snowflake.audit_table)
        ensure_tables(setup.cursor(), HISTORICAL, rbr_target, audit)
    finally:
        setup.close()
    conn = snowflake_connection(settings, database=target.database, schema=target.schema)
    try:
        cur = conn.cursor()
        statement = row_by_row_merge(rbr_target, HISTORICAL)
        started = time.perf_counter()
        for r in sample:
            cur.execute(
                statement,
                (r["symbol"], r["trade_date"], r["open"], r["high"], r["low"], r["close"],
                 r["volume"], r["source"]),
            )  # fmt: skip
        rbr_s = time.perf_counter() - started
        count_sql = f"select count(*) from {rbr_target.fqn}"  # noqa: S608 - validated name
        cur.execute(count_sql)
        (rbr_count,) = cur.fetchone() or (0,)
        cur.execute(sql.drop_table(rbr_target))
    finally:
        conn.close()

    bulk_rps = first.rows_merged / bulk_s
    per_row_s = rbr_s / len(sample)
    rbr_rps = 1 / per_row_s
    report: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "warehouse": (
            "fakesnow emulator" if settings.snowflake.is_local else settings.snowflake.account
        ),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "dataset": {"rows": total_rows, "files": len(tables), "symbols": symbols, "days": days},
        "bulk": {
            "method": "S3 read + Arrow normalise + PUT + COPY INTO staging + one MERGE + audit",
            "seconds": round(bulk_s, 3),
            "rows_merged": first.rows_merged,
            "rows_per_s": round(bulk_rps, 1),
        },
        "rerun_noop": {
            "seconds": round(noop_s, 3),
            "files_skipped": second.files_skipped,
            "rows_merged": second.rows_merged,
        },
        "s3a": {
            "layout": "Delta table on MinIO partitioned by month, files from the Delta log",
            "full_history_seconds": round(bulk_s, 3),
            "full_history_files": first.files_loaded,
        },
        "incremental": {
            "method": "one new trading day committed, then an incremental load",
            "seconds": round(daily_s, 3),
            "files_loaded": daily.files_loaded,
            "files_skipped": daily.files_skipped,
            "rows_merged": daily.rows_merged,
            "goal_seconds": 10,
            "meets_goal": daily_s <= 10,
        },
        "row_by_row": {
            "method": "one MERGE statement per row (the seed's load_to_snowflake.py)",
            "sample_rows": len(sample),
            "rows_in_table": rbr_count,
            "seconds": round(rbr_s, 3),
            "rows_per_s": round(rbr_rps, 2),
            "extrapolated_seconds_for_dataset": round(per_row_s * total_rows, 1),
            "note": "measured on a sample into an empty table and extrapolated linearly per row; "
            "per-row MERGE cost grows with table size, so this flatters row-by-row",
        },
        "speedup": round(bulk_rps / rbr_rps, 1),
        "goal_speedup": 100,
    }
    report["meets_goal"] = report["speedup"] >= report["goal_speedup"]
    write_report(report, out_dir)
    return report


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    """Merge the ``loader`` section into warehouse.json / warehouse.md (other sections kept)."""
    b, r = report["bulk"], report["row_by_row"]
    markdown = "\n".join(
        [
            "## Loader: bulk MERGE vs row-by-row MERGE",
            "",
            f"Measured {report['measured_at']} on {report['warehouse']}; "
            f"{report['dataset']['rows']} rows in {report['dataset']['files']} files.",
            "",
            "| method | rows | seconds | rows/s |",
            "|---|---:|---:|---:|",
            f"| bulk ({b['method']}) | {b['rows_merged']} | {b['seconds']} | {b['rows_per_s']} |",
            f"| row-by-row ({r['method']}) | {r['sample_rows']} (sample) | {r['seconds']} "
            f"| {r['rows_per_s']} |",
            "",
            f"**Speed-up: {report['speedup']}x** (goal ≥ {report['goal_speedup']}x). "
            f"Row-by-row would need ~{r['extrapolated_seconds_for_dataset']} s for the full "
            f"dataset ({r['note']}). Re-running the bulk load skipped "
            f"{report['rerun_noop']['files_skipped']} files and merged "
            f"{report['rerun_noop']['rows_merged']} rows in {report['rerun_noop']['seconds']} s.",
            "",
            f"**s3a / incremental** ({report['s3a']['layout']}): full history "
            f"{report['s3a']['full_history_seconds']} s ({report['s3a']['full_history_files']} "
            f"files); one new trading day {report['incremental']['seconds']} s "
            f"({report['incremental']['files_loaded']} file loaded, "
            f"{report['incremental']['files_skipped']} skipped, "
            f"{report['incremental']['rows_merged']} rows merged; goal ≤ 10 s: "
            f"{'met' if report['incremental']['meets_goal'] else 'not met'}).",
        ]
    )
    merge_section(out_dir, SECTION, report, markdown)


def merge_section(out_dir: Path, section: str, report: dict[str, Any], markdown: str) -> None:
    """Put one benchmark's ``section`` into warehouse.json and warehouse.md, keeping the others.

    The loader and the dbt benchmarks share these files; each owns a key of the JSON and a
    block of the Markdown between ``<!-- section:start -->`` / ``<!-- section:end -->``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "warehouse.json"
    doc = json.loads(json_path.read_text()) if json_path.is_file() else {}
    doc[section] = report
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    block = f"{start}\n{markdown}\n{end}"
    md_path = out_dir / "warehouse.md"
    text = md_path.read_text() if md_path.is_file() else "# Warehouse benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    md_path.write_text(text)
