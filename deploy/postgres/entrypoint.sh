#!/bin/sh
# PostgreSQL container entrypoint (docker-compose.yml): reads the owner's and the services'
# passwords from the compose secret files, as root, before the image's own entrypoint drops to
# user postgres (which cannot read them), and refuses the examples' placeholder passwords.
# With docker-compose.tls.yml, it also installs the server certificate and key for user postgres.
set -eu

secret() {
    [ -r "/run/secrets/$1" ] || { echo "postgres: secret $1 missing: create it in DOSEFLOW_SECRETS_DIR" >&2; exit 1; }
    value=$(cat "/run/secrets/$1")
    [ -n "$value" ] || { echo "postgres: secret $1 is empty" >&2; exit 1; }
    case "$value" in
        change-me*) echo "postgres: secret $1 is still the example's placeholder: set a real password" >&2; exit 1 ;;
    esac
    printf '%s' "$value"
}

POSTGRES_PASSWORD=$(secret postgres_password)
DOSEFLOW_DB_APP_PASSWORD=$(secret db_app_password)
export POSTGRES_PASSWORD DOSEFLOW_DB_APP_PASSWORD

if [ -d /etc/doseflow/tls ]; then
    # The key must belong to the server's user with mode 600; a bind mount keeps the host's owner.
    install -d -o postgres -g postgres -m 700 /var/lib/postgresql/tls
    install -o postgres -g postgres -m 644 /etc/doseflow/tls/server.crt /var/lib/postgresql/tls/server.crt
    install -o postgres -g postgres -m 600 /etc/doseflow/tls/server.key /var/lib/postgresql/tls/server.key
fi

exec docker-entrypoint.sh "$@"
