#!/usr/bin/env bash
# Installs what building and testing Dockless needs on Debian 12 / Raspberry Pi OS.
# Idempotent; run as root (or through sudo).
set -euo pipefail
packages=(
  build-essential pkg-config meson ninja-build
  liburing-dev libtomlplusplus-dev libssl-dev node-llhttp nlohmann-json3-dev libgtest-dev
  python3 curl procps
)
# --bench: the peers of bench/peers_bench.py. runit and s6 are small (~2 MB installed with
# s6's skalibs/execline libraries), so --test includes them too. Installing runit does not
# start a runsvdir (that is runit-run's or runit-systemd's job), and peers_bench.py never
# uses /etc/service. (supervisor, for bench/supervisor_bench.py, is left out: its package
# starts a system supervisord.)
if [ "${1:-}" = "--bench" ] || [ "${1:-}" = "--test" ]; then
  packages+=(runit s6)
fi
if [ "${1:-}" = "--test" ]; then
  packages+=(util-linux)  # mount (tmpfs for the full-disk tests)
  packages+=(clang libclang-rt-14-dev)  # tests/fuzz: clang and its libFuzzer runtime
  packages+=(valgrind)    # tests/valgrind: the daemon under memcheck
  packages+=(clang-tidy)  # tools/tidy.sh (.clang-tidy)
  packages+=(ccache)      # tools/test.sh: a re-run compiles only what changed
  packages+=(openssl)     # tests/tls, api/auth, api/triggers: certificates and signatures made by the openssl CLI
  packages+=(libwolfssl-dev)  # tools/test.sh's -Dtls=wolfssl build (amd64 only: the package is not Multi-Arch; tools/arm-test.sh unpacks the :arm64 one)
  packages+=(systemd)     # tests/systemd: systemd-analyze verify (systemd is never started)
  packages+=(libsystemd-dev)  # tests/e2e/sd_listen.c: a socket-activated server using sd_listen_fds_with_names
  packages+=(chromium)    # tests/dashboard: headless browser (/usr/bin/chromium)
  packages+=(docker-compose)  # tests/export: `docker-compose config` reads the exported Compose file
  packages+=(podman-compose)  # tests/export: the exported Compose file run for real (podman below)
  # tests/deb: tools/deb.sh builds the package (dpkg-dev, debhelper, fakeroot), lintian checks it,
  # debootstrap makes the Debian 12 chroot it is installed in, file checks the arm64 binary.
  packages+=(dpkg-dev debhelper fakeroot lintian debootstrap file)
  # tests/e2e/docker_test.py: a container engine (podman, run by runc) and a busybox
  # rootfs for its image; netavark, catatonit (--init), fuse-overlayfs and uidmap are
  # what podman needs to run a container here.
  packages+=(podman busybox-static netavark aardvark-dns catatonit slirp4netns fuse-overlayfs uidmap runc iptables)
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
