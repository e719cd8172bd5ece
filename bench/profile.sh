#!/usr/bin/env bash
# Where one request's time goes: the release binary under callgrind, a fixed load of one
# route, and the instructions per request of every function on the path, inclusive and
# exclusive. Callgrind counts instructions, not seconds, so the figures repeat on this noisy
# host (the same binary, route and load give the same counts, whatever else runs).
#
#   bench/profile.sh welcome_in              # GET /welcome signed in
#   bench/profile.sh login 4000              # GET /login, 4000 requests
#   PORTAL_BIN=target/compare/bins/portal-4efdfd7xxx bench/profile.sh authz_in
#   PORTAL_BIN=floor bench/profile.sh welcome_in   # the bare-Rocket floor (benches/floor.rs)
#
# Routes: login, welcome_in, welcome_out, account, admin, api_me, api_sessions, health,
# authz_in, authz_out (the
# floor has login, welcome_in and welcome_out: the yardstick of a budget). The
# profile and a summary (the top functions per request) go to bench/results/profile-ROUTE.*
# (profile-floor-ROUTE.* for the floor);
# `callgrind_annotate --inclusive=yes FILE` reads the profile further. Needs valgrind, curl
# and (unless PORTAL_BIN names one) cargo to build the release binary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUTE=${1:?usage: bench/profile.sh ROUTE [REQUESTS]}
REQUESTS=${2:-2000}
PORT=${BENCH_PORT_BASE:-18200}
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
PASSWORD="bench: not a common password"
AUTHZ="X-Original-URL: http://app.bench.test/page"

for tool in valgrind callgrind_control callgrind_annotate curl; do
    command -v "$tool" >/dev/null || { echo "profile: $tool is needed (Debian's valgrind, curl)" >&2; exit 2; }
done
case $ROUTE in
login) path=/login signed=no header= ;;
welcome_in) path=/welcome signed=yes header= ;;
welcome_out) path=/welcome signed=no header= ;;
account) path=/account signed=yes header= ;;
admin) path=/admin signed=yes header= ;;
api_me) path=/api/me signed=yes header= ;;
api_sessions) path=/api/sessions signed=yes header= ;;
health) path=/health signed=no header= ;;
authz_in) path=/authz/auth-request signed=yes header=$AUTHZ ;;
authz_out) path=/authz/auth-request signed=no header=$AUTHZ ;;
*) echo "profile: unknown route $ROUTE" >&2; exit 2 ;;
esac

