#!/usr/bin/env bash
# deps.sh: installs the Debian 12 packages the project needs; quiet when all are present.
# Never starts a system service: installing the nginx package is done with a policy-rc.d
# that forbids service starts, so no system nginx appears on port 80.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config dpkg-dev git ca-certificates
    nginx nginx-dev
    rapidjson-dev libssl-dev libpq-dev libcurl4-openssl-dev zlib1g-dev libisal-dev
    libgtest-dev libbenchmark-dev
    postgresql-15 postgresql-client-15
    perl libcrypt-jwt-perl openssl curl wrk procps
    clang libclang-rt-14-dev
    debhelper fakeroot lintian logrotate
    chromium chromium-driver python3-selenium
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi

echo "deps: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
# An if, not `[ ] &&`: a false test as the trap's last command would become the exit status.
cleanup() { if [ "$own_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
