#!/usr/bin/env bash
# Debian's PostgreSQL for the store suite and the multi-instance suite: installs the package
# when it is missing, then starts a throwaway cluster of its own (trust authentication, on
# loopback, port ${PORTAL_PG_PORT:-25432}) in ${PORTAL_PG_DIR:-/tmp/portal-pg}, as the
# `postgres` user when run as root (initdb refuses root). Prints the URL to use as
# PORTAL_TEST_POSTGRES. Idempotent: a cluster already answering is left as it is. The port
# is below Linux's ephemeral range (32768-60999), so no test's outgoing connection can be
# holding it when the server starts.
set -euo pipefail
port="${PORTAL_PG_PORT:-25432}"
dir="${PORTAL_PG_DIR:-/tmp/portal-pg}"

bin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bin="$d"; done
if [ -z "$bin" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >/dev/null
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bin="$d"; done
fi
[ -n "$bin" ] || { echo "no PostgreSQL server binaries after installing postgresql" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >&2
fi
# Every test makes a database of its own and none drops it (a killed run could not anyway):
# the ones an earlier run left are dropped here, so runs on one machine do not fill its disk.
for db in $("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'portal\\_test\\_%'"); do
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "DROP DATABASE \"$db\" WITH (FORCE)" >&2
done
echo "postgres://postgres@127.0.0.1:$port/postgres"
