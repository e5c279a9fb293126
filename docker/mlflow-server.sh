#!/bin/sh
# The tracking server with MLflow's basic-auth app: every client gives a user name and password.
# compose.yaml runs it on PostgreSQL (runs and users) with artifacts on a volume, served through
# the server (clients need no storage credentials). Anywhere else, point it at other stores:
#   MLFLOW_BACKEND_STORE_URI=sqlite:///runs.db MLFLOW_AUTH_DATABASE_URI=sqlite:///users.db \
#   MLFLOW_ARTIFACTS_DESTINATION=./artifacts MLFLOW_HOST=127.0.0.1 MLFLOW_PORT=5000 \
#   MLFLOW_TRACKING_USERNAME=admin MLFLOW_AUTH_ADMIN_PASSWORD=... \
#   MLFLOW_FLASK_SERVER_SECRET_KEY=... docker/mlflow-server.sh
set -eu
: "${MLFLOW_TRACKING_USERNAME:?}" "${MLFLOW_AUTH_ADMIN_PASSWORD:?set it in docker/.env}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?set it in docker/.env}"
if [ -z "${MLFLOW_BACKEND_STORE_URI:-}" ]; then
    : "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}" "${POSTGRES_DB:?}"
    # No password in the URI, which becomes the server's command line (`ps`, `docker top`):
    # libpq reads it from PGPASSWORD, in this process's environment only.
    export PGPASSWORD="$POSTGRES_PASSWORD"
    MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://${POSTGRES_USER}@${POSTGRES_HOST:-postgres}:5432/${POSTGRES_DB}"
fi
config="$(mktemp -d)/basic_auth.ini"
cat > "$config" <<INI
[mlflow]
default_permission = READ
database_uri = ${MLFLOW_AUTH_DATABASE_URI:-$MLFLOW_BACKEND_STORE_URI}
admin_username = ${MLFLOW_TRACKING_USERNAME}
admin_password = ${MLFLOW_AUTH_ADMIN_PASSWORD}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
export MLFLOW_AUTH_CONFIG_PATH="$config"
port="${MLFLOW_PORT:-5000}"
# Host headers: the compose service name, and loopback on any port (the host publishes the UI on
# 127.0.0.1:MLFLOW_PORT, which need not be the container's port). Other names are refused (403),
# MLflow's guard against DNS rebinding; MLFLOW_ALLOWED_HOSTS replaces the list.
exec mlflow server --app-name basic-auth \
    --host "${MLFLOW_HOST:-0.0.0.0}" --port "$port" --workers "${MLFLOW_WORKERS:-4}" \
    --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
    --serve-artifacts --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-./mlartifacts}" \
    --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*}"
