"""One exception per way the local stack can fail, each with the fix in its message."""

from __future__ import annotations


class LocalStackError(Exception):
    """Base class: every failure of the local stack."""


class PrerequisiteMissingError(LocalStackError):
    """A tool the stack needs (java 17+, mvn, go) is not installed or too old."""

    def __init__(self, tool: str, fix: str) -> None:
        super().__init__(f"{tool} is required by the local stack but was not found. Fix: {fix}")
        self.tool = tool
        self.fix = fix


class ArtifactResolutionError(LocalStackError):
    """Downloading or building a service's binaries (Kafka jars, MinIO) failed."""


class PortInUseError(LocalStackError):
    """A port from the settings is taken by a process the stack did not start."""


class ServiceStartError(LocalStackError):
    """A service process exited, or did not become healthy, while starting."""


class ServiceStopError(LocalStackError):
    """A service process survived SIGTERM and SIGKILL."""


class UnknownServiceError(LocalStackError):
    """A service name that is not one of kafka, minio, snowflake."""
