#!/usr/bin/env bash
# What the proxy suite (`cargo test --features proxy --test proxy`) needs from outside:
# Debian's `nginx`, `caddy`, and Apache with `mod_auth_openidc` (the OpenID relying party the
# provider is walked with), and nothing else. Idempotent: installs only what is missing.
# The packages' postinst would start a system nginx on port 80 (and a Caddy service); a
# policy-rc.d answering 101 ("action forbidden") stops that for the length of the install,
# and is removed afterwards unless it was there before.
set -euo pipefail

NGINX=/usr/sbin/nginx
CADDY=/usr/bin/caddy
APACHE=/usr/sbin/apache2
OPENIDC=/usr/lib/apache2/modules/mod_auth_openidc.so
POLICY=/usr/sbin/policy-rc.d

missing=()
[ -x "$NGINX" ] || missing+=(nginx)
[ -x "$CADDY" ] || missing+=(caddy)
[ -x "$APACHE" ] || missing+=(apache2)
[ -f "$OPENIDC" ] || missing+=(libapache2-mod-auth-openidc)
versions() {
  echo "$("$NGINX" -v 2>&1); caddy $("$CADDY" version | cut -d' ' -f1); $("$APACHE" -v | head -1)"
}
if [ ${#missing[@]} -eq 0 ]; then
  echo "nginx, caddy and Apache with mod_auth_openidc are installed: $(versions)"
  exit 0
fi

# Root in CI containers; sudo elsewhere (which resets the environment, hence `env` below).
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi

if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}: $(versions)"
