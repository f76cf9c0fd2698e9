"""Dependency audit of every pinned third-party package (`./pants run tools/audit`).

Audits `3rdparty/python/constraints.txt` (the uv export of uv.lock, i.e. exactly what is
installed) against the PyPI vulnerability feed with pip-audit. Known, accepted findings are
listed with their justification in `tools/audit/accepted.toml`; anything else fails.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from pip_audit._cli import audit


def main() -> None:
    root = Path.cwd()
    accepted = tomllib.loads((root / "tools/audit/accepted.toml").read_text()).get("vuln", [])
    args = [
        "pip-audit",
        "--requirement", str(root / "3rdparty/python/constraints.txt"),
        "--no-deps",  # the file is a full, pinned closure already
        "--disable-pip",
        "--progress-spinner", "off",
        "--desc", "off",
        "--strict",  # a package that could not be audited is a failure, not a pass
    ]  # fmt: skip
    for vuln in accepted:
        args += ["--ignore-vuln", vuln["id"]]
    sys.argv = args + sys.argv[1:]
    audit()


if __name__ == "__main__":
    main()
