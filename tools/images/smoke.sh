#!/usr/bin/env bash
# Smoke-test the images `./pants package images` built: each entry point must start and
# print its --help inside its image (imports resolve, the venv and interpreter work).
# Uses buildah with chroot isolation, which works where `podman run` cannot set up
# namespaces/rlimits (containers, CI sandboxes). Usage: tools/images/smoke.sh [tag]
set -euo pipefail

TAG="${1:-latest}"
# image | shell command run inside it
CHECKS=(
  "market/pipeline|market-ingest --help"
  "market/pipeline|market-load --help"
  "market/pipeline|market-dbt --help"
  "market/spark|market-spark --help"
  "market/airflow|airflow version"
  # Every DAG file imports (no metadata database needed to parse them).
  "market/airflow|/opt/market/airflow/bin/python -c 'from airflow.models.dagbag import DagBag; bag = DagBag(include_examples=False); assert bag.dags and not bag.import_errors, bag.import_errors; print(sorted(bag.dags))'"
)

failed=0
for check in "${CHECKS[@]}"; do
  image="localhost/${check%%|*}:$TAG"
  cmd="${check#*|}"
  container="$(buildah from --pull=false "$image")"
  # As root: buildah's chroot isolation cannot enter the vfs rootfs as the image user.
  if out="$(buildah run --isolation chroot --user 0:0 "$container" -- /bin/sh -c "$cmd" 2>&1)"; then
    echo "ok    $image: $cmd"
  else
    echo "FAIL  $image: $cmd"
    printf '%s\n' "$out" | tail -20 | sed 's/^/      /'
    failed=1
  fi
  buildah rm "$container" >/dev/null
done
exit "$failed"
