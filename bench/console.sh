#!/usr/bin/env bash
# The admin console at 100,000 users: the release binary on a store seeded with 100,000
# users (one transaction, through Python's sqlite3), an administrator signed in, and wrk on
# the users list and its search, as JSON and as the page. Prints a markdown table and writes
# it to bench/results/console.md.
#
#   bench/console.sh                    # 10 s per row, about 2 minutes plus the build
#   BENCH_DURATION=5 bench/console.sh
#
# Knobs: BENCH_DURATION (10), BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_USERS
# (100000), BENCH_PORT (18010). Needs cargo, wrk, curl, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
USERS=${BENCH_USERS:-100000}
PORT=${BENCH_PORT:-18010}
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
PASSWORD="bench: not a common password"

for tool in cargo wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 2; }
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/portal-console.XXXXXX")
PID=
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
log() { printf '== %s\n' "$*" >&2; }

log "building the portal (release)"
(cd "$ROOT" && cargo build --release --bin portal --quiet)
BIN="$ROOT/target/release/portal"
DB="$TMP/portal.sqlite"
export ROCKET_CONFIG="$ROOT/Rocket.toml" ROCKET_PROFILE=release ROCKET_LOG_LEVEL=off
export ROCKET_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
export ROCKET_ADDRESS=$HOST ROCKET_PORT=$PORT ROCKET_DATABASES="{portal={url=\"sqlite://$DB?mode=rwc\"}}"

# The schema (the CLI migrates it) and the administrator, then the users.
printf '%s\n' "$PASSWORD" | "$BIN" users add root --admin >/dev/null
log "seeding $USERS users in one transaction"
python3 - "$DB" "$USERS" <<'PY'
import sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
with con:
    con.executemany(
        "INSERT INTO users (username, username_key, email, email_key, created_at) VALUES (?, ?, ?, ?, 0)",
        ((f"u{i:05d}", f"u{i:05d}", f"m{i:05d}@example.com", f"m{i:05d}@example.com") for i in range(n)),
    )
con.close()
PY

(cd "$TMP" && exec "$BIN") >"$TMP/portal.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/health" || true) == 200 ]] && break
    sleep 0.2
done

jar="$TMP/jar"
page=$(curl -sS -c "$jar" -b "$jar" "$BASE/login")
token=$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$page" | head -n 1 | sed 's/.*value="//; s/"$//')
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" \
    --data-urlencode "username=root" --data-urlencode "password=$PASSWORD" "$BASE/login")
[[ $code == 303 ]] || { echo "bench: sign-in answered $code" >&2; exit 1; }
cookie="portal_session=$(awk '$6 == "portal_session" { print $7 }' "$jar"); portal_csrf=$(awk '$6 == "portal_csrf" { print $7 }' "$jar")"

rows=(
    "first page (50), JSON|/api/admin/users"
    "last page, JSON|/api/admin/users?after=u99950"
    "prefix u5 (10,000 match; 50 shown), JSON|/api/admin/users?q=u5"
    "prefix u4242 (10 match), JSON|/api/admin/users?q=u4242"
    "email prefix m0421, JSON|/api/admin/users?q=m0421"
    "prefix u5, 100 per page, JSON|/api/admin/users?q=u5&limit=100"
    "prefix u5, the page|/admin?q=u5"
    "audit log, the page|/admin/events"
    "signed-in /welcome (for scale)|/welcome"
)
out="| row | req/s | p50 | p99 | non-2xx |\n|---|---:|---:|---:|---:|\n"
for row in "${rows[@]}"; do
    name=${row%%|*} path=${row#*|}
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$BASE$path") == 200 ]] ||
        { echo "bench: $path did not answer 200" >&2; exit 1; }
    wrk --latency -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: $cookie" "$BASE$path" >"$TMP/wrk.txt"
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$TMP/wrk.txt")
    p50=$(awk '$1 == "50%" { print $2 }' "$TMP/wrk.txt")
    p99=$(awk '$1 == "99%" { print $2 }' "$TMP/wrk.txt")
    bad=$(awk '/Non-2xx/ { print $NF }' "$TMP/wrk.txt")
    log "$name: $rps req/s, p50 $p50, p99 $p99"
    out+="| $name | $rps | $p50 | $p99 | ${bad:-0} |\n"
done
mkdir -p "$ROOT/bench/results"
{
    echo "Users: $USERS + 1 admin; $THREADS wrk threads, $CONNS connections, ${DURATION}s per row; $(nproc) CPUs; load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    printf "%b" "$out"
} | tee "$ROOT/bench/results/console.md"
