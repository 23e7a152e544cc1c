#!/usr/bin/env bash
# Builds the Debian package (debian/) into OUTDIR (default: build-deb/):
#   tools/deb.sh [--arch arm64] [--version VERSION] [OUTDIR]
# Installs the build dependencies with apt-get (root). --version builds with a changed
# debian/changelog version in a copy of the tree (tests/deb uses it for the upgrade step);
# the checkout itself is never modified.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="" version="" out=""
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    *) out=$1; shift ;;
  esac
done
out=$(realpath -m "${out:-build-deb}")
mkdir -p "$out"
if [ "$(id -u)" -eq 0 ]; then
  tools=(dpkg-dev debhelper fakeroot lintian)
  # The cross compiler: a cross build-dep adds build-essential:native, not the compiler.
  [ -n "$arch" ] && tools+=("g++-$(dpkg-architecture -a"$arch" -qDEB_HOST_GNU_TYPE 2>/dev/null)")
  missing=()
  for p in "${tools[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ -n "$arch" ]; then
    dpkg --print-foreign-architectures | grep -qx "$arch" || { dpkg --add-architecture "$arch"; apt-get update -qq; }
    apt-get build-dep -y -qq --no-install-recommends --host-architecture "$arch" . >/dev/null
  else
    apt-get build-dep -y -qq --no-install-recommends . >/dev/null
  fi
fi
# A copy of the tree: dpkg-buildpackage writes debian/ and obj-* in place, and the .deb
# lands in the parent directory.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/dockless"
git ls-files -z | xargs -0 cp --parents -t "$work/dockless"
cd "$work/dockless"
if [ -n "$version" ]; then
  sed -i "1s/(.*)/($version)/" debian/changelog
fi
flags=(-us -uc -b)
[ -n "$arch" ] && flags+=(-a"$arch")
# debhelper points HOME at a directory of its own during the build: name the real ccache
# directory, or every build would start with an empty cache. With the copy as base_dir,
# ccache makes its paths relative (-I, and dpkg-buildflags' -ffile-prefix-map), so a build
# in another temporary directory, or from another clone, finds the objects of the last one.
if command -v ccache >/dev/null; then
  export CCACHE_DIR="${CCACHE_DIR:-$(ccache -k cache_dir)}" CCACHE_BASEDIR="$work/dockless" CCACHE_NOHASHDIR=1
  # Meson wraps only the compilers it finds itself in ccache, never those of a cross file, and
  # debhelper's cross file (debcrossgen) names each compiler by its path on PATH: found first in
  # ccache's directory of compiler links (update-ccache-symlinks makes them for the installed
  # cross compilers), each is ccache, which runs the real one from the rest of PATH.
  if [ -n "$arch" ] && [ -d /usr/lib/ccache ]; then
    export PATH="/usr/lib/ccache:$PATH"
  fi
fi
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" dpkg-buildpackage "${flags[@]}"
cp ../*.deb ../*.changes ../*.buildinfo "$out"/
ls "$out"/*.deb
