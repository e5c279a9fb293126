#!/bin/sh
# The official image's first start, in short: an empty PGDATA gets a cluster owned by
# POSTGRES_USER (password-authenticated from the network), and POSTGRES_DB; later starts reuse it.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        pg_ctl --silent --wait --options="-c listen_addresses=''" start
        createdb --username="$user" "$db"
        pg_ctl --silent --wait stop
    fi
    echo "postgres: initialised $PGDATA for user $user, database $db"
fi
exec postgres
