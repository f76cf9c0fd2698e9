"""One exception class per way a dbt invocation can fail."""

from __future__ import annotations

from dataclasses import dataclass


class DbtError(RuntimeError):
    """Base class for failures of the dbt runner."""


class DbtProjectNotFoundError(DbtError):
    """No dbt project (dbt_project.yml) where the settings or the repository say."""


class DbtStateError(DbtError):
    """A slim-CI state directory without the production manifest.json."""


@dataclass(frozen=True)
class NodeFailure:
    """A node dbt reported as error/fail, as read from run_results.json."""

    unique_id: str
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.unique_id} [{self.status}]: {self.message}"


class DbtRunError(DbtError):
    """dbt exited unsuccessfully; ``failures`` names the nodes that broke."""

    def __init__(self, command: str, failures: list[NodeFailure], detail: str = "") -> None:
        self.command = command
        self.failures = failures
        lines = [f"`dbt {command}` failed"]
        lines += [f"  - {failure}" for failure in failures]
        if detail:
            lines.append(detail)
        super().__init__("\n".join(lines))
