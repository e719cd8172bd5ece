#!/usr/bin/env bash
# Load benchmark: the portal's release binary against the Flask reference app (gunicorn, two
# sync workers) and the floor (benches/floor.rs, a bare Rocket app with the same guard
# shape), all on 127.0.0.1, measured with wrk. Prints a markdown table with ratios and the
# targets from BENCHMARKS.md and writes it to bench/results/latest.md.
#
#   bench/run.sh                      # 10 s per row, ~7 minutes plus the builds
#   BENCH_DURATION=5 bench/run.sh     # shorter rows
#
# Knobs (environment): BENCH_DURATION (seconds per wrk row, default 10), BENCH_THREADS (2),
# BENCH_STEP_USERS (the second-step row's users), BENCH_MAIL (the outbox row's messages, 300),
# BENCH_OIDC_TOKENS (the token rows' codes
# and refresh tokens, each; default 2000 per second of row),
# BENCH_CONNECTIONS (32), BENCH_FLOOD (64 POST /login clients), BENCH_VENV (where the Flask
# virtualenv lives, default ~/.cache/portal-bench/venv), FLASK_DIR (the reference app,
# default ../shared/reference/flask_seed), VERIFY_MS (time of one Argon2id verify; measured
# with `floor --verify-ms` when unset), BENCH_PORT_BASE (default 18000: portal, +1 Flask,
# +2 floor), BENCH_PORTAL_ENV (extra VAR=value words for the portal's runs, for experiments
# such as MALLOC_ARENA_MAX=2). Needs cargo, wrk, curl, python3 (for the venv) and Linux /proc.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10}
DURATION=${DURATION%s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
FLOOD=${BENCH_FLOOD:-64}
PORT_BASE=${BENCH_PORT_BASE:-18000}
VENV=${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/portal-bench/venv}
FLASK_DIR=${FLASK_DIR:-$ROOT/../shared/reference/flask_seed}
HOST=127.0.0.1
PASSWORD="bench: not a common password"
NPROC=$(nproc)
# The portal's default: hashing.concurrency = 0 means CPU count - 1, at least 1.
PERMITS=$((NPROC > 1 ? NPROC - 1 : 1))
STEP_TIMEOUT=$((DURATION + 60))

for tool in cargo wrk curl python3 awk; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 2; }
done
[[ -f $FLASK_DIR/app.py ]] || { echo "bench: no Flask reference app at $FLASK_DIR (set FLASK_DIR)" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portal-bench.XXXXXX")
PIDS=()

# Ends every process this script started (and gunicorn's workers), then removes the temp dir.
cleanup() {
    local status=$? pid child
    # A failed run keeps the servers' logs (errors and warnings: log_level = critical).
    if ((status != 0)) && [[ -d $TMP ]]; then
        mkdir -p "$ROOT/bench/results/failed"
        cp "$TMP"/*.log "$ROOT/bench/results/failed/" 2>/dev/null || true
        echo "bench: the servers' logs are in bench/results/failed/" >&2
    fi
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            for child in $(pgrep -P "$pid" || true); do kill "$child" 2>/dev/null || true; done
            kill "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }
now_ns() { date +%s%N; }

# --- builds -----------------------------------------------------------------------------
log "building the portal and the floor (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --bin portal --bench floor \
    --message-format=json-render-diagnostics >"$TMP/cargo.json")
read -r PORTAL_BIN FLOOR_BIN < <(python3 - "$TMP/cargo.json" <<'EOF'
import json, sys
found = {}
for line in open(sys.argv[1]):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
        found[msg["target"]["name"]] = msg["executable"]
print(found["portal"], found["floor"])
EOF
)

# --- the Flask reference's virtualenv ---------------------------------------------------
if [[ ! -x $VENV/bin/gunicorn ]]; then
    log "creating the Flask virtualenv in $VENV"
    python3 -m venv "$VENV"
    timeout 600 "$VENV/bin/pip" install --quiet flask gunicorn
fi

# --- the cost of one password check -----------------------------------------------------
# While sign-ins are queued, each verification runs in working memory handed on from the
# one before: `floor --verify-ms` times that. This machine's speed drifts (the same hash
# takes 42 ms for a while, then 60-70 ms for a while, on either CPU), so for the POST rows it
# is timed again over $DURATION seconds right before and right after each row, and each row
# is set against the faster of the two (time_verify and row_limit, in post_rows). A lone
# sign-in maps its memory afresh (`floor --verify-ms-fresh`), reported for reference.
verify_ms() { timeout 120 "$FLOOR_BIN" "$@"; }
if [[ -z ${VERIFY_MS:-} ]]; then
    log "timing one Argon2id verify (floor --verify-ms, --verify-ms-fresh)"
    VERIFY_MS=$(verify_ms --verify-ms)
    FRESH_MS=$(verify_ms --verify-ms-fresh)
    VERIFY_FIXED=
else
    FRESH_MS=-
    VERIFY_FIXED=1
fi
hash_limit() { awk -v p="$PERMITS" -v ms="$1" 'BEGIN { printf "%.1f", p * 1000 / ms }'; }
# The portal's default hashing.queue (sign-ins that may wait for a permit): 32 per permit.
QUEUE=${BENCH_QUEUE:-$((32 * PERMITS))}
# Rounds of the portal's POST row (see post_rows).
POST_ROUNDS=${BENCH_POST_ROUNDS:-3}
# Twice the time the hash permits need to get through a full row's worth of queued sign-ins.
DRAIN_S=$(awk -v c="$CONNS" -v p="$PERMITS" -v ms="$VERIFY_MS" 'BEGIN { printf "%d", 2 * c * ms / p / 1000 + 1 }')

# --- helpers ----------------------------------------------------------------------------
declare -A R # results: R[app,row,field]

# wait_http NAME PID URL: waits (30 s at most) for a 200; prints the ms since $START_NS.
wait_http() {
    local name=$1 pid=$2 url=$3 deadline=$(($(date +%s) + 30))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true) == 200 ]]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: $name exited during startup:" >&2
            tail -n 20 "$TMP/$name.log" >&2
            exit 1
        fi
        if (($(date +%s) > deadline)); then
            echo "bench: $name did not answer $url within 30 s" >&2
            exit 1
        fi
    done
    echo $((($(now_ns) - START_NS) / 1000000))
}

# start NAME HEALTH_PATH PORT COMMAND...: starts a server in $TMP, waits for a 200, and
# sets SERVER_PID and STARTUP_MS.
start() {
    local name=$1 path=$2 port=$3
    shift 3
    START_NS=$(now_ns)
    (cd "$TMP" && exec "$@") >"$TMP/$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    STARTUP_MS=$(wait_http "$name" "$SERVER_PID" "http://$HOST:$port$path")
}

stop() {
    local pid=$1 child
    for child in $(pgrep -P "$pid" || true); do kill "$child" 2>/dev/null || true; done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The process and its children (gunicorn's workers): their VmRSS or VmHWM summed, in KiB.
mem_kib() {
    local field=$1 pid=$2 sum=0 p v
    for p in "$pid" $(pgrep -P "$pid" || true); do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# parse_wrk FILE: "req/s p50 p99 failed statuses seconds" from wrk's output: latencies in
# ms, failed = non-2xx/3xx answers plus socket errors (connect, read, write, timeout),
# statuses as counted by bench/post.lua ("200:1234,503:56", or "-"), seconds measured.
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v * 0.001
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { failed += $NF }
        /Socket errors:/ { gsub(/,/, ""); failed += $4 + $6 + $8 + $10 }
        /^status [0-9]+: [0-9]+$/ { sub(/:/, "", $2); st = st (st == "" ? "" : ",") $2 ":" $3 }
        / requests in [0-9.]+s,/ { secs = $4; sub(/s,$/, "", secs) }
        END {
            printf (rps >= 100 ? "%.0f" : "%.1f"), rps
            printf " %.2f %.2f %d %s %s\n", p50, p99, failed, (st == "" ? "-" : st), secs
        }' "$1"
}

# wrk_row APP ROW [wrk args...] URL: runs wrk and stores what parse_wrk reads.
wrk_row() {
    local app=$1 row=$2 out="$TMP/wrk.$1.$2.txt"
    shift 2
    timeout "$STEP_TIMEOUT" wrk --latency "$@" >"$out" 2>&1 || { cat "$out" >&2; exit 1; }
    read -r rps p50 p99 failed statuses secs < <(parse_wrk "$out")
    R[$app,$row,rps]=$rps R[$app,$row,p50]=$p50 R[$app,$row,p99]=$p99
    R[$app,$row,failed]=$failed R[$app,$row,statuses]=$statuses R[$app,$row,secs]=$secs
    log "$app $row: $rps req/s, p50 $p50 ms, p99 $p99 ms, failed $failed, statuses $statuses"
}

# hidden PAGE NAME: the value of a hidden form field.
hidden() { grep -o "name=\"$2\" value=\"[^\"]*\"" <<<"$1" | head -n 1 | sed 's/.*value="//; s/"$//'; }
# jar_cookie JAR NAME: a cookie's value from a curl cookie jar.
jar_cookie() { awk -v n="$2" '$6 == n { v = $7 } END { print v }' "$1"; }

# status_of URL [curl args]: the HTTP status of one request.
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }

# get_rows: GET /login (no cookies: a first visit), GET /welcome with the session cookie and
# GET /welcome without it, for the three servers (all running, on their own ports). This
# machine's speed drifts (the host's other tenants), so each row runs the servers back to
# back, in the order portal, Flask, floor and then floor, Flask, portal, and reports each
# server's better run of the two (the other one's req/s in brackets): a slow spell only ever
# slows a run down, so the better run is the nearer to what the server can do, and every
# server gets the same treatment.
get_rows() {
    local row app pass=0 url
    for row in login welcome_in welcome_out; do
        for app in portal flask floor floor flask portal; do
            pass=$((${R[$app,$row,runs]:-0} + 1))
            R[$app,$row,runs]=$pass
            case $row in
            login) url=${BASES[$app]}/login ;;
            *) url=${BASES[$app]}/welcome ;;
            esac
            # Signed in just before: the session stays fresh (no cookie rewrite) for
            # session.refresh_after = 60 s, and wrk keeps no cookies.
            [[ $row == welcome_in && $app == portal ]] && COOKIES[portal]=$(portal_sign_in "${BASES[portal]}")
            if [[ $row == welcome_in ]]; then
                wrk_row "$app" "$row.$pass" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: ${COOKIES[$app]}" "$url"
            else
                wrk_row "$app" "$row.$pass" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$url"
            fi
        done
        for app in portal flask floor; do
            best=$(awk -v a="${R[$app,$row.1,rps]}" -v b="${R[$app,$row.2,rps]}" 'BEGIN { print (b > a ? 2 : 1) }')
            R[$app,$row,rps]=${R[$app,$row.$best,rps]}
            R[$app,$row,p50]=${R[$app,$row.$best,p50]}
            R[$app,$row,p99]=${R[$app,$row.$best,p99]}
            R[$app,$row,other]=${R[$app,$row.$((3 - best)),rps]}
            R[$app,$row,failed]=$((R[$app,$row.1,failed] + R[$app,$row.2,failed]))
        done
    done
}

# time_verify N: one verify's time (ms) over $DURATION seconds, in R[verify,N] (the server
# is idle meanwhile); or the fixed VERIFY_MS when that was given.
time_verify() {
    if [[ -n $VERIFY_FIXED ]]; then
        R[verify,$1]=$VERIFY_MS
    else
        R[verify,$1]=$(verify_ms --verify-ms "$DURATION")
    fi
    log "one Argon2id verify: ${R[verify,$1]} ms"
}
# row_limit A B: the hash limit (req/s) from the faster of verify timings A and B: drift can
# only make the portal's share look smaller, never larger.
row_limit() { hash_limit "$(awk -v a="${R[verify,$1]}" -v b="${R[verify,$2]}" 'BEGIN { print (a < b ? a : b) }')"; }

# post_rows APP BASE GET_COOKIE BODY POST_COOKIE PID: POST /login with a wrong password, then
# GET /welcome signed in while $FLOOD clients flood POST /login; then the peak RSS.
post_rows() {
    local app=$1 base=$2 cookie=$3 body=$4 post_cookie=$5 pid=$6 flood_pid
    local rounds=1 i
    # The portal's row runs $POST_ROUNDS times, each between two verify timings; the report
    # shows the round with the median share of the hash limit (post_round, below).
    if [[ $app == portal ]]; then
        rounds=$POST_ROUNDS
        time_verify 0
    fi
    for ((i = 1; i <= rounds; i++)); do
        BENCH_BODY=$body BENCH_COOKIE=$post_cookie wrk_row "$app" "post_wrong.$i" \
            -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 30s -s "$ROOT/bench/post.lua" "$base/login"
        # wrk leaves up to $CONNS sign-ins queued behind the hash permits, and the portal
        # still hashes them: let them drain, or the next row starts on a full queue.
        sleep "$DRAIN_S"
        if [[ $app == portal ]]; then time_verify "$i"; fi
    done
    # The flood starts first and ends after the measured GETs.
    BENCH_BODY=$body BENCH_COOKIE=$post_cookie wrk_row "$app" flood \
        -t"$THREADS" -c"$FLOOD" -d"$((DURATION + 3))s" --timeout 30s -s "$ROOT/bench/post.lua" \
        "$base/login" &
    flood_pid=$!
    PIDS+=("$flood_pid")
    sleep 1
    wrk_row "$app" welcome_flood -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: $cookie" "$base/welcome"
    wait "$flood_pid"
    # wrk_row ran in a subshell for the flood: read its file again here.
    read -r R[$app,flood,rps] R[$app,flood,p50] R[$app,flood,p99] R[$app,flood,failed] \
        R[$app,flood,statuses] R[$app,flood,secs] < <(parse_wrk "$TMP/wrk.$app.flood.txt")
    R[$app,peak_kib]=$(mem_kib VmHWM "$pid")
    R[$app,threads]=$(awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status")
    [[ $(status_of -H "Cookie: $cookie" "$base/welcome") == 200 ]] ||
        { echo "bench: $app's session stopped working during the flood" >&2; exit 1; }
}

# Other work on the machine skews everything below: the report shows the load averages.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# serving APP: the server just started (SERVER_PID, BASE, COOKIE) settles, its idle RSS is
# read, and it stays up for the interleaved GET rows.
declare -A PIDS_OF BASES COOKIES
serving() {
    sleep 1
    R[$1,idle_kib]=$(mem_kib VmRSS "$SERVER_PID")
    PIDS_OF[$1]=$SERVER_PID BASES[$1]=$BASE COOKIES[$1]=$COOKIE
}

# --- the portal -------------------------------------------------------------------------
SECRET_KEY=$(head -c 32 /dev/urandom | base64)
DB="$TMP/portal.sqlite"
PORT=$PORT_BASE
BASE="http://$HOST:$PORT"
# Forward-auth on (for the /authz rows): the gated host is app.bench.test.
PORTAL_ENV=(
    ROCKET_CONFIG="$ROOT/Rocket.toml"
    ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_LOG_LEVEL=critical ROCKET_ADDRESS=$HOST ROCKET_PORT=$PORT
    ROCKET_DATABASES="{portal={url=\"sqlite://$DB?mode=rwc\"}}"
    ROCKET_PUBLIC_URL="http://$HOST:$PORT" ROCKET_FORWARD_AUTH='{allowed_domains=["app.bench.test"]}'
)
# shellcheck disable=SC2206 # word splitting wanted: VAR=value words
PORTAL_ENV+=(${BENCH_PORTAL_ENV:-})

# A fresh session cookie: GET /login for the CSRF cookie and token, then POST the form.
# portal_sign_in [BASE]
portal_sign_in() {
    local base=${1:-$BASE} jar="$TMP/portal.jar" page token code
    rm -f "$jar"
    page=$(curl -sS --max-time 10 -c "$jar" -b "$jar" "$base/login")
    token=$(hidden "$page" csrf_token)
    code=$(status_of -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" \
        --data-urlencode "username=bench" --data-urlencode "password=$PASSWORD" "$base/login")
    [[ $code == 303 ]] || { echo "bench: signing in to the portal answered $code" >&2; exit 1; }
    # Both cookies a signed-in browser sends: the session, and the CSRF cookie set at sign-in
    # (without it, every page would mint a new one).
    echo "portal_session=$(jar_cookie "$jar" portal_session); portal_csrf=$(jar_cookie "$jar" portal_csrf)"
}

# Start to first 200, three times on a fresh database each (the median is reported); the
# third start goes on to serve the GET rows.
STARTS=()
for i in 1 2 3; do
    log "portal: start $i on a fresh database"
    rm -f "$DB" "$DB-wal" "$DB-shm"
    start portal /health "$PORT" env "${PORTAL_ENV[@]}" "$PORTAL_BIN"
    STARTS+=("$STARTUP_MS")
    ((i == 3)) || stop "$SERVER_PID"
done
R[portal,startup_ms]=$(printf '%s\n' "${STARTS[@]}" | sort -n | sed -n 2p)
R[portal,startups]="${STARTS[*]}"
sleep 1
R[portal,start_kib]=$(mem_kib VmRSS "$SERVER_PID")
printf '%s\n' "$PASSWORD" | (cd "$TMP" && env "${PORTAL_ENV[@]}" timeout 60 "$PORTAL_BIN" users add bench) >/dev/null
COOKIE=$(portal_sign_in)
[[ $(status_of -H "Cookie: $COOKIE" "$BASE/welcome") == 200 ]] || { echo "bench: the session does not open /welcome" >&2; exit 1; }
serving portal

# --- Flask ------------------------------------------------------------------------------
PORT=$((PORT_BASE + 1))
BASE="http://$HOST:$PORT"
log "Flask: gunicorn, 2 sync workers"
start flask /login "$PORT" env PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/gunicorn" --chdir "$FLASK_DIR" \
    --workers 2 --worker-class sync --bind "$HOST:$PORT" app:app
R[flask,startup_ms]=$STARTUP_MS
jar="$TMP/flask.jar"
code=$(status_of -c "$jar" -b "$jar" --data "username=admin&password=admin" "$BASE/login")
[[ $code == 302 ]] || { echo "bench: signing in to Flask answered $code" >&2; exit 1; }
# The first page after sign-in consumes the flash message, so the cookie settles.
status_of -c "$jar" -b "$jar" "$BASE/" >/dev/null
COOKIE="session=$(jar_cookie "$jar" session)"
[[ $(status_of -H "Cookie: $COOKIE" "$BASE/welcome") == 200 ]] || { echo "bench: Flask's session does not open /welcome" >&2; exit 1; }
serving flask

# --- the floor --------------------------------------------------------------------------
PORT=$((PORT_BASE + 2))
BASE="http://$HOST:$PORT"
log "floor"
start floor /health "$PORT" env ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_ADDRESS=$HOST ROCKET_PORT=$PORT \
    ROCKET_LOG_LEVEL=off "$FLOOR_BIN" --serve
R[floor,startup_ms]=$STARTUP_MS
jar="$TMP/floor.jar"
status_of -c "$jar" "$BASE/signin" >/dev/null
COOKIE="floor_session=$(jar_cookie "$jar" floor_session)"
[[ $(status_of -H "Cookie: $COOKIE" "$BASE/welcome") == 200 ]] || { echo "bench: the floor's cookie does not open /welcome" >&2; exit 1; }
serving floor

# --- the GET rows, interleaved ----------------------------------------------------------
get_rows

# --- forward-auth -----------------------------------------------------------------------
# The check nginx makes on every request of a gated application, signed in and not: twice
# each, the better run reported (as for the GET rows), against the floor's signed-in row.
AUTHZ_URL="X-Original-URL: http://app.bench.test/page"
# best_pass APP ROW: ROW's figures are those of the better of its passes ROW.1 and ROW.2;
# the other pass's req/s is kept beside them.
best_pass() {
    local app=$1 row=$2 best field
    best=$(awk -v a="${R[$app,$row.1,rps]}" -v b="${R[$app,$row.2,rps]}" 'BEGIN { print (b > a ? 2 : 1) }')
    for field in rps p50 p99 failed; do R[$app,$row,$field]=${R[$app,$row.$best,$field]}; done
    R[$app,$row,other]=${R[$app,$row.$((3 - best)),rps]}
}
authz_rows() {
    local pass
    COOKIES[portal]=$(portal_sign_in "${BASES[portal]}")
    for pass in 1 2; do
        wrk_row portal "authz_in.$pass" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: ${COOKIES[portal]}" \
            -H "$AUTHZ_URL" "${BASES[portal]}/authz/auth-request"
        wrk_row portal "authz_out.$pass" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "$AUTHZ_URL" \
            "${BASES[portal]}/authz/auth-request"
    done
    for row in authz_in authz_out; do best_pass portal "$row"; done
    [[ $(status_of -H "Cookie: ${COOKIES[portal]}" -H "$AUTHZ_URL" "${BASES[portal]}/authz/auth-request") == 200 ]] ||
        { echo "bench: the forward-auth check did not answer 200 signed in" >&2; exit 1; }
}
authz_rows

# Through a real nginx (one worker) with the shipped forward-auth snippets, in front of a
# static upstream (an nginx location answering "ok"): with the portal in the path, and the
# same proxy without it. Skipped, with a line saying so, when nginx is not installed.
NGINX=${NGINX:-/usr/sbin/nginx}
# nginx_preamble DIR: the start of a one-worker nginx.conf living in DIR, up to inside `http {`.
nginx_preamble() {
    local dir=$1
    [[ $(id -u) == 0 ]] && echo "user root;"
    cat <<PREAMBLE
daemon off; worker_processes 1; pid $dir/nginx.pid; error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi;
    uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
PREAMBLE
}
nginx_rows() {
    local dir="$TMP/nginx" gate=$((PORT_BASE + 5)) plain=$((PORT_BASE + 6)) static=$((PORT_BASE + 7))
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<NGINX_CONF
$(nginx_preamble "$dir")
    upstream portal { server $HOST:$PORT_BASE; keepalive 32; }
    upstream static { server $HOST:$static; keepalive 32; }
    server { listen $HOST:$static; location / { return 200 "ok\n"; } }
    server {
        listen $HOST:$gate;
        include $ROOT/deploy/nginx/portal-auth-location.conf;
        location / {
            include $ROOT/deploy/nginx/portal-auth.conf;
            proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass http://static;
        }
    }
    server {
        listen $HOST:$plain;
        location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://static; }
    }
}
NGINX_CONF
    (exec "$NGINX" -p "$dir" -c "$dir/nginx.conf") >"$TMP/nginx.log" 2>&1 &
    PIDS+=("$!")
    local nginx_pid=$!
    until [[ $(status_of -H "Host: app.bench.test" -H "Cookie: ${COOKIES[portal]}" "http://$HOST:$gate/page") == 200 ]]; do
        kill -0 "$nginx_pid" 2>/dev/null || { cat "$TMP/nginx.log" "$dir/error.log" >&2; exit 1; }
        sleep 0.2
    done
    [[ $(status_of -H "Host: app.bench.test" "http://$HOST:$gate/page") == 302 ]] ||
        { echo "bench: nginx did not send a signed-out request to the login page" >&2; exit 1; }
    wrk_row nginx gated -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Host: app.bench.test" \
        -H "Cookie: ${COOKIES[portal]}" "http://$HOST:$gate/page"
    wrk_row nginx plain -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Host: app.bench.test" "http://$HOST:$plain/page"
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -s stop 2>/dev/null || kill "$nginx_pid"
    wait "$nginx_pid" 2>/dev/null || true
}
if [[ -x $NGINX ]]; then
    nginx_rows
else
    log "no nginx at $NGINX: the nginx auth_request rows are skipped (install Debian's nginx, or set NGINX)"
fi

[[ $(status_of -H "Cookie: ${COOKIES[portal]}" "${BASES[portal]}/welcome") == 200 ]] || { echo "bench: the portal session stopped working" >&2; exit 1; }
stop "${PIDS_OF[portal]}"

# --- the rest of the portal's rows --------------------------------------------------------
PORT=$PORT_BASE
BASE=${BASES[portal]}
# The guard keeps the user it read for session.cache_ttl seconds (if the build has that), so
# the signed-in row above hardly reads the store: here every request does.
log "portal: session.cache_ttl = 0"
start portal-nocache /health "$PORT" env "${PORTAL_ENV[@]}" ROCKET_SESSION='{cache_ttl=0}' "$PORTAL_BIN"
COOKIE=$(portal_sign_in)
wrk_row portal welcome_nocache -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: $COOKIE" "$BASE/welcome"
stop "$SERVER_PID"

# --- PostgreSQL: the store on a server, and two instances behind one address --------------
# BENCH_POSTGRES (or PORTAL_TEST_POSTGRES) names a server to make a database on; unset, the
# throwaway cluster of .ci/postgres.sh is started when Debian's PostgreSQL is installed. The
# rows: GET /welcome signed in on PostgreSQL with the session cache on (2 s) and off, and
# through nginx (round robin, the shipped deploy/nginx/portal-balancer.conf's shape) to one
# instance and to two on one database.
PG_ADMIN=${BENCH_POSTGRES:-${PORTAL_TEST_POSTGRES:-}}
if [[ -z $PG_ADMIN ]] && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    PG_ADMIN=$(bash "$ROOT/.ci/postgres.sh")
fi
pg_rows() {
    local db="bench_$(date +%s)_$$" pg_url port_b=$((PORT_BASE + 8)) one=$((PORT_BASE + 9)) two=$((PORT_BASE + 10))
    local dir="$TMP/nginx-lb" a_pid b_pid nginx_pid
    psql -q "$PG_ADMIN" -c "CREATE DATABASE $db" >/dev/null
    pg_url="${PG_ADMIN%/*}/$db"
    local PG_ENV=("${PORTAL_ENV[@]}" ROCKET_DATABASES="{portal={url=\"$pg_url\"}}")
    printf '%s\n' "$PASSWORD" | (cd "$TMP" && env "${PG_ENV[@]}" timeout 60 "$PORTAL_BIN" users add bench) >/dev/null
    log "portal on PostgreSQL: session.cache_ttl = 2 (the default), then 0"
    start portal-pg /health "$PORT" env "${PG_ENV[@]}" "$PORTAL_BIN"
    COOKIE=$(portal_sign_in)
    wrk_row portal pg_welcome -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: $COOKIE" "$BASE/welcome"
    stop "$SERVER_PID"
    start portal-pg-nocache /health "$PORT" env "${PG_ENV[@]}" ROCKET_SESSION='{cache_ttl=0}' "$PORTAL_BIN"
    COOKIE=$(portal_sign_in)
    wrk_row portal pg_welcome_nocache -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: $COOKIE" "$BASE/welcome"
    stop "$SERVER_PID"
    [[ -x $NGINX ]] || { log "no nginx at $NGINX: the two-instance rows are skipped"; return; }
    log "two instances on one PostgreSQL behind nginx, against one"
    start portal-pg-a /health "$PORT" env "${PG_ENV[@]}" "$PORTAL_BIN"
    a_pid=$SERVER_PID
    start portal-pg-b /health "$port_b" env "${PG_ENV[@]}" ROCKET_PORT=$port_b "$PORTAL_BIN"
    b_pid=$SERVER_PID
    COOKIE=$(portal_sign_in)
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<NGINX_CONF
$(nginx_preamble "$dir")
    upstream one { server $HOST:$PORT; keepalive 32; }
    upstream two { server $HOST:$PORT; server $HOST:$port_b; keepalive 32; }
    server { listen $HOST:$one; location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_pass http://one; } }
    server { listen $HOST:$two; location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_pass http://two; } }
}
NGINX_CONF
    (exec "$NGINX" -p "$dir" -c "$dir/nginx.conf") >"$TMP/nginx-lb.log" 2>&1 &
    PIDS+=("$!")
    nginx_pid=$!
    until [[ $(status_of -H "Cookie: $COOKIE" "http://$HOST:$two/welcome") == 200 ]]; do
        kill -0 "$nginx_pid" 2>/dev/null || { cat "$TMP/nginx-lb.log" "$dir/error.log" >&2; exit 1; }
        sleep 0.2
    done
    local pass
    for pass in 1 2; do
        wrk_row cluster "one.$pass" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: $COOKIE" "http://$HOST:$one/welcome"
        wrk_row cluster "two.$pass" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Cookie: $COOKIE" "http://$HOST:$two/welcome"
    done
    for row in one two; do best_pass cluster "$row"; done
    [[ ${R[cluster,one,failed]} == 0 && ${R[cluster,two,failed]} == 0 ]] ||
        { echo "bench: failed requests through the balancer" >&2; exit 1; }
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -s stop 2>/dev/null || kill "$nginx_pid"
    wait "$nginx_pid" 2>/dev/null || true
    stop "$a_pid"
    stop "$b_pid"
}
if [[ -n $PG_ADMIN ]]; then
    pg_rows
else
    log "no PostgreSQL (set BENCH_POSTGRES, or install Debian's postgresql): the PostgreSQL rows are skipped"
fi

log "portal: again, with throttling off (if the build has it), for the POST rows"
start portal-post /health "$PORT" env "${PORTAL_ENV[@]}" ROCKET_THROTTLE='{enabled=false}' "$PORTAL_BIN"
jar="$TMP/portal-post.jar"
page=$(curl -sS --max-time 10 -c "$jar" "$BASE/login")
POST_BODY="csrf_token=$(hidden "$page" csrf_token)&username=bench&password=wrong-password"
POST_COOKIE="portal_csrf=$(jar_cookie "$jar" portal_csrf)"
code=$(status_of -H "Cookie: $POST_COOKIE" --data "$POST_BODY" "$BASE/login")
[[ $code == 200 ]] || { echo "bench: a wrong password answered $code, not the form" >&2; exit 1; }
COOKIE=$(portal_sign_in)
post_rows portal "$BASE" "$COOKIE" "$POST_BODY" "$POST_COOKIE" "$SERVER_PID"
R[portal,after_kib]=$(sleep 2 && mem_kib VmRSS "$SERVER_PID")

# --- the second step --------------------------------------------------------------------
# BENCH_STEP_USERS users with an authenticator app (floor --second-step-fixture); each signs
# in with its password (a tiny hash: this row is about the step), then wrk finishes every
# half-done sign-in once with that user's right code (a code works once: no request repeats
# another). No hash runs: its rate is set beside the floor's.
second_step_row() {
    local n=${BENCH_STEP_USERS:-$((DURATION * 1500))} page token csrf
    log "portal: $n users with an authenticator app for the second-step row"
    env ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_CONFIG="$ROOT/Rocket.toml" ROCKET_LOG_LEVEL=off \
        timeout 300 "$FLOOR_BIN" --second-step-fixture "sqlite://$DB?mode=rwc" "$n" >"$TMP/steps.txt"
    page=$(curl -sS --max-time 10 -c "$TMP/steps.jar" "$BASE/login")
    token=$(hidden "$page" csrf_token)
    csrf=$(jar_cookie "$TMP/steps.jar" portal_csrf)
    mkdir -p "$TMP/steps"
    python3 - "$TMP/steps.txt" "$TMP/steps.curl" "$TMP/steps" "$BASE" "$token" "$csrf" "$PASSWORD" <<'EOF'
import sys, urllib.parse
users, out, dir, base, token, csrf, password = sys.argv[1:]
entries = []
for line in open(users):
    name = line.split()[0]
    data = urllib.parse.urlencode({"csrf_token": token, "username": name, "password": password})
    entries.append(f'url = "{base}/login"\ndata = "{data}"\nheader = "Cookie: portal_csrf={csrf}"\n'
                   f'dump-header = "{dir}/{name}"\noutput = "/dev/null"\nsilent\n')
# `next` between the entries: one after the last would start an entry without a URL.
open(out, "w").write("next\n".join(entries))
EOF
    # Whether each first step led to the second is checked below, from the headers.
    timeout 600 curl --parallel --parallel-max 8 -K "$TMP/steps.curl" 2>/dev/null || true
    # Each user's right code now (RFC 6238; a step either side is accepted too, so the
    # codes hold for the row's duration when it is under 30 s).
    python3 - "$TMP/steps.txt" "$TMP/steps" "$TMP/steps.tsv" "$token" "$csrf" <<'EOF'
import base64, hashlib, hmac, struct, sys, time, urllib.parse
users, dir, out, token, csrf = sys.argv[1:]
step = int(time.time()) // 30
lines = []
for line in open(users):
    name, secret = line.split()
    pending = None
    for header in open(f"{dir}/{name}"):
        if header.lower().startswith("set-cookie: portal_pending="):
            pending = header.split(":", 1)[1].strip().split(";")[0]
    if pending is None:
        sys.exit(f"bench: {name}'s first step did not lead to the second")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    at = mac[-1] & 15
    code = (struct.unpack(">I", mac[at:at + 4])[0] & 0x7FFFFFFF) % 1000000
    body = urllib.parse.urlencode({"csrf_token": token, "code": f"{code:06d}"})
    lines.append(f"{pending}; portal_csrf={csrf}\t{body}\n")
open(out, "w").writelines(lines)
EOF
    BENCH_STEPS="$TMP/steps.tsv" BENCH_THREADS=$THREADS wrk_row portal second_step \
        -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/second_step.lua" "$BASE/login/second-factor"
}
second_step_row
stop "$SERVER_PID"

# --- "Forgot password?" and the outbox -----------------------------------------------------
# The portal with [email], sending to an SMTP sink on loopback (aiosmtpd's Sink handler, in
# the bench virtualenv; it takes each message and drops it). First the outbox's sending
# rate: BENCH_MAIL accounts (300) are added with `portal users add --invite` while no server
# runs (each queues an invitation), then one instance starts and sends them all: timed from
# its start until nothing is pending. Then POST /reset, with the IP throttle lifted: for an
# account past its three messages of the hour (two reads, no write: what a flood at one
# account costs) and for a name nobody has (one read), against the floor's signed-out row.
# A build without mail has no /reset: the rows are skipped.
reset_rows() {
    local smtp=$((PORT_BASE + 11)) n=${BENCH_MAIL:-300} mdb="$TMP/mail.sqlite" i t0 pending sent jar page token
    [[ -x $VENV/bin/aiosmtpd ]] || timeout 600 "$VENV/bin/pip" install --quiet aiosmtpd
    (exec "$VENV/bin/python" -m aiosmtpd -n -l "$HOST:$smtp" -c aiosmtpd.handlers.Sink) >"$TMP/smtp.log" 2>&1 &
    PIDS+=("$!")
    local sink_pid=$!
    local MAIL_ENV=("${PORTAL_ENV[@]}" ROCKET_DATABASES="{portal={url=\"sqlite://$mdb?mode=rwc\"}}"
        ROCKET_EMAIL="{smtp_url=\"smtp://$HOST:$smtp\",from=\"bench@bench.test\"}")
    if ! (cd "$TMP" && env "${MAIL_ENV[@]}" timeout 60 "$PORTAL_BIN" users add m0 --email m0@bench.test --invite) >/dev/null 2>&1; then
        log "portal: this build sends no mail; the /reset and outbox rows are skipped"
        stop "$sink_pid"
        return
    fi
    log "portal: $n accounts invited by mail while no server runs"
    for ((i = 1; i < n; i++)); do
        (cd "$TMP" && env "${MAIL_ENV[@]}" timeout 60 "$PORTAL_BIN" users add "m$i" --email "m$i@bench.test" --invite) >/dev/null
    done
    t0=$(date +%s%N)
    start portal-mail /health "$PORT" env "${MAIL_ENV[@]}" ROCKET_THROTTLE='{reset_requests=1000000000}' "$PORTAL_BIN"
    for ((i = 0; i < 1200; i++)); do
        pending=$(sqlite3 "$mdb" "SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
        [[ $pending == 0 ]] && break
        sleep 0.1
    done
    R[mail,drain_ms]=$((($(date +%s%N) - t0) / 1000000))
    sent=$(sqlite3 "$mdb" "SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
    [[ $sent == "$n" ]] || { echo "bench: the outbox sent $sent of $n messages" >&2; exit 1; }
    R[mail,sent]=$sent
    R[mail,rate]=$(awk -v n="$n" -v ms="${R[mail,drain_ms]}" 'BEGIN { printf "%.0f", n * 1000 / ms }')
    log "portal: the outbox sent $n messages in ${R[mail,drain_ms]} ms from the server's start (${R[mail,rate]}/s)"
    jar="$TMP/reset.jar"
    page=$(curl -sS --max-time 10 -c "$jar" "$BASE/reset")
    token=$(hidden "$page" csrf_token)
    local cookie="portal_csrf=$(jar_cookie "$jar" portal_csrf)"
    for i in 1 2 3; do status_of -H "Cookie: $cookie" --data "csrf_token=$token&login=m0" "$BASE/reset" >/dev/null; done
    BENCH_BODY="csrf_token=$token&login=m0" BENCH_COOKIE=$cookie wrk_row portal reset_known \
        -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/post.lua" "$BASE/reset"
    BENCH_BODY="csrf_token=$token&login=nobody" BENCH_COOKIE=$cookie wrk_row portal reset_unknown \
        -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/post.lua" "$BASE/reset"
    [[ ${R[portal,reset_known,statuses]} =~ ^200:[0-9]+$ && ${R[portal,reset_unknown,statuses]} =~ ^200:[0-9]+$ ]] ||
        { echo "bench: POST /reset answered other than 200" >&2; exit 1; }
    sent=$(sqlite3 "$mdb" "SELECT COUNT(*) FROM outbox WHERE kind = 'reset'")
    [[ $sent == 3 ]] || { echo "bench: $sent reset messages queued for one account, not 3" >&2; exit 1; }
    stop "$SERVER_PID"
    stop "$sink_pid"
}
reset_rows

# --- the OpenID provider ------------------------------------------------------------------
# The same store, now with one client (`bench`, client_secret_basic). Discovery and the JWK
# Set are plain GETs; userinfo carries one access token (from one real code exchange); the
# token rows each present codes or refresh tokens no other request used, made beforehand by
# `floor --oidc-fixture` (a code exchange signs an ID and an access token with RS256 and
# stores a refresh token; a refresh rotates the token and signs an access token only).
# A build without the provider answers 404 to discovery: the rows are skipped.
oidc_rows() {
    local secret="bench client secret, long enough" redirect="http://$HOST:9/cb" n code answer access auth
    log "portal: again, as an OpenID provider with one client"
    start portal-oidc /health "$PORT" env "${PORTAL_ENV[@]}" ROCKET_THROTTLE='{enabled=false}' \
        ROCKET_OIDC="{clients=[{client_id=\"bench\",client_secret=\"$secret\",consent=\"implicit\",redirect_uris=[\"$redirect\"]}]}" \
        "$PORTAL_BIN"
    if [[ $(status_of "$BASE/.well-known/openid-configuration") != 200 ]]; then
        log "portal: no OpenID provider in this build; its rows are skipped"
        stop "$SERVER_PID"
        return
    fi
    n=${BENCH_OIDC_TOKENS:-$((DURATION * 2000))}
    log "portal: $n codes and $n refresh tokens for the token rows"
    env ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_CONFIG="$ROOT/Rocket.toml" ROCKET_LOG_LEVEL=off \
        timeout 600 "$FLOOR_BIN" --oidc-fixture "sqlite://$DB?mode=rwc" bench "$redirect" "$((n + 1))" >"$TMP/oidc.txt"
    auth="Basic $(printf 'bench:%s' "$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))' "$secret")" | base64 -w0)"
    code=$(head -n 1 "$TMP/oidc.txt" | cut -f1)
    answer=$(curl -sS --max-time 10 -H "Authorization: $auth" --data "grant_type=authorization_code&code=$code" \
        --data-urlencode "redirect_uri=$redirect" "$BASE/oidc/token")
    access=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["access_token"])' "$answer") ||
        { echo "bench: the code exchange answered $answer" >&2; exit 1; }
    [[ $(status_of -H "Authorization: Bearer $access" "$BASE/oidc/userinfo") == 200 ]] ||
        { echo "bench: userinfo refused the access token" >&2; exit 1; }
    tail -n +2 "$TMP/oidc.txt" | python3 -c '
import sys, urllib.parse
redirect = sys.argv[1]
codes, refreshes = open(sys.argv[2], "w"), open(sys.argv[3], "w")
for line in sys.stdin:
    code, refresh = line.split()
    codes.write(urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}) + "\n")
    refreshes.write(urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": refresh}) + "\n")
' "$redirect" "$TMP/oidc-codes.txt" "$TMP/oidc-refresh.txt"
    wrk_row portal discovery -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$BASE/.well-known/openid-configuration"
    wrk_row portal jwks -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$BASE/.well-known/jwks.json"
    wrk_row portal userinfo -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "Authorization: Bearer $access" "$BASE/oidc/userinfo"
    BENCH_TOKENS="$TMP/oidc-codes.txt" BENCH_AUTH="$auth" BENCH_THREADS=$THREADS wrk_row portal token_code \
        -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/oidc_token.lua" "$BASE/oidc/token"
    BENCH_TOKENS="$TMP/oidc-refresh.txt" BENCH_AUTH="$auth" BENCH_THREADS=$THREADS wrk_row portal token_refresh \
        -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/oidc_token.lua" "$BASE/oidc/token"
    stop "$SERVER_PID"
}
oidc_rows

# --- the POST rows of Flask and the floor -------------------------------------------------
post_rows flask "${BASES[flask]}" "${COOKIES[flask]}" "username=admin&password=wrong-password" "" "${PIDS_OF[flask]}"
stop "${PIDS_OF[flask]}"
post_rows floor "${BASES[floor]}" "${COOKIES[floor]}" "username=bench&password=wrong-password" "" "${PIDS_OF[floor]}"
stop "${PIDS_OF[floor]}"

# --- the report -------------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
oidc_verdict() { # ROW MEASURED AT-LEAST: PASS/FAIL, or "skipped" for a build without the provider
    if [[ -n ${R[portal,$1,rps]:-} ]]; then verdict "$2" ">=" "$3"; else printf 'skipped'; fi
}
oidc_cell() { # ROW: the provider's GET rows, or "skipped" for a build without one
    if [[ -n ${R[portal,$1,rps]:-} ]]; then
        printf '%s req/s · p50 %s · p99 %s ms' "${R[portal,$1,rps]}" "${R[portal,$1,p50]}" "${R[portal,$1,p99]}"
    else
        printf 'skipped'
    fi
}
cell() { # APP ROW: "req/s (other run) · p50 · p99"
    printf '%s req/s%s · p50 %s · p99 %s ms' "${R[$1,$2,rps]}" "${R[$1,$2,other]:+ (${R[$1,$2,other]})}" \
        "${R[$1,$2,p50]}" "${R[$1,$2,p99]}"
}
flood_cell() { # APP: the GET row during the flood, and the flood itself
    printf '%s, failed %s; the flood: %s answered/s (200), %s shed/s (503), p99 %s ms' \
        "$(cell "$1" welcome_flood)" "${R[$1,welcome_flood,failed]}" "$(rate "$1" flood 200)" \
        "$(rate "$1" flood 503)" "${R[$1,flood,p99]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# verdict VALUE OP LIMIT, OP one of >= <= ==
verdict() {
    if awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
        exit !((op == ">=" && a + 0 >= b + 0) || (op == "<=" && a + 0 <= b + 0) || (op == "==" && a + 0 == b + 0))
    }'; then
        echo PASS
    else
        echo "**FAIL**"
    fi
}
pr() { ratio "${R[portal,$1,rps]}" "${R[$2,$1,rps]}"; }
# rate APP ROW CODES: answers per second whose status matches the regex CODES.
rate() {
    tr ',' '\n' <<<"${R[$1,$2,statuses]:-}" |
        awk -F: -v re="^($3)\$" -v s="${R[$1,$2,secs]:-0}" '$1 ~ re { n += $2 } END { printf "%.1f", (s > 0 ? n / s : 0) }'
}
post_cell() { # APP ROW: form answers (200) and shed (503) per second, latencies
    printf '%s answered/s (200) · %s shed/s (503) · p50 %s · p99 %s ms' "$(rate "$1" "$2" 200)" \
        "$(rate "$1" "$2" 503)" "${R[$1,$2,p50]}" "${R[$1,$2,p99]}"
}

reset_cell() { # ROW: a /reset row, or "skipped" for a build without mail
    if [[ -n ${R[portal,$1,rps]:-} ]]; then
        printf '%s answered/s (200) · p50 %s · p99 %s ms' "$(rate portal "$1" 200)" "${R[portal,$1,p50]}" "${R[portal,$1,p99]}"
    else
        printf 'skipped'
    fi
}
RESET_SLOWER=$(awk -v a="${R[portal,reset_known,rps]:-0}" -v b="${R[portal,reset_unknown,rps]:-0}" 'BEGIN { print (a < b ? a : b) }')
reset_verdict() {
    if [[ -n ${R[portal,reset_known,rps]:-} ]]; then
        verdict "$(ratio "$RESET_SLOWER" "${R[floor,welcome_out,rps]}")" ">=" 0.30
    else
        printf 'skipped'
    fi
}

PEAK_LIMIT_MIB=$((40 + PERMITS * 19))
# Each portal round's share of its hash limit; the round with the median share is reported.
ROUNDS_TEXT=
SHARES=()
for ((i = 1; i <= POST_ROUNDS; i++)); do
    limit=$(row_limit $((i - 1)) "$i")
    share=$(ratio "$(rate portal "post_wrong.$i" 200)" "$limit")
    SHARES+=("$share $i $limit")
    ROUNDS_TEXT+="${ROUNDS_TEXT:+; }round $i: $(rate portal "post_wrong.$i" 200)/s of $limit/s = $share (verify ${R[verify,$((i - 1))]} ms before, ${R[verify,$i]} ms after)"
done
read -r HASH_SHARE MEDIAN_ROUND HASH_LIMIT < <(printf '%s\n' "${SHARES[@]}" | sort -n | sed -n "$(((POST_ROUNDS + 1) / 2))p")
for field in rps p50 p99 failed statuses secs; do
    R[portal,post_wrong,$field]=${R[portal,post_wrong.$MEDIAN_ROUND,$field]}
    R[flask,post_wrong,$field]=${R[flask,post_wrong.1,$field]}
    R[floor,post_wrong,$field]=${R[floor,post_wrong.1,$field]}
done
# The portal answers 503 at once when more sign-ins wait than hashing.queue allows: load
# shed by design, counted apart from failures (timeouts, resets, other errors).
SHED=$(tr ',' '\n' <<<"${R[portal,flood,statuses]}" | awk -F: '$1 == 503 { n += $2 } END { print n + 0 }')
FLOOD_FAILED=$((${R[portal,flood,failed]} - SHED))
FAILED_FLOOD=$((${R[portal,welcome_flood,failed]} + FLOOD_FAILED))
IDLE=$(mib "${R[portal,idle_kib]}")
PEAK=$(mib "${R[portal,peak_kib]}")
DIRTY=$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')

report() {
    cat <<EOF
# bench/run.sh results

- $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$DIRTY
- $NPROC CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average $LOAD_START at the start, $LOAD_END at the end
- wrk -t$THREADS -c$CONNS -d${DURATION}s --latency (the flood: -c$FLOOD), client and servers on the same machine
- one Argon2id verify in reused memory (as while sign-ins are queued): $VERIFY_MS ms at the start (median of 11); $PERMITS hash permit(s); hashing.queue $QUEUE
- the portal's POST row, $POST_ROUNDS rounds, each against the faster of the verify timings (over ${DURATION} s) right before and after it: $ROUNDS_TEXT
- one verify in fresh memory (a lone sign-in, \`Hasher::verify\`, median of 11): $FRESH_MS ms
${BENCH_PORTAL_ENV:+- the portal ran with $BENCH_PORTAL_ENV
}
| row | portal | Flask (gunicorn, 2 sync workers) | floor (bare Rocket) | portal/Flask | portal/floor |
|---|---|---|---|---|---|
| GET /login | $(cell portal login) | $(cell flask login) | $(cell floor login) | $(pr login flask) | $(pr login floor) |
| GET /welcome signed in | $(cell portal welcome_in) | $(cell flask welcome_in) | $(cell floor welcome_in) | $(pr welcome_in flask) | $(pr welcome_in floor) |
| GET /welcome signed in, session.cache_ttl=0 (a store read per request) | $(cell portal welcome_nocache) | | | $(ratio "${R[portal,welcome_nocache,rps]}" "${R[flask,welcome_in,rps]}") | $(ratio "${R[portal,welcome_nocache,rps]}" "${R[floor,welcome_in,rps]}") |
| GET /welcome signed out (redirect) | $(cell portal welcome_out) | $(cell flask welcome_out) | $(cell floor welcome_out) | $(pr welcome_out flask) | $(pr welcome_out floor) |
| GET /welcome signed in, PostgreSQL store, session.cache_ttl=2 | ${R[portal,pg_welcome,rps]:-skipped} req/s · p50 ${R[portal,pg_welcome,p50]:--} · p99 ${R[portal,pg_welcome,p99]:--} ms | | | | $(ratio "${R[portal,pg_welcome,rps]:-0}" "${R[floor,welcome_in,rps]}") |
| GET /welcome signed in, PostgreSQL store, session.cache_ttl=0 (a PostgreSQL read per request) | ${R[portal,pg_welcome_nocache,rps]:-skipped} req/s · p50 ${R[portal,pg_welcome_nocache,p50]:--} · p99 ${R[portal,pg_welcome_nocache,p99]:--} ms | | | | $(ratio "${R[portal,pg_welcome_nocache,rps]:-0}" "${R[floor,welcome_in,rps]}") |
| nginx (1 worker, round robin) → one instance on PostgreSQL, GET /welcome signed in | $(cell cluster one) | | | | |
| the same nginx → two instances on one PostgreSQL | $(cell cluster two) | | | | $(ratio "${R[cluster,two,rps]:-0}" "${R[cluster,one,rps]:-0}") of one instance |
| GET /authz/auth-request signed in (200 + identity headers) | $(cell portal authz_in) | | | | $(ratio "${R[portal,authz_in,rps]}" "${R[floor,welcome_in,rps]}") (of the floor's signed-in row) |
| GET /authz/auth-request signed out (401) | $(cell portal authz_out) | | | | $(ratio "${R[portal,authz_out,rps]}" "${R[floor,welcome_in,rps]}") |
| nginx (1 worker) + auth_request → portal, then a static upstream, signed in | ${R[nginx,gated,rps]:-skipped} req/s · p50 ${R[nginx,gated,p50]:--} · p99 ${R[nginx,gated,p99]:--} ms | | | | $(ratio "${R[nginx,gated,rps]:-0}" "${R[nginx,plain,rps]:-0}") of nginx alone |
| the same nginx without the portal in the path | ${R[nginx,plain,rps]:-skipped} req/s · p50 ${R[nginx,plain,p50]:--} · p99 ${R[nginx,plain,p99]:--} ms | | | | |
| POST /login/second-factor, a right code from an authenticator app (no hash), $CONNS clients | $(rate portal second_step 303) signed in/s (303) · $(rate portal second_step 200) refused/s (200: a repeat, the users ran out) · p50 ${R[portal,second_step,p50]} · p99 ${R[portal,second_step,p99]} ms | | | | $(ratio "$(rate portal second_step 303)" "${R[floor,welcome_in,rps]}") (of the floor's signed-in row) |
| GET /.well-known/openid-configuration | $(oidc_cell discovery) | | | | $(ratio "${R[portal,discovery,rps]:-0}" "${R[floor,welcome_in,rps]}") (of the floor's signed-in row) |
| GET /.well-known/jwks.json (Ed25519 + RSA keys) | $(oidc_cell jwks) | | | | $(ratio "${R[portal,jwks,rps]:-0}" "${R[floor,welcome_in,rps]}") |
| GET /oidc/userinfo, a valid access token (RS256 check + its grant read) | $(oidc_cell userinfo) | | | | $(ratio "${R[portal,userinfo,rps]:-0}" "${R[floor,welcome_in,rps]}") |
| POST /oidc/token, a code each (two RS256 signatures, a refresh token stored), $CONNS clients | $(rate portal token_code 200) issued/s (200) · $(rate portal token_code 400) refused/s (400: a repeat, the codes ran out) · p50 ${R[portal,token_code,p50]:--} · p99 ${R[portal,token_code,p99]:--} ms | | | | |
| POST /oidc/token, a refresh token each (rotated, one RS256 signature), $CONNS clients | $(rate portal token_refresh 200) refreshed/s (200) · $(rate portal token_refresh 400) refused/s (400: a repeat) · p50 ${R[portal,token_refresh,p50]:--} · p99 ${R[portal,token_refresh,p99]:--} ms | | | | |
| POST /reset, an account past its three messages of the hour (two reads), $CONNS clients | $(reset_cell reset_known) | | | | $(ratio "${R[portal,reset_known,rps]:-0}" "${R[floor,welcome_out,rps]}") (of the floor's signed-out row) |
| POST /reset, a name nobody has (one read), $CONNS clients | $(reset_cell reset_unknown) | | | | $(ratio "${R[portal,reset_unknown,rps]:-0}" "${R[floor,welcome_out,rps]}") |
| the outbox sending ${R[mail,sent]:-0} invitations into a local SMTP sink (aiosmtpd), one instance, from its start | ${R[mail,rate]:-skipped} messages/s (${R[mail,drain_ms]:--} ms) | | | | |
| POST /login wrong password, $CONNS clients | $(post_cell portal post_wrong) | $(post_cell flask post_wrong) | $(post_cell floor post_wrong) | (Flask compares plain text) | (the floor does not hash) |
| GET /welcome signed in during a $FLOOD-client POST /login flood | $(flood_cell portal) | $(flood_cell flask) | $(flood_cell floor) | | |
| RSS right after start (MiB) | $(mib "${R[portal,start_kib]}") | | | | |
| idle RSS (MiB; after start and one sign-in) | $IDLE | $(mib "${R[flask,idle_kib]}") (master + 2 workers) | $(mib "${R[floor,idle_kib]}") | | |
| peak RSS (MiB, VmHWM over the POST rows and the flood) | $PEAK ($(mib "${R[portal,after_kib]}") after, ${R[portal,threads]} threads) | $(mib "${R[flask,peak_kib]}") (sum of 3 processes) | $(mib "${R[floor,peak_kib]}") | | |
| start to first 200 (ms) | ${R[portal,startup_ms]} (/health, fresh database; median of ${R[portal,startups]// /, }) | ${R[flask,startup_ms]} (/login) | ${R[floor,startup_ms]} (/health) | | |

| target | measured | result |
|---|---|---|
| GET /welcome signed in ≥ 10× Flask | $(pr welcome_in flask)× | $(verdict "$(pr welcome_in flask)" ">=" 10) |
| GET /welcome signed in ≥ 40% of floor | $(pr welcome_in floor) | $(verdict "$(pr welcome_in floor)" ">=" 0.40) |
| GET /login ≥ 12× Flask | $(pr login flask)× | $(verdict "$(pr login flask)" ">=" 12) |
| GET /login ≥ 60% of floor | $(pr login floor) | $(verdict "$(pr login floor)" ">=" 0.60) |
| GET /welcome signed out ≥ 12× Flask | $(pr welcome_out flask)× | $(verdict "$(pr welcome_out flask)" ">=" 12) |
| GET /welcome signed out ≥ 60% of floor | $(pr welcome_out floor) | $(verdict "$(pr welcome_out floor)" ">=" 0.60) |
| GET /authz/auth-request signed in ≥ 70% of the floor's signed-in route | $(ratio "${R[portal,authz_in,rps]}" "${R[floor,welcome_in,rps]}") | $(verdict "$(ratio "${R[portal,authz_in,rps]}" "${R[floor,welcome_in,rps]}")" ">=" 0.70) |
| GET /oidc/userinfo ≥ 50% of the floor's signed-in route | $(ratio "${R[portal,userinfo,rps]:-0}" "${R[floor,welcome_in,rps]}") | $(oidc_verdict userinfo "$(ratio "${R[portal,userinfo,rps]:-0}" "${R[floor,welcome_in,rps]}")" 0.50) |
| POST /reset ≥ 30% of the floor's signed-out route (the slower of its two rows) | $(ratio "$RESET_SLOWER" "${R[floor,welcome_out,rps]}") | $(reset_verdict) |
| POST /oidc/token refresh ≥ 1,000/s | $(rate portal token_refresh 200)/s | $(oidc_verdict token_refresh "$(rate portal token_refresh 200)" 1000) |
| POST /login wrong password ≥ 85% of the hash limit, $CONNS clients (the median of $POST_ROUNDS rounds: round $MEDIAN_ROUND, limit $HASH_LIMIT/s) | $(rate portal post_wrong 200) answered/s = $HASH_SHARE | $(verdict "$HASH_SHARE" ">=" 0.85) |
| GET /welcome p99 ≤ 25 ms during the flood | ${R[portal,welcome_flood,p99]} ms | $(verdict "${R[portal,welcome_flood,p99]}" "<=" 25) |
| no failed requests during the flood (GET /welcome + POST /login other than 503; $SHED POSTs were shed with 503) | ${R[portal,welcome_flood,failed]} + $FLOOD_FAILED | $(verdict "$FAILED_FLOOD" "==" 0) |
| idle RSS ≤ 20 MiB | $IDLE MiB | $(verdict "$IDLE" "<=" 20) |
| peak RSS ≤ 40 MiB + $PERMITS × 19 MiB = $PEAK_LIMIT_MIB MiB | $PEAK MiB | $(verdict "$PEAK" "<=" "$PEAK_LIMIT_MIB") |
| start to first 200 ≤ 500 ms (median of 3) | ${R[portal,startup_ms]} ms | $(verdict "${R[portal,startup_ms]}" "<=" 500) |
EOF
}

mkdir -p "$ROOT/bench/results"
report | tee "$ROOT/bench/results/latest.md"
