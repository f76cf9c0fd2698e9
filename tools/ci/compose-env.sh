#!/usr/bin/env bash
# Write a compose env file (infra/.env.example's variables) with freshly generated secrets
# and Snowflake key pairs, for CI's `docker compose up` smoke run. Nothing is fixed: every
# secret is random per run; the file and the keys are created 0600.
# Usage: tools/ci/compose-env.sh infra/.env
set -euo pipefail

out="${1:?usage: compose-env.sh <env-file>}"
keys="$(dirname "$out")/.keys"
umask 077
mkdir -p "$keys"
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
for who in loader dbt; do
  [ -f "$keys/$who.p8" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/$who.p8"
done
fernet="$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
cluster_id="$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
docker_gid="$(stat -c %g /var/run/docker.sock)"
cat > "$out" <<ENV
MARKET_IMAGE_TAG=latest
KAFKA_CLUSTER_ID=$cluster_id
MINIO_ROOT_USER=root-$(rand | cut -c1-8)
MINIO_ROOT_PASSWORD=$(rand)
MINIO_PIPELINE_USER=pipeline-$(rand | cut -c1-8)
MINIO_PIPELINE_PASSWORD=$(rand)
POSTGRES_PASSWORD=$(rand)
AIRFLOW_FERNET_KEY=$fernet
AIRFLOW_JWT_SECRET=$(rand)
SNOWFLAKE_ACCOUNT=ci-no-account
SNOWFLAKE_WAREHOUSE=MARKET_WH
SNOWFLAKE_LOADER_USER=MARKET_LOADER_SVC
SNOWFLAKE_LOADER_ROLE=MARKET_LOADER
SNOWFLAKE_LOADER_KEY_FILE=$(realpath "$keys/loader.p8")
SNOWFLAKE_DBT_USER=MARKET_DBT_SVC
SNOWFLAKE_DBT_ROLE=MARKET_TRANSFORMER
SNOWFLAKE_DBT_KEY_FILE=$(realpath "$keys/dbt.p8")
DOCKER_GID=$docker_gid
SPARK_WORKER_CORES=2
SPARK_WORKER_MEMORY=2g
ENV
echo "wrote $out"
