#!/usr/bin/env bash
# The budget of a request: bench/profile.sh for the hot routes and the floor's matching ones,
# then one table of instructions per request for each part of the path (cookie decryption,
# the session lookup and the secret's hash, the page's values, rendering, the security
# headers, the request timer, writing the response) and the bytes on the wire. Callgrind
# counts instructions, so the table repeats on a noisy host; compare two binaries with it.
#
#   bench/budget.sh                                   # the working tree's release binary
#   PORTAL_BIN=target/compare/bins/portal-REV bench/budget.sh
#
# Parts overlap (a row includes what it calls), a part a route never reaches reads "·", and
# a function the compiler inlined into its caller is counted in the caller. Writes the table
# to bench/results/budget.md (BUDGET_REUSE=1 makes it again from the profiles there). Needs
# what bench/profile.sh needs; about 5 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUESTS=${BUDGET_REQUESTS:-1000}
ROUTES=(login welcome_in welcome_out authz_in)
RESULTS="$ROOT/bench/results"

if [[ -z ${PORTAL_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet --bin portal)
    PORTAL_BIN="$ROOT/target/release/portal"
fi
# BUDGET_REUSE=1: the table again from the profiles already in bench/results.
if [[ -z ${BUDGET_REUSE:-} ]]; then
    for route in "${ROUTES[@]}"; do
        PORTAL_BIN=$PORTAL_BIN "$ROOT/bench/profile.sh" "$route" "$REQUESTS" >/dev/null
    done
    for route in login welcome_in welcome_out; do
        PORTAL_BIN=floor "$ROOT/bench/profile.sh" "$route" "$REQUESTS" >/dev/null
    done
fi

# PART|function names (inclusive, summed; `;` between several)
PARTS=(
    "Rocket's request from hyper's (cookies parsed)|rocket::request::request::Request::from_hyp"
    "cookie decryption (every private cookie read)|cookie::secure::private::PrivateJar<J>::get"
    "the session guard in all|<&portal::web::guard::LoggedIn as rocket::request::from_request::FromRequest>::from_request::{{closure}};<portal::web::guard::Presence as rocket::request::from_request::FromRequest>::from_request::{{closure}}"
    "· the session lookup (the cache)|portal::store::cache::SessionCache::get"
    "· the secret's hash (SHA-256, compared)|portal::auth::session::SessionToken::proves"
    "the page guard (Layout: the CSRF token, the flash)|<portal::web::pages::Layout as rocket::request::from_request::FromRequest>::from_request::{{closure}}"
    "· the CSRF token|portal::web::csrf::CsrfToken::of"
    "the page's values (into minijinja's; for a shell, its JSON key)|portal::web::pages::Layout::login;portal::web::pages::Layout::welcome"
    "rendering (the Page responder, with the Content-Type)|<portal::web::render::Page as rocket::response::responder::Responder>::respond_to"
    "· minijinja's render|portal::web::render::Templates::render"
    "· a shell: found, and the token spliced in|portal::web::render::Templates::render_shell"
    "the catcher (the signed-out redirect and its flash cookie)|rocket::server::<impl rocket::rkt::Rocket<rocket::phase::Orbit>>::handle_error::{{closure}}"
    "the forward-auth answer (identity headers)|<portal::routes::authz::Answer as rocket::response::responder::Responder>::respond_to"
    "security headers (Defaults; the floor: Shield)|<portal::web::headers::Defaults as rocket::fairing::Fairing>::on_response::{{closure}};<rocket::shield::shield::Shield as rocket::fairing::Fairing>::on_response::{{closure}}"
    "the request timer and its label lookup|<portal::metrics::RequestTimer as rocket::fairing::Fairing>::on_request::{{closure}};<portal::metrics::RequestTimer as rocket::fairing::Fairing>::on_response::{{closure}}"
    "the logger|<portal::logging::PortalLogger as log::Log>::log"
    "writing the response (Rocket to hyper)|rocket::server::<impl rocket::rkt::Rocket<rocket::phase::Orbit>>::send_response::{{closure}}"
)

# part NAME FUNCTIONS: instructions per request of FUNCTIONS in profile NAME, or "·".
part() {
    local file="$RESULTS/profile-$1.callgrind" functions=$2
    callgrind_annotate --inclusive=yes --threshold=100 "$file" 2>/dev/null |
        awk -v n="$REQUESTS" -v list="$functions" '
            BEGIN { k = split(list, wanted, ";") }
            /^ *[0-9,]+ / {
                v = $1; gsub(/,/, "", v)
                name = $0; sub(/^ *[0-9,]+ +\([ 0-9.]+%\) +(\?\?\?|[^:]*):/, "", name); sub(/ \[[^]]*\]$/, "", name)
                for (i = 1; i <= k; i++) if (name == wanted[i] && !(i in seen)) { seen[i] = 1; sum += v }
            }
            END { if (sum > 0) printf "%d", sum / n; else printf "·" }'
}
total() { awk '/^instructions per request:/ { print $4 }' "$RESULTS/profile-$1.txt"; }
wire() { awk '/^bytes on the wire:/ { print $5 " + " $8 }' "$RESULTS/profile-$1.txt"; }

# floor_of ROUTE: the floor's profile for ROUTE (forward-auth against its signed-in page).
floor_of() { [[ $1 == authz_in ]] && echo floor-welcome_in || echo "floor-$1"; }
# row LABEL COMMAND [ARGS]: a table row of COMMAND ROUTE [ARGS] per route, the floor's in
# brackets unless the floor never reaches it.
row() {
    local label=$1 command=$2 line value floor
    shift 2
    line="| $label |"
    for route in "${ROUTES[@]}"; do
        value=$("$command" "$route" "$@") floor=$("$command" "$(floor_of "$route")" "$@")
        [[ $floor == "·" ]] && line+=" $value |" || line+=" $value ($floor) |"
    done
    echo "$line"
}

{
    echo "bench/budget.sh on $(date -u '+%Y-%m-%d %H:%M UTC'): $(basename "$PORTAL_BIN"), $REQUESTS requests a route;" \
        "instructions per request (callgrind, all threads), the floor's matching request in brackets"
    echo
    echo "| part | GET /login | GET /welcome signed in | GET /welcome signed out | forward-auth signed in |"
    echo "|---|---|---|---|---|"
    row "the whole request (the floor)" total
    for spec in "${PARTS[@]}"; do
        IFS='|' read -r name functions <<<"$spec"
        row "$name" part "$functions"
    done
    row "bytes on the wire: headers + body (the floor)" wire
} | tee "$RESULTS/budget.md"
