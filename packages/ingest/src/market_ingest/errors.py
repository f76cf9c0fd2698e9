"""One exception per failure mode of ingestion, each with a message a user can act on."""

from __future__ import annotations


class IngestError(RuntimeError):
    """Base class for ingestion failures."""


class SourceUnavailableError(IngestError):
    """A market-data source could not be reached after all retries."""


class SourceDataError(IngestError):
    """A source answered, but with data that cannot be turned into records."""


class ReplayInputError(IngestError):
    """Replay files are missing or not readable as CSV/Parquet."""


class RawWriteError(IngestError):
    """An object could not be written to the raw zone; offsets were not committed."""


class DeadLetterUnacknowledgedError(IngestError):
    """The DLQ did not acknowledge some dead letters: their offsets stay uncommitted.

    The letters are re-sent on every flush until acknowledged; check that the DLQ topic
    exists and accepts the consumer's writes (ACLs, ``max.message.bytes``).
    """
