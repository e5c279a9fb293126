#!/bin/sh
# The tracking server of compose.yaml: PostgreSQL holds runs and users, MinIO (S3) holds the
# artifacts, and MLflow's basic-auth app asks every client for a user name and password.
set -eu
: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}" "${POSTGRES_DB:?}" "${MLFLOW_TRACKING_USERNAME:?}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?set it in docker/.env}" "${MLFLOW_FLASK_SERVER_SECRET_KEY:?}"
backend="postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres:5432/${POSTGRES_DB}"
config="$(mktemp -d)/basic_auth.ini"
cat > "$config" <<INI
[mlflow]
default_permission = READ
database_uri = ${backend}
admin_username = ${MLFLOW_TRACKING_USERNAME}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
export MLFLOW_AUTH_CONFIG_PATH="$config"
exec mlflow server --app-name basic-auth \
    --host 0.0.0.0 --port 5000 --workers "${MLFLOW_WORKERS:-4}" \
    --backend-store-uri "$backend" \
    --artifacts-destination "s3://${MLFLOW_BUCKET:-mlflow}/artifacts" \
    --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:5000,localhost,localhost:5000,127.0.0.1,127.0.0.1:5000}"
