"""``market-dbt``: build, export docs, or run slim CI for a pull request."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from market_common.settings import load_settings
from market_dbt.docs import export_docs
from market_dbt.errors import DbtError
from market_dbt.runner import DbtRunner
from market_dbt.slim_ci import run_slim_ci


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="market-dbt", description=__doc__)
    parser.add_argument("--target", help="dbt target (default: MARKET_DBT__TARGET or local)")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="dbt build; extra arguments go to dbt")
    build.add_argument("dbt_args", nargs=argparse.REMAINDER)
    docs = commands.add_parser("docs-export", help="model/column descriptions as JSON")
    docs.add_argument("--generate", action="store_true", help="run `dbt docs generate` first")
    docs.add_argument("--manifest", type=Path, help="default: <project>/target/manifest.json")
    docs.add_argument("--out", type=Path, default=Path("dbt_docs.json"))
    slim = commands.add_parser("slim-ci", help="build state:modified+ into PR_<n>, then drop it")
    slim.add_argument("--state", type=Path, required=True, help="dir with prod manifest.json")
    slim.add_argument("--pr", type=int, required=True, help="pull request number")
    slim.add_argument("--keep-schema", action="store_true", help="skip the final drop")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings()
    if args.target:
        settings.dbt.target = args.target
    try:
        runner = DbtRunner.from_settings(settings)
        if args.command == "build":
            result = runner.invoke("build", *args.dbt_args)
            print(f"built {len(result.results)} nodes")
        elif args.command == "docs-export":
            if args.generate:
                runner.invoke("docs", "generate")
            manifest = args.manifest or runner.project.target_dir / "manifest.json"
            docs = export_docs(manifest, args.out)
            print(f"wrote {len(docs['models'])} models to {args.out}")
        else:
            slim = run_slim_ci(
                runner, state_dir=args.state, pr_number=args.pr, keep_schema=args.keep_schema
            )
            print(f"{slim.schema}: built {', '.join(slim.built_nodes) or 'nothing'}")
    except DbtError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
