"""``python -m market_dags.launch <console-script> [args...]``.

The subprocess runner's fallback when a console script's wrapper is not on PATH (e.g. a
zipapp or a venv whose ``bin/`` is not exported): runs the entry point with this interpreter.
"""

from __future__ import annotations

import sys

from market_dags.entrypoints import ConsoleScriptNotFoundError, run_entry_point


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m market_dags.launch <console-script> [args...]", file=sys.stderr)
        return 2
    try:
        code, _ = run_entry_point(args[0], args[1:])
    except ConsoleScriptNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 127
    return code


if __name__ == "__main__":
    sys.exit(main())
