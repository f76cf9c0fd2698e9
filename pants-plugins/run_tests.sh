#!/usr/bin/env bash
# Run the plugin tests with the pants-plugins resolve's pytest (the PEX built from
# pants-plugins:pytest_runner) on CPython 3.9, the interpreter Pants 2.17 runs on.
# Called by pants-plugins:run_tests (`./pants test pants-plugins::`) from the sandbox root.
set -euo pipefail

find_python39() {
  local cand
  for cand in "${PANTS_PYTHON:-}" "$(command -v python3.9 2>/dev/null || true)" \
              "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9 \
              /usr/bin/python3.9 /usr/local/bin/python3.9; do
    [ -n "$cand" ] && [ -x "$cand" ] \
      && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null \
      && { echo "$cand"; return 0; }
  done
  return 1
}

python="$(find_python39)" || {
  echo "run_tests.sh: CPython 3.9 not found; set PANTS_PYTHON=/path/to/python3.9" >&2
  exit 1
}
# The sandbox's pants-plugins/ is the plugins' source root; -p no:cacheprovider as in pants.toml.
PEX_EXTRA_SYS_PATH=pants-plugins exec "$python" pants-plugins/pytest_runner.pex \
  -p no:cacheprovider -v pants-plugins/market_plugins "$@"
