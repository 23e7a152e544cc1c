#!/bin/sh
# meson install script: installs the example config as CONFIG only when no config
# exists there, so an upgrade never overwrites the operator's file.
# Usage: install_config.sh EXAMPLE CONFIG   (honours $DESTDIR)
set -eu
example=$1
target="${DESTDIR:-}$2"
if [ -e "$target" ]; then
  echo "keeping existing $target"
  exit 0
fi
mkdir -p "$(dirname "$target")"
# Not world-readable: a config can hold environment secrets.
install -m 0640 "$example" "$target"
echo "installed example config as $target"
