#!/usr/bin/env bash
# Regenerate every lockfile from the packages' pyproject.toml files, uv first.
#
# uv.lock is the single source of truth for third-party versions; Pants's pex lockfile is
# generated *constrained* by `uv export` of it, so both carry exactly the same pins.
# Usage: tools/lockfiles/regenerate.sh [--check]   (--check: fail if anything changed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

uv lock
uv export --frozen --no-hashes --no-header --no-annotate --all-extras --all-packages \
  --no-emit-workspace -o 3rdparty/python/constraints.txt >/dev/null
./pants generate-lockfiles --resolve=python-default
# The pants-plugins resolve (Pants itself, CPython 3.9) is not part of uv's workspace: it
# changes with pants_version only (`./pants generate-lockfiles --resolve=pants-plugins`).

if [ "${1:-}" = "--check" ]; then
  git diff --exit-code -- uv.lock 3rdparty/python/ \
    || { echo "lockfiles are out of date: run tools/lockfiles/regenerate.sh and commit" >&2; exit 1; }
fi
