"""``python -m market_dags.manifest [--target-path DIR]``: write dbt's manifest for cosmos.

Run at deploy time (and in CI) after the dbt project changes; the DAG files only read the
resulting ``manifest.json`` and never invoke dbt while being parsed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from market_dags.config import DbtPipelineConfig
from market_dags.dbt import DbtManifestError, write_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m market_dags.manifest", description=__doc__)
    parser.add_argument("--target-path", type=Path, default=None)
    ns = parser.parse_args(argv)
    try:
        path = write_manifest(DbtPipelineConfig(), target_path=ns.target_path)
    except DbtManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
