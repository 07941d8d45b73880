#!/bin/sh
# First start of the PostgreSQL container: the login role the doseflow services use. It is a
# member of doseflow_service, which migration 004 grants row access only (no schema changes).
# DOSEFLOW_DB_APP_PASSWORD comes from the db_app_password secret (deploy/postgres/entrypoint.sh).
set -eu
: "${DOSEFLOW_DB_APP_PASSWORD:?no password for doseflow_app (secret db_app_password)}"
psql -v ON_ERROR_STOP=1 -v app_password="$DOSEFLOW_DB_APP_PASSWORD" \
     --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'EOSQL'
CREATE ROLE doseflow_service NOLOGIN;
CREATE ROLE doseflow_app LOGIN PASSWORD :'app_password' IN ROLE doseflow_service;
EOSQL
