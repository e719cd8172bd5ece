#!/usr/bin/env bash
# Two builds of the portal side by side in one wrk session: the release binary of BASE_REV
# against that of the working tree (or of HEAD_REV), with the bare-Rocket floor
# (benches/floor.rs) as the yardstick. Every page and the forward-auth check get a row. The
# servers run at once on their own ports and each row runs them back to back in three
# rounds, each server in every position once (floor base head, base head floor, head floor
# base), so a slow spell of this noisy host falls on all of them alike; each reports its
# best pass (the most requests a second, the least CPU a request).
#
#   bench/compare.sh 4efdfd7                 # 4efdfd7 against the working tree
#   bench/compare.sh 4efdfd7 main            # two revisions
#   BENCH_DURATION=5 bench/compare.sh 4efdfd7
#
# Per row and server: requests per second, the ratio to the floor's matching row, p99, and
# the server's CPU time per request (utime + stime from /proc over the row), the figure that
# holds up best on a shared host. Writes the table to bench/results/compare.md.
#
# Binaries are built with CARGO_TARGET_DIR=target/compare (dependencies shared between the
# revisions) and a revision's is kept as target/compare/bins/portal-<sha>, so it is built
# once; the working tree is built every time. Knobs: BENCH_DURATION (seconds per pass,
# default 5), BENCH_ROUNDS (3; 12 rows of 9 passes: about 10 minutes), BENCH_ROWS (a comma-
# separated subset of the rows, by name), BENCH_THREADS (2),
# BENCH_CONNECTIONS (32), BENCH_PORT_BASE (18100). Needs cargo, git, wrk and curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_REV=${1:?usage: bench/compare.sh BASE_REV [HEAD_REV]}
HEAD_REV=${2:-}
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
PORT_BASE=${BENCH_PORT_BASE:-18100}
HOST=127.0.0.1
PASSWORD="bench: not a common password"
TARGET="$ROOT/target/compare"
TICKS=$(getconf CLK_TCK)

for tool in cargo git wrk curl awk; do
    command -v "$tool" >/dev/null || { echo "compare: $tool is needed" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portal-compare.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    git -C "$ROOT" worktree remove --force "$TMP/src" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '== %s\n' "$*" >&2; }

# --- builds -----------------------------------------------------------------------------
# build_rev REV: the release binary of a committed revision, built once; prints its path.
build_rev() {
    local sha bin
    sha=$(git -C "$ROOT" rev-parse --short=10 "$1^{commit}")
    bin="$TARGET/bins/portal-$sha"
    if [[ ! -x $bin ]]; then
        log "building $1 ($sha), release"
        git -C "$ROOT" worktree add --detach --force "$TMP/src" "$sha" >/dev/null 2>&1
        (cd "$TMP/src" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin portal >&2)
        mkdir -p "$TARGET/bins"
        cp "$TARGET/release/portal" "$bin"
        git -C "$ROOT" worktree remove --force "$TMP/src"
    fi
    echo "$bin"
}
BASE_BIN=$(build_rev "$BASE_REV")
if [[ -n $HEAD_REV ]]; then
    HEAD_BIN=$(build_rev "$HEAD_REV")
    HEAD_NAME=$(git -C "$ROOT" rev-parse --short "$HEAD_REV")
else
    log "building the working tree and the floor, release"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin portal >&2)
    HEAD_BIN="$TMP/portal-head"
    cp "$TARGET/release/portal" "$HEAD_BIN"
    HEAD_NAME="$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src || echo +)"
fi
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bench floor >&2)
FLOOR_BIN=$(find "$TARGET/release/deps" -maxdepth 1 -type f -executable -name 'floor-*' -printf '%T@ %p\n' |
    sort -n | tail -n 1 | cut -d' ' -f2)
BASE_NAME=$(git -C "$ROOT" rev-parse --short "$BASE_REV")

# --- servers ----------------------------------------------------------------------------
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
hidden() { grep -o "name=\"$2\" value=\"[^\"]*\"" <<<"$1" | head -n 1 | sed 's/.*value="//; s/"$//'; }
jar_cookie() { awk -v n="$2" '$6 == n { v = $7 } END { print v }' "$1"; }
wait_up() {
    local url=$1 pid=$2 deadline=$(($(date +%s) + 30))
    until [[ $(status_of "$url") == 200 ]]; do
        kill -0 "$pid" 2>/dev/null || { echo "compare: a server exited at start" >&2; exit 1; }
        (($(date +%s) < deadline)) || { echo "compare: $url never answered 200" >&2; exit 1; }
        sleep 0.1
    done
}

declare -A PID URL COOKIE
SECRET_KEY=$(head -c 32 /dev/urandom | base64)

