#!/usr/bin/env bash
# Sets up and runs the daemon on its embedded defaults: installs packages, builds
# a release build, and starts `dockless serve` in the foreground (Ctrl-C stops
# it and every service). Dashboard and API: http://localhost:3080
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "tools/run.sh: run as root (sudo tools/run.sh): the default data_dir is /etc/dockless/data" >&2
  exit 2
fi
bash tools/deps.sh
[ -d build-release ] || meson setup build-release --wrap-mode=nofallback -Dbuildtype=release >/dev/null
ninja -C build-release tools/dockless
exec build-release/tools/dockless serve "$@"