FLOOR=no
if [[ ${PORTAL_BIN:-} == floor ]]; then
    FLOOR=yes
    [[ $ROUTE == login || $ROUTE == welcome_* ]] || { echo "profile: the floor has no $ROUTE" >&2; exit 2; }
    (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target/compare" cargo build --release --quiet --bench floor)
    PORTAL_BIN=$(find "$ROOT/target/compare/release/deps" -maxdepth 1 -type f -executable -name 'floor-*' \
        -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)
elif [[ -n ${PORTAL_BIN:-} ]]; then
    PORTAL_BIN=$(realpath "$PORTAL_BIN")
else
    (cd "$ROOT" && cargo build --release --quiet --bin portal)
    PORTAL_BIN="$ROOT/target/release/portal"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portal-profile.XXXXXX")
SERVER=
cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

ENV=(ROCKET_CONFIG="$ROOT/Rocket.toml" ROCKET_SECRET_KEY="$(head -c 32 /dev/urandom | base64)"
    ROCKET_LOG_LEVEL=critical ROCKET_ADDRESS=$HOST ROCKET_PORT=$PORT ROCKET_WORKERS=2
    ROCKET_DATABASES="{portal={url=\"sqlite://$TMP/p.sqlite?mode=rwc\"}}"
    ROCKET_PUBLIC_URL="$BASE" ROCKET_FORWARD_AUTH='{allowed_domains=["app.bench.test"]}')
SERVE=()
if [[ $FLOOR == yes ]]; then
    SERVE=(--serve)
else
    printf '%s\n' "$PASSWORD" | (cd "$TMP" && env "${ENV[@]}" "$PORTAL_BIN" users add bench --admin) >/dev/null
fi

out="$TMP/callgrind.out"
(cd "$TMP" && exec env "${ENV[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" \
    --dump-instr=no --collect-atstart=yes "$PORTAL_BIN" "${SERVE[@]}") >"$TMP/server.log" 2>&1 &
SERVER=$!
deadline=$(($(date +%s) + 120))
until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/health" || true) == 200 ]]; do
    kill -0 "$SERVER" 2>/dev/null || { cat "$TMP/server.log" >&2; exit 1; }
    (($(date +%s) < deadline)) || { echo "profile: no answer from the portal under valgrind" >&2; exit 1; }
    sleep 0.5
done

jar="$TMP/jar"
args=()
if [[ $signed == yes && $FLOOR == yes ]]; then
    curl -sS -o /dev/null -c "$jar" "$BASE/signin"
    args+=(-b "$jar")
elif [[ $signed == yes ]]; then
    page=$(curl -sS -c "$jar" -b "$jar" "$BASE/login")
    token=$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$page" | head -n 1 | sed 's/.*value="//; s/"$//')
    curl -sS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" \
        --data-urlencode username=bench --data-urlencode "password=$PASSWORD" "$BASE/login"
    # The welcome page a browser lands on shows the sign-in's flash and drops its cookie.
    curl -sS -o /dev/null -c "$jar" -b "$jar" "$BASE/welcome"
    args+=(-b "$jar")
fi
[[ -n $header ]] && args+=(-H "$header")
read -r status header_bytes body_bytes < <(curl -s -o /dev/null -w '%{http_code} %{size_header} %{size_download}\n' \
    "${args[@]}" "$BASE$path")
echo "profile: GET $path answers $status" >&2

# Warm up (caches, the session cache, the first template render), then count from zero.
for _ in $(seq 50); do curl -s -o /dev/null "${args[@]}" "$BASE$path"; done
callgrind_control -z "$SERVER" >/dev/null
# One curl a request would be slow; curl's URL globbing sends them all on kept-alive
# connections from one process.
curl -s "${args[@]}" "$BASE$path?[1-$REQUESTS]" >/dev/null || true
callgrind_control -d "$SERVER" >/dev/null
sleep 1
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
SERVER=

mkdir -p "$ROOT/bench/results"
dump=$(ls -t "$out".* 2>/dev/null | head -n 1)
[[ $FLOOR == yes ]] && name=floor-$ROUTE || name=$ROUTE
cp "$dump" "$ROOT/bench/results/profile-$name.callgrind"
summary="$ROOT/bench/results/profile-$name.txt"
{
    [[ $signed == yes ]] && who=" signed in" || who=""
    echo "bench/profile.sh $ROUTE $REQUESTS: GET $path$who -> $status," \
        "$(basename "$PORTAL_BIN"), $(date -u '+%Y-%m-%d %H:%M UTC')"
    total=$(awk '/^summary:|^totals:/ { print $2; exit }' "$dump")
    echo "instructions per request: $((total / REQUESTS)) (all threads, the requests' own work and the runtime's)"
    echo "bytes on the wire: $header_bytes of headers, $body_bytes of body"
    echo
    echo "inclusive instructions per request, top functions:"
    callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
        awk -v n="$REQUESTS" '/^ *[0-9,]+ / { v = $1; gsub(/,/, "", v); $1 = ""; printf "%10d %s\n", v / n, $0 }' |
        sed -n 1,60p
    echo
    echo "exclusive instructions per request, top functions:"
    # (the thread's and the runtime's frames, which callgrind_annotate lists as ~100%, left out)
    callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null |
        awk -v n="$REQUESTS" '/^ *[0-9,]+ / && $2 !~ /^\((100\.0|99\.[0-9]+)%\)$/ {
            v = $1; gsub(/,/, "", v); $1 = ""; printf "%10d %s\n", v / n, $0 }' |
        sed -n 1,40p
} >"$summary"
cat "$summary"
