"""One exception per way a Spark job can fail, each message saying what to do about it."""

from __future__ import annotations


class SparkJobError(Exception):
    """Base class: every failure raised by ``market_spark``."""


class PackageResolutionError(SparkJobError):
    """The JVM could not start, almost always because ``spark.jars.packages`` did not resolve."""


class RawSchemaError(SparkJobError):
    """The raw zone does not carry the columns (or types) the contract promises."""


class NoInputError(SparkJobError):
    """The input location holds no data files, so there is nothing to process."""


class StreamFailedError(SparkJobError):
    """A streaming query stopped with an exception."""
