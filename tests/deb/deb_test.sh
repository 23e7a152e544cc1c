#!/usr/bin/env bash
# The Debian package end to end, never on this machine itself: build (tools/deb.sh),
# lintian, then in a Debian 12 chroot made with debootstrap: install -> upgrade while the
# daemon and a service run (both pids the same after) -> remove -> purge.
# Writes PASS, FAIL or SKIP to build-deb/deb-result (tools/test.sh counts it).
# SKIP when debootstrap cannot run or the Debian archive is unreachable.
#
# systemd does not run in a chroot: a policy-rc.d forbids every service start, so the
# postinst's `deb-systemd-invoke start` is exercised only up to that refusal, and the
# daemon is started by hand (`dockless serve`), as the unit would. The postinst's own
# part — `dockless upgrade` when the daemon's socket exists — runs for real.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$PWD/build-deb
mkdir -p "$out"
result=$out/deb-result
rm -f "$result"
finish() { echo "$1" > "$result"; echo "deb_test: $1${2:+: $2}"; exit 0; }
fail() { finish FAIL "$*"; }

[ "$(id -u)" -eq 0 ] || finish SKIP "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 \
  || finish SKIP "debootstrap not installable"

# 1. Build, and a second package with a higher version for the upgrade step. The second
# one is the first repacked with a new Version (dpkg-deb -R/-b): what dpkg and the
# maintainer scripts see is a real upgrade, without compiling everything twice.
bash tools/deb.sh "$out/v1" >"$out/build.log" 2>&1 || fail "package build failed ($out/build.log)"
deb1=$(ls "$out"/v1/dockless_*.deb | head -1)
v1=$(dpkg-deb -f "$deb1" Version)
v2="${v1%-*}-$(( ${v1##*-} + 1 ))"
rm -rf "$out/repack" && dpkg-deb -R "$deb1" "$out/repack"
sed -i "s/^Version: .*/Version: $v2/" "$out/repack/DEBIAN/control"
mkdir -p "$out/v2" && dpkg-deb --root-owner-group -b "$out/repack" "$out/v2/" >/dev/null || fail "repack failed"
deb2=$(ls "$out"/v2/dockless_*.deb | head -1)

# 2. lintian: no error or warning left (deliberate ones are overridden in debian/).
lintian --fail-on error,warning "$deb1" >"$out/lintian.log" 2>&1 || { cat "$out/lintian.log"; fail "lintian"; }

# 3. The chroot, from the mirror apt uses here, cached as a tarball.
mirror=$(grep -hoE '^(URIs:|deb) *https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
         | grep -oE 'https?://[^ ]*' | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
cache=${DOCKLESS_CACHE:-/var/cache/dockless-test}
tarball=$cache/bookworm-minbase.tar.gz
mkdir -p "$cache"
root=$(mktemp -d /tmp/dockless-deb-root.XXXXXX)
cleanup() {
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null
  for m in dev/pts dev proc; do umount -l "$root/$m" 2>/dev/null; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
if [ ! -s "$tarball" ]; then
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$out/debootstrap.log" 2>&1 \
    || finish SKIP "debootstrap from $mirror failed (no network?): $out/debootstrap.log"
  tar -C "$root" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
else
  tar -C "$root" -xzf "$tarball"
fi
mount -t proc proc "$root/proc" && mount --bind /dev "$root/dev" && mount --bind /dev/pts "$root/dev/pts" \
  || fail "mounts in the chroot"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root apt-get update -qq >"$out/chroot.log" 2>&1 || finish SKIP "apt-get update in the chroot failed (no network?)"
cp "$deb1" "$deb2" "$root/tmp/"

# install
in_root apt-get install -y -q "/tmp/$(basename "$deb1")" >>"$out/chroot.log" 2>&1 || { tail -20 "$out/chroot.log"; fail "install"; }
for f in /usr/bin/dockless /lib/systemd/system/dockless.service /etc/dockless/config.toml \
         /usr/share/man/man1/dockless.1.gz /usr/share/man/man5/dockless.toml.5.gz \
         /usr/share/bash-completion/completions/dockless /usr/share/zsh/vendor-completions/_dockless; do
  [ -e "$root$f" ] || fail "installed package lacks $f"
done
in_root getent group dockless >/dev/null || fail "no dockless group after install"
[ -e "$root/etc/systemd/system/multi-user.target.wants/dockless.service" ] || fail "unit not enabled"
grep -q "^/etc/dockless/config.toml$" "$root/var/lib/dpkg/info/dockless.conffiles" || fail "config is not a conffile"

# The daemon by hand, with one service, as the unit would run it.
cat > "$root/etc/dockless/config.toml" <<'TOML'
listen_port = 39080
listen_address = "127.0.0.1"
[services.sleeper]
command = ["sleep", "1000"]
TOML
mkdir -p "$root/run/dockless"
chroot "$root" /usr/bin/dockless serve >"$out/daemon.log" 2>&1 &
daemon_pid=$!
svc_pid=""
for _ in $(seq 50); do
  svc_pid=$(in_root dockless inspect --json sleeper 2>/dev/null | grep -oE '"pid": *[0-9]+' | grep -oE '[0-9]+$' | head -1)
  [ -n "$svc_pid" ] && [ "$svc_pid" != 0 ] && break
  sleep 0.2
done
[ -n "$svc_pid" ] && [ "$svc_pid" != 0 ] || { cat "$out/daemon.log"; fail "daemon or service did not start in the chroot"; }

# upgrade: the postinst runs `dockless upgrade`; same daemon pid, same service pid.
in_root apt-get install -y -q "/tmp/$(basename "$deb2")" >>"$out/chroot.log" 2>&1 || { tail -20 "$out/chroot.log"; fail "upgrade"; }
grep -q "Version: $v2" <(in_root dpkg -s dockless) || fail "not upgraded to $v2"
kill -0 "$daemon_pid" 2>/dev/null || { cat "$out/daemon.log"; fail "daemon gone after upgrade"; }
svc_after=$(in_root dockless inspect --json sleeper 2>/dev/null | grep -oE '"pid": *[0-9]+' | grep -oE '[0-9]+$' | head -1)
[ "$svc_after" = "$svc_pid" ] || fail "service pid changed over the upgrade ($svc_pid -> $svc_after)"
grep -q "resuming after an upgrade" "$out/daemon.log" || { cat "$out/daemon.log"; fail "daemon log shows no in-place upgrade"; }

kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=""

# remove keeps the conffile, purge removes it
in_root apt-get remove -y -q dockless >>"$out/chroot.log" 2>&1 || fail "remove"
[ ! -e "$root/usr/bin/dockless" ] || fail "binary left after remove"
[ -e "$root/etc/dockless/config.toml" ] || fail "conffile gone after remove"
in_root apt-get purge -y -q dockless >>"$out/chroot.log" 2>&1 || fail "purge"
[ ! -e "$root/etc/dockless/config.toml" ] || fail "conffile left after purge"
finish PASS
