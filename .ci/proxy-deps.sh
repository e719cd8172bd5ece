#!/usr/bin/env bash
# What the proxy suite (`cargo test --features proxy --test proxy`) needs from outside:
# Debian's `nginx` and `caddy`, and nothing else. Idempotent: installs only what is missing.
# The packages' postinst would start a system nginx on port 80 (and a Caddy service); a
# policy-rc.d answering 101 ("action forbidden") stops that for the length of the install,
# and is removed afterwards unless it was there before.
set -euo pipefail

NGINX=/usr/sbin/nginx
CADDY=/usr/bin/caddy
POLICY=/usr/sbin/policy-rc.d

missing=()
[ -x "$NGINX" ] || missing+=(nginx)
[ -x "$CADDY" ] || missing+=(caddy)
if [ ${#missing[@]} -eq 0 ]; then
  echo "nginx and caddy are installed: $("$NGINX" -v 2>&1); caddy $("$CADDY" version | cut -d' ' -f1)"
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
echo "installed ${missing[*]}: $("$NGINX" -v 2>&1); caddy $("$CADDY" version | cut -d' ' -f1)"