# portal NAME BIN PORT: a portal on a fresh store of its own, with an admin `bench`
# signed in (COOKIE[NAME]) and forward-auth on for app.bench.test.
portal() {
    local name=$1 bin=$2 port=$3 dir="$TMP/$1" jar="$TMP/$1.jar" page token
    mkdir -p "$dir"
    local env=(ROCKET_CONFIG="$ROOT/Rocket.toml" ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_LOG_LEVEL=critical
        ROCKET_ADDRESS=$HOST ROCKET_PORT=$port ROCKET_DATABASES="{portal={url=\"sqlite://$dir/p.sqlite?mode=rwc\"}}"
        ROCKET_PUBLIC_URL="http://$HOST:$port" ROCKET_FORWARD_AUTH='{allowed_domains=["app.bench.test"]}')
    printf '%s\n' "$PASSWORD" | (cd "$dir" && env "${env[@]}" "$bin" users add bench --admin) >/dev/null
    (cd "$dir" && exec env "${env[@]}" "$bin") >"$dir/log" 2>&1 &
    PID[$name]=$! URL[$name]="http://$HOST:$port"
    PIDS+=("$!")
    wait_up "${URL[$name]}/health" "${PID[$name]}"
    page=$(curl -sS -c "$jar" -b "$jar" "${URL[$name]}/login")
    token=$(hidden "$page" csrf_token)
    [[ $(status_of -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" --data-urlencode username=bench \
        --data-urlencode "password=$PASSWORD" "${URL[$name]}/login") == 303 ]] ||
        { echo "compare: signing in to $name failed" >&2; exit 1; }
    COOKIE[$name]="portal_session=$(jar_cookie "$jar" portal_session); portal_csrf=$(jar_cookie "$jar" portal_csrf)"
}
log "starting base ($BASE_NAME), head ($HEAD_NAME) and the floor"
portal base "$BASE_BIN" "$PORT_BASE"
portal head "$HEAD_BIN" $((PORT_BASE + 1))
port=$((PORT_BASE + 2))
(cd "$TMP" && exec env ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_ADDRESS=$HOST ROCKET_PORT=$port ROCKET_LOG_LEVEL=off \
    "$FLOOR_BIN" --serve) >"$TMP/floor.log" 2>&1 &
PID[floor]=$! URL[floor]="http://$HOST:$port"
PIDS+=("$!")
wait_up "${URL[floor]}/health" "${PID[floor]}"
status_of -c "$TMP/floor.jar" "${URL[floor]}/signin" >/dev/null
COOKIE[floor]="floor_session=$(jar_cookie "$TMP/floor.jar" floor_session)"

# --- rows -------------------------------------------------------------------------------
# ROW: "name|path|signed in?|the floor's matching request|extra header". The floor has
# /login and /welcome; each row measures it again, in the same minute as the portals.
ROWS=(
    "login|/login|no|login|"
    "welcome_in|/welcome|yes|welcome_in|"
    "welcome_out|/welcome|no|welcome_out|"
    "home_in|/|yes|welcome_in|"
    "account|/account|yes|welcome_in|"
    "admin|/admin|yes|welcome_in|"
    "events|/admin/events|yes|welcome_in|"
    "api_me|/api/me|yes|welcome_in|"
    "api_sessions|/api/sessions|yes|welcome_in|"
    "authz_in|/authz/auth-request|yes|welcome_in|X-Original-URL: http://app.bench.test/page"
    "authz_out|/authz/auth-request|no|welcome_out|X-Original-URL: http://app.bench.test/page"
    "health|/health|no|login|"
)
# Three rounds, each server once a round and in every position once (floor base head, base
# head floor, head floor base): no server runs twice in a row, so a slow spell of the host
# that spans two passes hits two servers, not both passes of one.
ORDER=()
for ((round = 0; round < ROUNDS; round++)); do
    for ((i = 0; i < 3; i++)); do
        apps=(floor base head)
        ORDER+=("${apps[$(((round + i) % 3))]}")
    done
done
# BENCH_ROWS=a,b: those rows alone (a second look at a row that moved).
if [[ -n ${BENCH_ROWS:-} ]]; then
    chosen=()
    for spec in "${ROWS[@]}"; do
        [[ ,$BENCH_ROWS, == *,${spec%%|*},* ]] && chosen+=("$spec")
    done
    ((${#chosen[@]})) || { echo "compare: no row is named in BENCH_ROWS=$BENCH_ROWS" >&2; exit 2; }
    ROWS=("${chosen[@]}")
fi
declare -A RPS P99 CPU
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# measure APP ROW PATH SIGNED_IN HEADER PASS
measure() {
    local app=$1 row=$2 path=$3 signed=$4 header=$5 pass=$6 out="$TMP/wrk.txt" before after cpu args=()
    [[ $signed == yes ]] && args+=(-H "Cookie: ${COOKIE[$app]}")
    [[ -n $header ]] && args+=(-H "$header")
    before=$(cpu_ticks "${PID[$app]}")
    wrk --latency -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "${args[@]}" "${URL[$app]}$path" >"$out" 2>&1 ||
        { cat "$out" >&2; exit 1; }
    after=$(cpu_ticks "${PID[$app]}")
    read -r rps p99 reqs < <(awk '
        function ms(v) { if (v ~ /us$/) return v * 0.001; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /^Requests\/sec:/ { rps = $2 } $1 == "99%" { p99 = ms($2) } / requests in / { n = $1 }
        END { printf "%.0f %.2f %d\n", rps, p99, n }' "$out")
    if grep -q "Non-2xx or 3xx" "$out" && [[ $row != authz_out ]]; then
        echo "compare: $app $row answered errors:" >&2; cat "$out" >&2; exit 1
    fi
    cpu=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$reqs" 'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }')
    # The best pass: the most requests a second (with its p99), the least CPU a request.
    if [[ -z ${RPS[$app,$row]:-} ]] || ((rps > ${RPS[$app,$row]})); then
        RPS[$app,$row]=$rps P99[$app,$row]=$p99
    fi
    if [[ -z ${CPU[$app,$row]:-} ]] || awk -v a="$cpu" -v b="${CPU[$app,$row]}" 'BEGIN { exit !(a < b) }'; then
        CPU[$app,$row]=$cpu
    fi
    log "$app $row: $rps req/s, p99 $p99 ms, $cpu µs CPU/request"
}
# The signed-in session stays fresh (no cookie rewrite) for session.refresh_after (60 s):
# sign in afresh before each row.
refresh() {
    local app jar page token
    for app in base head; do
        jar="$TMP/$app.jar"
        page=$(curl -sS -c "$jar" -b "$jar" "${URL[$app]}/login")
        token=$(hidden "$page" csrf_token)
        status_of -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" --data-urlencode username=bench \
            --data-urlencode "password=$PASSWORD" "${URL[$app]}/login" >/dev/null
        COOKIE[$app]="portal_session=$(jar_cookie "$jar" portal_session); portal_csrf=$(jar_cookie "$jar" portal_csrf)"
    done
}
for spec in "${ROWS[@]}"; do
    IFS='|' read -r row path signed floor_row header <<<"$spec"
    refresh
    fpath=/login fsigned=no
    [[ $floor_row == welcome_* ]] && fpath=/welcome
    [[ $floor_row == welcome_in ]] && fsigned=yes
    for app in "${ORDER[@]}"; do
        if [[ $app == floor ]]; then
            measure floor "$row" "$fpath" "$fsigned" "" "$app"
        else
            measure "$app" "$row" "$path" "$signed" "$header" "$app"
        fi
    done
done

# --- report -----------------------------------------------------------------------------
mkdir -p "$ROOT/bench/results"
out="$ROOT/bench/results/compare.md"
{
    echo "bench/compare.sh $BASE_REV${HEAD_REV:+ $HEAD_REV} on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores;" \
        "wrk -t$THREADS -c$CONNS, ${DURATION} s a pass, the best of $ROUNDS passes (req/s and CPU each);" \
        "the floor's matching request in brackets"
    echo
    echo "| row | floor req/s | base $BASE_NAME req/s (of floor) | head $HEAD_NAME req/s (of floor) | head/base | p99 ms base / head | CPU µs/req floor / base / head |"
    echo "|---|---|---|---|---|---|---|"
    for spec in "${ROWS[@]}"; do
        IFS='|' read -r row path signed floor_row header <<<"$spec"
        f=${RPS[floor,$row]} b=${RPS[base,$row]} h=${RPS[head,$row]}
        awk -v row="$row" -v path="$path" -v s="$signed" -v f="$f" -v b="$b" -v h="$h" \
            -v pb="${P99[base,$row]}" -v ph="${P99[head,$row]}" \
            -v cf="${CPU[floor,$row]}" -v cb="${CPU[base,$row]}" -v ch="${CPU[head,$row]}" -v fr="$floor_row" 'BEGIN {
            printf "| %s `GET %s`%s | %d (%s) | %d (%.2f) | %d (%.2f) | %.2f | %s / %s | %s / %s / %s |\n",
                row, path, (s == "yes" ? " signed in" : ""), f, fr, b, b / f, h, h / f, h / b, pb, ph, cf, cb, ch
        }'
    done
} >"$out"
cat "$out"
