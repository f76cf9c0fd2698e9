"""One exit-code table for every console script of the platform.

Schedulers, shell scripts and CI decide what to do from a process's exit code alone, so a
code must mean the same thing whichever ``market-*`` command returns it: ``2`` is always a
command-line mistake (never a failed job), ``4`` always "a service could not be reached"
(worth a retry), ``5`` always "the run finished but rejected some input" (look at the DLQ or
quarantine). README's "Exit codes" table is this enum.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by ``market-ingest``, ``-spark``, ``-load``, ``-dbt``, ``-pipeline``."""

    OK = 0
    #: The job ran and failed (a step, a query, a dbt node): read its log.
    FAILED = 1
    #: Bad usage: unknown option, missing argument, invalid value (typer/click's own code).
    USAGE = 2
    #: Credentials were refused by a service.
    AUTH = 3
    #: A service (Kafka, the object store, Snowflake, Spark master) could not be reached.
    UNAVAILABLE = 4
    #: The run completed but rejected input: files rejected, or every record dead-lettered.
    REJECTED = 5
    #: The run completed but data-quality checks failed (dbt tests, report checks).
    QUALITY = 6
