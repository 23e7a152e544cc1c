#!/usr/bin/env bash
# The Debian package end to end, never on this machine itself: build (tools/deb.sh),
# lintian, then in a Debian 12 chroot made with debootstrap: install -> upgrade while the
# daemon and a service run (both pids the same after) -> remove -> purge; then the arm64
# package (cross-built): lintian, its architecture and an aarch64 binary.
# Writes PASS, FAIL or SKIP to build-deb/deb-result (tools/test.sh counts it) and always
# exits 0: the verdict is the file. SKIP only when the Debian archive cannot be reached.
#
# No systemd runs in a chroot (nor may one be started on this machine), so what the unit
# would do is done by hand: the test starts `dockless serve` in the chroot, in the unit's
# working directory, in a network namespace of its own (its TCP port never meets the
# machine's). The maintainer scripts run for real, with what they do without a running
# systemd: the unit is enabled (symlinks), `deb-systemd-invoke start` does nothing, the
# group is made by systemd-sysusers, and on upgrade the postinst's `dockless upgrade`
# re-executes the running daemon. docs/packaging.md says what this covers and what not.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=$PWD/build-deb
mkdir -p "$out"
result=$out/deb-result
rm -f "$result"
started=$SECONDS
finish() {
  echo "$1" > "$result"
  echo "deb_test: $1${2:+: $2} ($((SECONDS - started)) s)"
  exit 0
}
fail() { finish FAIL "$*"; }
step() { echo "deb_test: $* ($((SECONDS - started)) s)"; }

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot): run through tools/test.sh"
for t in debootstrap lintian dpkg-buildpackage unshare ip file; do
  command -v "$t" >/dev/null || fail "$t missing (tools/deps.sh --test installs it)"
done

# 1. Build, and a second package with a higher version for the upgrade step. The second
# one is the first repacked with a new Version (dpkg-deb -R/-b): dpkg and the maintainer
# scripts see a real upgrade (new files unpacked over the running binary), without
# compiling everything twice.
step "building the package (tools/deb.sh, log: $out/build.log)"
rm -rf "$out/v1" "$out/v2" "$out/repack"
bash tools/deb.sh "$out/v1" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; fail "package build failed ($out/build.log)"; }
deb1=$(ls "$out"/v1/dockless_*.deb | head -1)
v1=$(dpkg-deb -f "$deb1" Version)
v2="${v1%-*}-$(( ${v1##*-} + 1 ))"
dpkg-deb -R "$deb1" "$out/repack" || fail "dpkg-deb -R"
sed -i "s/^Version: .*/Version: $v2/" "$out/repack/DEBIAN/control"
mkdir -p "$out/v2" && dpkg-deb --root-owner-group -b "$out/repack" "$out/v2/" >/dev/null || fail "repack failed"
deb2=$(ls "$out"/v2/dockless_*.deb | head -1)

# 2. lintian: no error or warning left (deliberate ones are overridden in debian/ and
# listed in docs/packaging.md).
step "lintian"
lintian --fail-on error,warning "$deb1" >"$out/lintian.log" 2>&1 || { cat "$out/lintian.log"; fail "lintian"; }

