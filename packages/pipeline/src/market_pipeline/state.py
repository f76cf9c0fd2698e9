"""A small JSON run-state file: which step already ran with which inputs.

Each step records a *fingerprint* of everything that determines its output (parameters,
topic/bucket/database names, the listing of its input objects). A re-run whose
fingerprint matches skips the step and reuses the recorded result, so a second
``market-pipeline run`` only pays for the steps whose inputs changed. Every step is
idempotent anyway; the state only saves time, it never decides correctness.

Writes are atomic (temp file + rename) and merge with what is on disk, so concurrent
runs with different parameters (e.g. tests with unique names) do not lose each other's
entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_FILE = "pipeline/run_state.json"


def fingerprint(value: Any) -> str:
    """Stable short hash of a JSON-serialisable value (key order does not matter)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunState:
    """``{step: {fingerprint: {"result": {...}, "finished_at": iso}}}`` in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_dir(cls, state_dir: Path) -> RunState:
        return cls(Path(state_dir) / STATE_FILE)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            # A missing or half-written file only costs a re-run of idempotent steps.
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, step: str, key: str) -> dict[str, Any] | None:
        """The result recorded for ``step`` with fingerprint ``key``, if any."""
        entry = self._read().get(step, {}).get(key)
        return dict(entry["result"]) if isinstance(entry, dict) and "result" in entry else None

    def put(self, step: str, key: str, result: Mapping[str, Any]) -> None:
        """Record ``result`` for ``step``/``key`` (atomically, merged with concurrent writes)."""
        data = self._read()
        data.setdefault(step, {})[key] = {
            "result": dict(result),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".run_state.", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
        os.replace(tmp, self.path)
