#!/usr/bin/env bash
# Installs what building and testing Dockless needs on Debian 12 / Raspberry Pi OS.
# Idempotent; run as root (or through sudo).
set -euo pipefail
packages=(
  build-essential pkg-config meson ninja-build
  liburing-dev libtomlplusplus-dev libssl-dev node-llhttp nlohmann-json3-dev libgtest-dev
  python3 curl procps
)
if [ "${1:-}" = "--test" ]; then
  packages+=(util-linux)  # mount (tmpfs for the full-disk tests)
  packages+=(chromium)    # tests/dashboard: headless browser (/usr/bin/chromium)
  # tests/dashboard drives Chromium from node (playwright-core from npm). A node
  # installed from elsewhere (e.g. NodeSource, which bundles npm) is kept as it is.
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
