#!/usr/bin/env bash
# Checks (and where a registry allows, installs) what the build and the local stack need:
# Java 17 + Maven (Kafka from Maven Central), Go (MinIO is built from its Go module),
# CPython 3.9 (runs Pants 2.17) and 3.11 (runs the code), and uv; for `up --with airflow` and
# its tests PostgreSQL 15 (Airflow's metadata DB) and Chromium + chromedriver (UI browser test).
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }

if ! have uv; then
  echo "installing uv from PyPI"
  python3 -m pip install -q --user uv || python3 -m pip install -q uv
  export PATH="$HOME/.local/bin:$PATH"
fi

if ! have java || ! java -version 2>&1 | grep -qE 'version "(17|1[89]|2[0-9])'; then
  missing+=("Java 17+ (e.g. apt-get install openjdk-17-jdk-headless)")
fi
have mvn || missing+=("Maven (apt-get install maven)")
have go || [ -x /usr/local/go/bin/go ] || missing+=("Go 1.24+ (https://go.dev/dl or apt-get install golang)")
if ! { have python3.11 || [ -n "$(ls -d "$HOME"/.pyenv/versions/3.11.* 2>/dev/null)" ]; }; then
  missing+=("CPython 3.11 (pyenv install 3.11)")
fi
if ! { have python3.9 || [ -n "$(ls -d "$HOME"/.pyenv/versions/3.9.* 2>/dev/null)" ]; }; then
  missing+=("CPython 3.9 for Pants 2.17 (pyenv install 3.9)")
fi

[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=("PostgreSQL 15 (apt-get install postgresql)")
have chromium || missing+=("Chromium (apt-get install chromium)")
have chromedriver || missing+=("chromedriver (apt-get install chromium-driver)")

if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && have apt-get; then
  echo "installing missing Debian packages"
  apt-get update -qq
  apt-get install -y -qq openjdk-17-jdk-headless maven golang postgresql chromium chromium-driver \
    >/dev/null || true
  missing=()
  have java || missing+=("Java 17")
  have mvn || missing+=("Maven")
  [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=("PostgreSQL 15")
  have chromium || missing+=("Chromium")
  have chromedriver || missing+=("chromedriver")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'missing prerequisite: %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "prerequisites ok: $(java -version 2>&1 | head -1); $(uv --version)"
