#!/usr/bin/env bash
# Start a private PostgreSQL server (Debian's packages) for the integration tests.
# Prints `export BOLNA_TEST_POSTGRES_URI=...`; idempotent (reuses a running server).
set -euo pipefail
PGPORT="${PGPORT:-5433}"
PGDATA="${PGDATA:-/tmp/bolna-pg/data}"
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
RUN=()
if [ "$(id -u)" = 0 ]; then RUN=(runuser -u postgres --); fi
mkdir -p "$(dirname "$PGDATA")"
[ "$(id -u)" = 0 ] && chown postgres "$(dirname "$PGDATA")"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  "${RUN[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
fi
if ! "${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/../server.log" -w \
    -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
fi
"$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='bolna_test'" | grep -q 1 \
  || "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE bolna_test" >/dev/null
echo "export BOLNA_TEST_POSTGRES_URI=postgresql://postgres@127.0.0.1:${PGPORT}/bolna_test"
