#!/usr/bin/env bash
# Smoke-test the images `./pants package images` built: each entry point must start and
# print its --help inside its image (imports resolve, the venv and interpreter work), as
# the image's own non-root user, and the Airflow image must load every DAG of dags/.
# Uses buildah with chroot isolation, which works where `podman run` cannot set up
# namespaces/rlimits (containers, CI sandboxes). One working container per image: with
# the vfs driver each is a full copy of the image. Usage: tools/images/smoke.sh [tag]
set -euo pipefail

TAG="${1:-latest}"
failed=0

# check IMAGE COMMAND...: run each shell COMMAND in one working container of IMAGE.
check() {
  local image="localhost/$1:$TAG" container user cmd out
  shift
  container="$(buildah from --pull=false "$image")"
  user="$(buildah inspect --type container --format '{{.OCIv1.Config.User}}' "$container")"
  for cmd in "$@"; do
    if out="$(buildah run --isolation chroot "$container" -- /bin/sh -c "$cmd" 2>&1)"; then
      echo "ok    $image (user ${user:-root}): $cmd"
      printf '%s\n' "$out" | tail -1 | sed 's/^/      → /'
    else
      echo "FAIL  $image (user ${user:-root}): $cmd"
      printf '%s\n' "$out" | tail -20 | sed 's/^/      /'
      failed=1
    fi
  done
  buildah rm "$container" >/dev/null
}

# dbt parses the baked project as the image user (it writes target/ into the project).
check market/pipeline "market-ingest --help" "market-load --help" "market-dbt --help" \
  "cd /opt/market/dbt && /opt/market/venvs/dbt/bin/dbt parse --quiet && ls target/manifest.json"
check market/spark "market-spark --help" "test -w /opt/market/ivy && ls /opt/market/ivy/jars | wc -l"
# Every DAG file of the image's DAG folder imports (parsing needs no metadata database).
check market/airflow "airflow version" \
  "/opt/market/airflow/bin/python -c 'from airflow.configuration import conf; from airflow.dag_processing.dagbag import DagBag; bag = DagBag(dag_folder=conf.get(\"core\", \"dags_folder\")); assert bag.dags and not bag.import_errors, bag.import_errors; print(\"dags:\", sorted(bag.dags))'"
exit "$failed"
