"""Reading the raw zone against an explicit schema and writing small side files.

Side files (run summaries) go through the Hadoop FileSystem of the running session, so the
same code writes to ``file://`` in unit tests and ``s3a://`` against MinIO or S3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from market_spark.errors import NoInputError, RawSchemaError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


def conform(df: DataFrame, schema: StructType, *, where: str) -> DataFrame:
    """Select exactly ``schema``'s columns, cast to its types; missing columns are an error."""
    from pyspark.sql import functions as F

    present = set(df.columns)
    missing = [f.name for f in schema.fields if f.name not in present]
    if missing:
        raise RawSchemaError(
            f"{where} lacks column(s) {missing}; found {sorted(present)}. The raw zone must "
            "follow market_spark.schemas (written by market_ingest); fix the writer or point "
            "the job at the right prefix."
        )
    from pyspark.sql.types import LongType, TimestampType

    found = {f.name: f.dataType for f in df.schema.fields}
    cols = []
    for f in schema.fields:
        col = F.col(f.name)
        if isinstance(f.dataType, TimestampType) and isinstance(found[f.name], LongType):
            # pandas writes nanosecond timestamps; Spark reads them as epoch nanos
            # (spark.sql.legacy.parquet.nanosAsLong, set by build_session).
            col = F.expr(f"timestamp_micros(`{f.name}` div 1000)")
        cols.append(col.cast(f.dataType).alias(f.name))
    return df.select(*cols)


def read_parquet(
    spark: SparkSession, uri: str, schema: StructType, *, years: list[int] | None = None
) -> DataFrame:
    """Parquet under ``uri`` (Hive-style partition directories allowed), conformed to schema.

    ``years`` prunes ``year=`` partition directories (the raw zone's layout) when present.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    try:
        df = spark.read.option("basePath", uri).parquet(uri)
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in str(exc) or "UNABLE_TO_INFER_SCHEMA" in str(exc):
            raise NoInputError(
                f"no Parquet files under {uri}: run the raw consumer first, or pass the "
                "right --input"
            ) from exc
        raise
    if years is not None and "year" in df.columns:
        df = df.where(F.col("year").isin(*years))
    return conform(df, schema, where=uri)


def write_partitioned(
    df: DataFrame, uri: str, *, sort: tuple[str, ...], repartition: bool = True
) -> None:
    """Overwrite the ``date=`` partitions present in ``df`` (dynamic partition overwrite).

    One task, hence one file, per date with rows in a fixed order, so a rerun over the same
    input writes byte-identical files (only the file names differ). ``repartition=False`` when
    ``df`` is already hash-partitioned so that each date is in one task; the sort is then
    free if ``df`` is already in (date, *sort) order (Spark drops the redundant sort).
    """
    from pyspark.sql import functions as F

    from market_spark.schemas import PARTITION_COLUMN

    if repartition:
        df = df.repartition(F.col(PARTITION_COLUMN))
    (
        df.sortWithinPartitions(*[F.col(c) for c in (PARTITION_COLUMN, *sort)])
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(PARTITION_COLUMN)
        .parquet(uri)
    )


def _fs_path(spark: SparkSession, uri: str):  # type: ignore[no-untyped-def]
    jvm: Any = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    return path.getFileSystem(conf), path


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write (overwrite) one small UTF-8 file at ``uri``."""
    fs, path = _fs_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, uri: str) -> str:
    """Read one small UTF-8 file written by :func:`write_text`."""
    fs, path = _fs_path(spark, uri)
    jvm: Any = spark.sparkContext._jvm
    stream = fs.open(path)
    try:
        data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
    finally:
        stream.close()
    return bytes(data).decode("utf-8")


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs_path(spark, uri)
    return bool(fs.exists(path))
