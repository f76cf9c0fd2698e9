"""One exception class per loader failure mode (warehouse ones come from market_common)."""

from __future__ import annotations

from market_common.clients import SnowflakeAuthError, SnowflakeUnavailableError

__all__ = [
    "CommitLogError",
    "FileSchemaError",
    "LoadFailedError",
    "LoaderError",
    "SnowflakeAuthError",
    "SnowflakeUnavailableError",
]


class LoaderError(RuntimeError):
    """Base class of loader failures that are not the warehouse's availability or auth."""


class CommitLogError(LoaderError):
    """The streaming sink's ``_spark_metadata`` log cannot be read, so committed files are unknown.

    Loading without it could pick up garbage from a killed batch, so the run stops instead.
    """


class FileSchemaError(LoaderError):
    """A processed-zone file lacks a required column or holds values of the wrong type.

    The file is rejected (reported, not audited, retried next run); other files still load.
    """


class LoadFailedError(LoaderError):
    """The warehouse refused a statement of the load (bad SQL, missing object, type error)."""
