"""uv.lock, its exported constraints and Pants's pex lockfile must pin the same versions.

A cheap, always-on version of `regenerate.sh --check`: it parses the committed files
instead of re-resolving, so it runs in seconds on every `./pants test ::`.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

# The repo root, or the Pants sandbox root (which holds the same files via //:lock_inputs).
ROOT = Path(__file__).resolve().parents[2]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _uv_pins() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {
        _norm(p["name"]): p["version"] for p in lock["package"] if "registry" in p.get("source", {})
    }


def _constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "3rdparty/python/constraints.txt").read_text().splitlines():
        line = line.split(";")[0].strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _pex_lock() -> dict[str, object]:
    text = (ROOT / "3rdparty/python/default.lock").read_text()
    # Pants prefixes the JSON with a `//`-commented header.
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    return json.loads(body)


def test_constraints_are_the_uv_export() -> None:
    uv = _uv_pins()
    constraints = _constraint_pins()
    # uv.lock also holds platform-specific packages; each constraint must match it exactly.
    mismatched = {n: (v, uv.get(n)) for n, v in constraints.items() if uv.get(n) != v}
    assert (
        not mismatched
    ), f"constraints.txt differs from uv.lock (name: (constraint, uv)): {mismatched}"


def test_pex_lock_pins_exactly_uv_versions() -> None:
    uv = _uv_pins()
    lock = _pex_lock()
    resolve = lock["locked_resolves"][0]  # type: ignore[index]
    locked = {_norm(r["project_name"]): r["version"] for r in resolve["locked_requirements"]}
    mismatched = {n: (v, uv.get(n)) for n, v in locked.items() if uv.get(n) != v}
    assert not mismatched, f"default.lock differs from uv.lock (name: (pex, uv)): {mismatched}"


def test_pex_lock_was_generated_from_current_requirements() -> None:
    """Every third-party requirement in a pyproject must be an input of the pex lock."""
    lock = _pex_lock()
    inputs = {_norm(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in lock["requirements"]}  # type: ignore[union-attr]
    declared: set[str] = set()
    for pyproject in [
        ROOT / "pyproject.toml",
        *sorted((ROOT / "packages").glob("*/pyproject.toml")),
    ]:
        project = tomllib.loads(pyproject.read_text())["project"]
        reqs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            reqs.extend(extra)
        declared |= {_norm(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in reqs}
    declared = {d for d in declared if not d.startswith("market-")}
    assert declared == inputs, (
        f"pex lock inputs differ from the pyprojects: missing {sorted(declared - inputs)}, "
        f"stale {sorted(inputs - declared)}; run tools/lockfiles/regenerate.sh"
    )
