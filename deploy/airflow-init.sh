#!/usr/bin/env bash
# One-shot initialisation run by the `airflow-init` service of docker-compose.yaml (as root, in the
# simpost image): shared folders, metadata DB schema, pools, the admin password file. Idempotent.
set -euo pipefail

: "${SIMPOST_RESULTS_ROOT:?}" "${SIMPOST_WORK_DIR:?}"
AIRFLOW_UID="${AIRFLOW_UID:-50000}"

# Shared volumes: every worker (on every host) reads the results root and writes per-run work dirs.
mkdir -p "$SIMPOST_RESULTS_ROOT" "$SIMPOST_WORK_DIR" /opt/airflow/logs /opt/airflow/config
chown "$AIRFLOW_UID:0" "$SIMPOST_WORK_DIR" /opt/airflow/logs /opt/airflow/config
chmod g+w "$SIMPOST_WORK_DIR"

run_airflow() { airflow "$@"; }  # as root, like the official airflow-init

run_airflow db migrate
# Pools bound upload and parse concurrency over all workers (see docs/distributed.md).
run_airflow pools set storage_uploads "${SIMPOST_UPLOAD_SLOTS:-4}" "Concurrent uploads to storage backends"
run_airflow pools set results_parsing "${SIMPOST_PARSE_SLOTS:-2}" "Concurrent parse/stats tasks (CPU and memory bound)"

# SimpleAuthManager keeps a password file that exists before the api-server starts.
pwfile="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-/opt/airflow/config/simple_auth_manager_passwords.json}"
if [[ ! -s "$pwfile" ]]; then
    : "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"
    python - "$pwfile" <<'PY'
import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({os.environ.get("AIRFLOW_ADMIN_USER", "admin"): os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
PY
    chown "$AIRFLOW_UID:0" "$pwfile"
    chmod 600 "$pwfile"
fi
echo "airflow-init: done"