# 3. The chroot, from the Debian mirror apt uses here, cached as a tarball (and the .debs
# apt fetches into it, in a cache directory bound into the chroot): a rerun downloads
# only the package lists.
mirror=$(grep -hoE '^(URIs:|deb) *https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
         | grep -oE 'https?://[^ ]*' | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
cache=${DOCKLESS_CACHE:-/var/cache/dockless-ci}
tarball=$cache/bookworm-minbase.tar.gz
mkdir -p "$cache/apt-archives/partial"
root=$(mktemp -d /tmp/dockless-deb-root.XXXXXX)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; fi
  # Whatever the test started in the chroot and is still there (a service the daemon
  # left, a stuck maintainer script): ended by pid, found by its root directory.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  for m in var/cache/apt/archives dev/pts dev proc; do umount -l "$root/$m" 2>/dev/null; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
if [ ! -s "$tarball" ]; then
  step "debootstrap bookworm from $mirror (cached in $tarball afterwards)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$out/debootstrap.log" 2>&1 \
    || finish SKIP "debootstrap from $mirror failed (no network?): $out/debootstrap.log"
  tar -C "$root" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
else
  tar -C "$root" -xzf "$tarball" || fail "unpacking $tarball"
fi
mount -t proc proc "$root/proc" && mount --bind /dev "$root/dev" && mount --bind /dev/pts "$root/dev/pts" \
  && mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives" || fail "mounts in the chroot"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
# Nothing a maintainer script asks to start is started (there is no init here to ask).
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
in_root() { timeout 300 chroot "$root" env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
step "apt-get update in the chroot"
in_root apt-get update -qq >"$out/chroot.log" 2>&1 || finish SKIP "apt-get update in the chroot failed (no network?)"
cp "$deb1" "$deb2" "$root/tmp/"

# install, with its Recommends (systemd: the unit's manager, and systemd-sysusers)
step "install"
in_root apt-get install -y -q "/tmp/$(basename "$deb1")" >>"$out/chroot.log" 2>&1 || { tail -20 "$out/chroot.log"; fail "install"; }
for f in /usr/bin/dockless /lib/systemd/system/dockless.service /etc/dockless/config.toml \
         /usr/lib/sysusers.d/dockless.conf \
         /usr/share/man/man1/dockless.1.gz /usr/share/man/man5/dockless.toml.5.gz \
         /usr/share/bash-completion/completions/dockless /usr/share/zsh/vendor-completions/_dockless; do
  [ -e "$root$f" ] || fail "installed package lacks $f"
done
in_root getent group dockless >/dev/null || fail "no dockless group after install"
[ -L "$root/etc/systemd/system/multi-user.target.wants/dockless.service" ] || fail "unit not enabled"
grep -qx "/etc/dockless/config.toml" "$root/var/lib/dpkg/info/dockless.conffiles" || fail "config is not a conffile"
in_root dockless --help >/dev/null 2>&1 || fail "the installed binary does not run"

# The daemon, as the unit runs it (ExecStart, WorkingDirectory), with one service. The
# config is the operator's edit of the conffile: the upgrade must keep it.
cat > "$root/etc/dockless/config.toml" <<'TOML'
listen_port = 39080
listen_address = "127.0.0.1"
[services.sleeper]
command = ["sleep", "1000"]
TOML
step "starting dockless serve in the chroot"
unshare -n sh -c 'ip link set lo up; exec chroot "$0" sh -c "cd /etc/dockless && exec /usr/bin/dockless serve"' "$root" \
  >"$out/daemon.log" 2>&1 &
daemon_pid=$!
service_pid() { in_root dockless inspect --json sleeper 2>/dev/null | grep -oE '"pid": *[0-9]+' | grep -oE '[0-9]+$' | head -1; }
svc_pid=""
for _ in $(seq 100); do
  svc_pid=$(service_pid)
  [ -n "$svc_pid" ] && [ "$svc_pid" != 0 ] && break
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$svc_pid" ] && [ "$svc_pid" != 0 ] || { cat "$out/daemon.log"; fail "daemon or service did not start in the chroot"; }

# upgrade: dpkg unpacks the new binary over the running one (the old image is now a
# deleted file), then the postinst runs `dockless upgrade`: the same daemon pid execs the
# new file and keeps the service.
step "upgrade $v1 -> $v2 (daemon pid $daemon_pid, service pid $svc_pid)"
in_root apt-get install -y -q "/tmp/$(basename "$deb2")" >>"$out/chroot.log" 2>&1 || { tail -20 "$out/chroot.log"; fail "upgrade"; }
in_root dpkg -s dockless | grep -qx "Version: $v2" || fail "not upgraded to $v2"
kill -0 "$daemon_pid" 2>/dev/null || { cat "$out/daemon.log"; fail "daemon gone after upgrade"; }
grep -q "resuming after an upgrade" "$out/daemon.log" || { cat "$out/daemon.log"; tail -20 "$out/chroot.log"; fail "the daemon was not re-executed in place"; }
exe=$(readlink "/proc/$daemon_pid/exe")
case $exe in *"(deleted)"*) fail "daemon pid $daemon_pid still runs the old binary ($exe)" ;; esac
svc_after=$(service_pid)
[ "$svc_after" = "$svc_pid" ] || fail "service pid changed over the upgrade ($svc_pid -> $svc_after)"
grep -q "sleeper" "$root/etc/dockless/config.toml" || fail "the upgrade replaced the edited conffile"

kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=""

# remove keeps the conffile; purge removes it, the daemon's default data_dir and
# /etc/dockless. The group stays (docs/packaging.md: files may still carry its gid).
step "remove, purge"
in_root apt-get remove -y -q dockless >>"$out/chroot.log" 2>&1 || fail "remove"
[ ! -e "$root/usr/bin/dockless" ] || fail "binary left after remove"
[ -e "$root/etc/dockless/config.toml" ] || fail "conffile gone after remove"
in_root apt-get purge -y -q dockless >>"$out/chroot.log" 2>&1 || fail "purge"
[ ! -e "$root/etc/dockless" ] || fail "/etc/dockless left after purge: $(find "$root/etc/dockless" | head -5)"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/dockless.service" ] || fail "unit still enabled after purge"
in_root dpkg -s dockless >/dev/null 2>&1 && fail "dpkg still knows dockless after purge"

# 4. The arm64 package, cross-built through ccache (tools/deb.sh --arch arm64): lintian and
# what it holds. It is installed nowhere: qemu-user has no io_uring, and the aarch64 VM of
# tools/arm-test.sh boots a static test binary, not a Debian root.
step "building the arm64 package (tools/deb.sh --arch arm64, log: $out/build-arm64.log)"
rm -rf "$out/arm64"
bash tools/deb.sh --arch arm64 "$out/arm64" >"$out/build-arm64.log" 2>&1 \
  || { tail -30 "$out/build-arm64.log"; fail "arm64 package build failed ($out/build-arm64.log)"; }
deba=$(ls "$out"/arm64/dockless_*_arm64.deb 2>/dev/null | head -1)
[ -n "$deba" ] || fail "no dockless_*_arm64.deb in $out/arm64"
[ "$(dpkg-deb -f "$deba" Architecture)" = arm64 ] || fail "$deba: Architecture $(dpkg-deb -f "$deba" Architecture)"
# The listing first: grep -q would end the pipe early, and pipefail would call that a failure.
listing=$(dpkg-deb -c "$deba") || fail "dpkg-deb -c $deba"
grep -qE ' \./usr/bin/dockless$' <<<"$listing" || fail "$deba lacks /usr/bin/dockless"
step "lintian (arm64)"
lintian --fail-on error,warning "$deba" >"$out/lintian-arm64.log" 2>&1 || { cat "$out/lintian-arm64.log"; fail "lintian (arm64)"; }
unpacked=$(mktemp -d)
dpkg-deb -x "$deba" "$unpacked"
kind=$(file -b "$unpacked/usr/bin/dockless")
rm -rf "$unpacked"
case $kind in *"ELF 64-bit"*"ARM aarch64"*) ;; *) fail "arm64 package's /usr/bin/dockless is: $kind" ;; esac
finish PASS
