"""Bulk, idempotent, incremental-by-file loads from the processed zone into Snowflake.

One load = the dataset's committed data files (a Delta table's from its log, see
:mod:`market_loaders.delta_log`; a stream sink's from listing + ``_spark_metadata``) → connect → idempotent
DDL → read the audit → decide per file → normalise the files to load into a few local
Parquet files → PUT them on a temporary stage → ONE ``COPY INTO`` a transient staging table
→ ONE ``MERGE`` into the target → ONE array-bound audit insert.

Crash safety by ordering, not by a transaction: fakesnow cannot run a MERGE inside an explicit
transaction (it rewrites MERGE into several statements, one of them DDL), and the code must be
the same for Snowflake and the emulator. The MERGE only writes rows whose values differ, so it
is idempotent; the audit row of a file is written *after* its MERGE. A loader killed between
the two leaves the file unaudited, and the next run re-merges it with no visible change.

Other fakesnow limits the SQL stays clear of: no bind parameters inside MERGE (the load
timestamp travels in the staged file instead), no COPY INTO a temporary table (hence a
transient staging table, dropped afterwards), no DROP STAGE (the stage is temporary).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from market_common.clients import (
    SnowflakeAuthError,
    SnowflakeUnavailableError,
    retry,
    s3_client,
    snowflake_connection,
)
from market_common.logging import get_logger
from market_common.runtime import utc_now
from market_common.settings import MarketSettings
from market_loaders import delta_log, sql
from market_loaders.audit import AuditRecord, plan_files
from market_loaders.datasets import HISTORICAL, REALTIME, Dataset
from market_loaders.errors import FileSchemaError, LoadFailedError
from market_loaders.normalise import normalise
from market_loaders.objects import (
    ObjectInfo,
    committed_keys,
    is_data_file,
    list_objects,
    partition_values,
    read_object,
)
from market_loaders.sql import TableRef

log = get_logger(__name__)

Connect = Callable[..., Any]
# on_progress(phase, done, total): "plan" (files seen), "stage" (files read), "merge" (1 of 1).
OnProgress = Callable[[str, int, int], None]
# Rows per local stage file: bounds client memory; Snowflake loads the files in parallel.
STAGE_FILE_ROWS = 500_000
# Snowflake error numbers meaning "the role may not do this": retrying will not help.
_PERMISSION_ERRNOS = frozenset({3001, 3003, 3041})


@dataclass(frozen=True)
class RejectedFile:
    key: str
    reason: str


@dataclass
class LoadResult:
    """What one load did; ``rows_merged`` counts rows inserted or changed in the target."""

    dataset: str
    target_table: str
    run_id: str
    loaded_at: datetime
    full_refresh: bool
    files_seen: int = 0
    files_uncommitted: int = 0
    files_skipped: int = 0
    files_loaded: int = 0
    files_rejected: list[RejectedFile] = field(default_factory=list)
    rows_staged: int = 0
    rows_rejected: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    duration_s: float = 0.0

    @property
    def rows_merged(self) -> int:
        return self.rows_inserted + self.rows_updated

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["loaded_at"] = self.loaded_at.isoformat()
        out["rows_merged"] = self.rows_merged
        return out


@dataclass
class _Staged:
    directory: Path
    files: list[tuple[ObjectInfo, int]] = field(default_factory=list)  # (object, rows read)
    rejected: list[RejectedFile] = field(default_factory=list)
    rows_staged: int = 0
    rows_rejected: int = 0


def ntz_now() -> datetime:
    """Naive UTC, microsecond precision: the TIMESTAMP_NTZ convention of the warehouse."""
    return utc_now().replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as naive UTC (aware values are converted, naive ones are taken as UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def load_historical(settings: MarketSettings, **kwargs: Any) -> LoadResult:
    """Load ``processed/historical`` into ``<batch_database>.<schema>.<batch_table>``."""
    return load_dataset(HISTORICAL, settings, **kwargs)


def load_realtime(settings: MarketSettings, **kwargs: Any) -> LoadResult:
    """Load the committed files of ``processed/realtime`` into the stream table."""
    return load_dataset(REALTIME, settings, **kwargs)


def target_ref(dataset: Dataset, settings: MarketSettings) -> TableRef:
    sf = settings.snowflake
    return TableRef(dataset.database_of(sf), sf.schema_, dataset.table_of(sf))


def load_dataset(
    dataset: Dataset,
    settings: MarketSettings,
    *,
    full_refresh: bool = False,
    prefix: str | None = None,
    s3: Any = None,
    connect: Connect = snowflake_connection,
    clock: Callable[[], datetime] = ntz_now,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 3,
    work_dir: Path | None = None,
    on_progress: OnProgress | None = None,
) -> LoadResult:
    """Load new/changed files of ``dataset`` (all files with ``full_refresh``).

    ``prefix`` narrows the files to keys under ``<processed>/<dataset>/<prefix>`` (e.g.
    ``date=2024-05``). Transient warehouse errors retry the whole load (it is idempotent)
    with backoff through ``sleep``; raises :class:`SnowflakeUnavailableError` when they
    persist, :class:`SnowflakeAuthError` on rejected credentials or missing privileges and
    :class:`LoadFailedError` when a statement fails. ``on_progress`` is told each phase's
    progress (a CLI's progress display); a retried attempt reports its phases again.
    """
    from snowflake.connector import errors as sf_errors

    started = time.perf_counter()
    target = target_ref(dataset, settings)
    loaded_at = naive_utc(clock())
    result = LoadResult(
        dataset=dataset.name,
        target_table=target.fqn,
        run_id=uuid.uuid4().hex[:12],
        loaded_at=loaded_at,
        full_refresh=full_refresh,
    )
    client = s3 if s3 is not None else s3_client(settings)
    bucket = settings.s3.bucket
    root = f"{settings.s3.processed_prefix.strip('/')}/{dataset.subdir}/"
    data = _discover(dataset, settings, client, bucket, root, prefix, result)

    def attempt() -> None:
        _reset_counters(result)
        _apply(
            dataset, settings, data, result,
            target=target, client=client, bucket=bucket, root=root,
            connect=connect, sleep=sleep, work_dir=work_dir,
            on_progress=on_progress or (lambda *_: None),
        )  # fmt: skip

    try:
        retry(
            attempt,
            attempts=attempts,
            retry_on=(sf_errors.OperationalError,),
            sleep=sleep,
            what=f"load {dataset.name}",
        )
    except sf_errors.OperationalError as exc:
        raise SnowflakeUnavailableError(
            f"lost the connection to Snowflake while loading {target.fqn} ({attempts} attempts): "
            f"{exc}. Nothing is half-applied: re-run the load once the warehouse is reachable."
        ) from exc
    result.duration_s = time.perf_counter() - started
    log.info(
        "load finished", extra=result.to_dict() | {"files_rejected": len(result.files_rejected)}
    )
    return result


def _reset_counters(result: LoadResult) -> None:
    result.files_skipped = result.files_loaded = 0
    result.files_rejected = []
    result.rows_staged = result.rows_rejected = result.rows_inserted = result.rows_updated = 0


def _discover(
    dataset: Dataset,
    settings: MarketSettings,
    client: Any,
    bucket: str,
    root: str,
    prefix: str | None,
    result: LoadResult,
) -> list[ObjectInfo]:
    """Committed data files under ``root`` (narrowed by ``prefix``), oldest first.

    A Delta table's files come from its log (no listing of the data prefix); other
    datasets are listed and, for stream sinks, filtered by ``_spark_metadata``.
    """
    if delta_log.is_delta_table(client, bucket, root):
        version, live = delta_log.snapshot_files(settings, bucket, root)
        narrowed = root + (prefix or "").lstrip("/")
        data = [o for o in live if o.key.startswith(narrowed)]
        log.info("delta snapshot", extra={"version": version, "files": len(data)})
        result.files_seen = len(data)
        return sorted(data, key=lambda o: (o.last_modified, o.key))
    listing = list_objects(client, bucket, root + (prefix or "").lstrip("/"))
    data = [o for o in listing if is_data_file(o.key[len(root) :])]
    if dataset.uses_commit_log:
        committed = committed_keys(client, bucket, root)
        if committed is not None:
            uncommitted = [o for o in data if o.key not in committed]
            if uncommitted:
                log.warning(
                    "ignoring files absent from the sink's commit log",
                    extra={"count": len(uncommitted), "example": uncommitted[0].key},
                )
            result.files_uncommitted = len(uncommitted)
            data = [o for o in data if o.key in committed]
    result.files_seen = len(data)
    # Later files win when two hold the same key: order by modification time, then name.
    return sorted(data, key=lambda o: (o.last_modified, o.key))


def _apply(
    dataset: Dataset,
    settings: MarketSettings,
    data: Sequence[ObjectInfo],
    result: LoadResult,
    *,
    target: TableRef,
    client: Any,
    bucket: str,
    root: str,
    connect: Connect,
    sleep: Callable[[float], None],
    work_dir: Path | None,
    on_progress: OnProgress,
) -> None:
    audit = target.sibling(settings.snowflake.audit_table)
    # qmark: values are bound server-side and executemany sends one array-bound request.
    conn = connect(
        settings, database=target.database, schema=target.schema, sleep=sleep, paramstyle="qmark"
    )
    try:
        cur = conn.cursor()
        ensure_tables(cur, dataset, target, audit)
        records = fetch_audit(cur, audit, target)
        plan = plan_files(data, records, full_refresh=result.full_refresh)
        result.files_skipped = len(plan.skipped)
        on_progress("plan", len(data), len(data))
        if not plan.to_load:
            return
        with tempfile.TemporaryDirectory(prefix="market-load-", dir=work_dir) as tmp:
            staged = stage_locally(
                dataset, [obj for obj, _ in plan.to_load], client=client, bucket=bucket,
                root=root, load_ts=result.loaded_at, directory=Path(tmp),
                on_file=lambda done: on_progress("stage", done, len(plan.to_load)),
            )  # fmt: skip
            result.files_rejected = staged.rejected
            result.rows_rejected = staged.rows_rejected
            if staged.files:
                on_progress("merge", 0, 1)
                inserted, updated = bulk_merge(cur, dataset, target, staged, run_id=result.run_id)
                write_audit(cur, audit, target, staged.files, result.loaded_at, result.run_id)
                on_progress("merge", 1, 1)
                result.rows_inserted, result.rows_updated = inserted, updated
                result.rows_staged = staged.rows_staged
                result.files_loaded = len(staged.files)
    finally:
        conn.close()


def execute(cur: Any, statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement; warehouse refusals become loader errors with the statement named."""
    from snowflake.connector import errors as sf_errors

    try:
        cur.execute(statement, params)
        return list(cur.fetchall()) if cur.description else []
    except sf_errors.ProgrammingError as exc:
        raise _refusal(exc, statement) from exc


def _refusal(exc: Any, statement: str) -> Exception:
    head = statement.split(" (", 1)[0][:120]
    if getattr(exc, "errno", None) in _PERMISSION_ERRNOS:
        return SnowflakeAuthError(
            f"Snowflake denied `{head}…`: {exc.msg}. Grant the loader's role the privilege "
            "(or set MARKET_SNOWFLAKE__ROLE to a role that has it)."
        )
    return LoadFailedError(f"`{head}…` failed: {getattr(exc, 'msg', exc)}")


def init_ddl(dataset: Dataset, target: TableRef, audit: TableRef) -> list[str]:
    """The DDL of ``market-load init`` for one dataset: database, schema, tables, upgrades."""
    return [
        sql.create_database(target.database),
        sql.create_schema(target.database, target.schema),
        sql.use_schema(target.database, target.schema),
        sql.create_target_table(target, dataset),
        *sql.add_missing_columns(target, dataset),
        sql.create_audit_table(audit),
    ]


def missing_objects(cur: Any, dataset: Dataset, target: TableRef, audit: TableRef) -> list[str]:
    """What ``market-load init`` has not created yet: absent tables and target columns.

    Reading the information schema needs only USAGE on the database and schema, so a
    load by the least-privileged loader role checks instead of re-running DDL that would
    need CREATE DATABASE / CREATE SCHEMA / OWNERSHIP (Snowflake checks the privilege even
    for ``if not exists``).
    """
    from snowflake.connector import errors as sf_errors

    try:
        rows = execute(
            cur,
            sql.select_columns(target.database, target.schema, 2),
            (target.schema, target.name, audit.name),
        )
    except (LoadFailedError, sf_errors.ProgrammingError):
        return [f"database {target.database}"]  # absent (or not visible to the role)
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(str(table).upper(), set()).add(str(column).upper())
    missing = [f"table {t.fqn}" for t in (target, audit) if t.name.upper() not in present]
    columns = present.get(target.name.upper())
    if columns:
        missing += [
            f"column {target.fqn}.{c.name}"
            for c in dataset.columns
            if c.name.upper() not in columns
        ]
    return missing


def ensure_tables(cur: Any, dataset: Dataset, target: TableRef, audit: TableRef) -> None:
    """Check that ``market-load init`` ran; run its DDL only when something is missing.

    Locally (the emulator, no grants) a fresh deployment is initialised on first load. On
    Snowflake the loader role lacks CREATE DATABASE/SCHEMA, so the DDL is refused and the
    error says to run ``market-load init`` with an admin role.
    """
    missing = missing_objects(cur, dataset, target, audit)
    if not missing:
        return
    log.warning(
        "warehouse objects missing: running market-load init's DDL",
        extra={"missing": missing[:5], "count": len(missing)},
    )
    try:
        for statement in init_ddl(dataset, target, audit):
            execute(cur, statement)
    except SnowflakeAuthError as exc:
        raise SnowflakeAuthError(
            f"{', '.join(missing[:3])} missing and the loader's role may not create them: run "
            f"`market-load init` once with an admin role (infra/snowflake/roles.sql). {exc}"
        ) from exc


def init_warehouse(
    settings: MarketSettings,
    *,
    datasets: Sequence[Dataset] = (HISTORICAL, REALTIME),
    connect: Connect = snowflake_connection,
) -> list[str]:
    """``market-load init``: create the databases, schemas and tables the loads write.

    Run by an admin role (SYSADMIN in infra/snowflake/roles.sql), so the loader's own role
    needs no CREATE DATABASE/SCHEMA and no table ownership; idempotent. Returns the target
    and audit tables, fully qualified.
    """
    tables: list[str] = []
    for dataset in datasets:
        target = target_ref(dataset, settings)
        audit = target.sibling(settings.snowflake.audit_table)
        conn = connect(settings, paramstyle="qmark")
        try:
            cur = conn.cursor()
            for statement in init_ddl(dataset, target, audit):
                execute(cur, statement)
        finally:
            conn.close()
        tables += [target.fqn, audit.fqn]
    return tables


def fetch_audit(cur: Any, audit: TableRef, target: TableRef) -> list[AuditRecord]:
    rows = execute(cur, sql.select_audit(audit), (target.fqn,))
    return [
        AuditRecord(
            object_key=key,
            etag=etag,
            size=None if size is None else int(size),
            row_count=None if count is None else int(count),
            loaded_at=loaded_at,
        )
        for key, etag, size, count, loaded_at in rows
    ]


def stage_locally(
    dataset: Dataset,
    objects: Sequence[ObjectInfo],
    *,
    client: Any,
    bucket: str,
    root: str,
    load_ts: datetime,
    directory: Path,
    on_file: Callable[[int], None] = lambda done: None,
) -> _Staged:
    """Read, check and normalise each file into ≤ ``STAGE_FILE_ROWS``-row local Parquet files."""
    staged = _Staged(directory=directory)
    writer: pq.ParquetWriter | None = None
    written = 0
    chunk = 0
    try:
        for sequence, obj in enumerate(objects):
            on_file(sequence)
            try:
                table = pq.read_table(pa.BufferReader(read_object(client, bucket, obj.key)))
                norm = normalise(
                    table, dataset, partitions=partition_values(obj.key[len(root) :]),
                    object_key=obj.key, sequence=sequence, load_ts=load_ts,
                )  # fmt: skip
            except (FileSchemaError, pa.ArrowException) as exc:
                log.error("rejected file", extra={"key": obj.key, "reason": str(exc)[:300]})
                staged.rejected.append(RejectedFile(obj.key, str(exc)))
                continue
            if writer is None or written >= STAGE_FILE_ROWS:
                if writer is not None:
                    writer.close()
                chunk += 1
                writer = pq.ParquetWriter(
                    directory / f"chunk-{chunk:05d}.parquet", norm.table.schema
                )
                written = 0
            writer.write_table(norm.table)
            written += norm.table.num_rows
            staged.files.append((obj, norm.rows_read))
            staged.rows_staged += norm.table.num_rows
            staged.rows_rejected += norm.rows_rejected
    finally:
        if writer is not None:
            writer.close()
    on_file(len(objects))
    return staged


def bulk_merge(
    cur: Any, dataset: Dataset, target: TableRef, staged: _Staged, *, run_id: str
) -> tuple[int, int]:
    """PUT + COPY into a transient staging table, then ONE MERGE; returns (inserted, updated)."""
    suffix = run_id.upper()
    staging = target.sibling(f"{target.name}__STG_{suffix}")
    stage = target.sibling(f"{target.name}__STAGE_{suffix}")
    execute(cur, sql.create_stage(stage))
    execute(cur, sql.create_staging_table(staging, dataset))
    try:
        execute(cur, sql.put_files(staged.directory / "*.parquet", stage))
        copied = execute(cur, sql.copy_into_staging(staging, stage))
        loaded = sum(_column(cur, row, "rows_loaded") or 0 for row in copied)
        if loaded != staged.rows_staged:
            raise LoadFailedError(
                f"COPY INTO {staging.fqn} loaded {loaded} rows, expected {staged.rows_staged}: "
                f"{copied!r}; the target was not touched"
            )
        merged = execute(cur, sql.merge(target, staging, dataset))
        row = merged[0] if merged else ()
        inserted = _column(cur, row, "number of rows inserted") or 0
        updated = _column(cur, row, "number of rows updated") or 0
        return int(inserted), int(updated)
    finally:
        try:
            execute(cur, sql.drop_table(staging))
        except Exception as exc:  # never mask the load's own error
            log.warning(
                "could not drop staging table",
                extra={"table": staging.fqn, "error": str(exc)[:200]},
            )


def _column(cur: Any, row: Sequence[Any], name: str) -> Any:
    names = [d.name.lower() for d in cur.description or ()]
    return row[names.index(name)] if name in names and row else None


def write_audit(
    cur: Any,
    audit: TableRef,
    target: TableRef,
    files: Sequence[tuple[ObjectInfo, int]],
    loaded_at: datetime,
    run_id: str,
) -> None:
    """One array-bound INSERT (one round trip) for all files of the load."""
    from snowflake.connector import errors as sf_errors

    rows = [(target.fqn, o.key, o.etag, o.size, n, loaded_at, run_id) for o, n in files]
    statement = sql.insert_audit(audit)
    try:
        cur.executemany(statement, rows)
    except sf_errors.ProgrammingError as exc:
        raise _refusal(exc, statement) from exc
