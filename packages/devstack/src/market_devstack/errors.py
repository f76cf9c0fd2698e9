"""One exception per way the local stack can fail, each with the fix in its message."""

from __future__ import annotations


class DevStackError(Exception):
    """Base class: every failure of the local stack."""


class PrerequisiteMissingError(DevStackError):
    """A tool the stack needs (java 17+, mvn, go) is not installed or too old."""

    def __init__(self, tool: str, fix: str) -> None:
        super().__init__(f"{tool} is required by the local stack but was not found. Fix: {fix}")
        self.tool = tool
        self.fix = fix


class ArtifactResolutionError(DevStackError):
    """Downloading or building a service's binaries (Kafka jars, MinIO) failed."""


class PortInUseError(DevStackError):
    """A port from the settings is taken by a process the stack did not start."""


class ServiceStartError(DevStackError):
    """A service process exited, or did not become healthy, while starting."""


class ServiceStopError(DevStackError):
    """A service process survived SIGTERM and SIGKILL."""


class UnknownServiceError(DevStackError):
    """A service name that is not one of kafka, minio, snowflake."""
