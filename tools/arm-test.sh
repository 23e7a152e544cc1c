#!/usr/bin/env bash
# Runs Dockless's C++ test programs on real aarch64 kernels (qemu-user has no io_uring):
#   1. installs the cross toolchain, the :arm64 dev packages and qemu-system-arm,
#   2. cross-builds everything fully static (tools/cross/aarch64-linux-gnu.ini, -Dstatic=true),
#   3. packs the test programs, busybox (for the tests' /bin/sh) and a static /init
#      (tests/arm/init.c) into an initramfs,
#   4. boots `qemu-system-aarch64 -M virt -cpu cortex-a72` once per kernel: the newest
#      Debian arm64 cloud kernel of the 6.1 line (bookworm's: no IORING_OP_WAITID, so the
#      pidfd-poll fallback must be the wait path) and of the 6.12 line (IORING_OP_WAITID).
# Writes BUILD/arm-results.tsv (kernel, test, verdict, seconds; tools/test.sh counts it) and
# exits 0 only when every test passed or skipped on every kernel.
# The static dockless uses wolfSSL (-Dtls=wolfssl, docs/develop.md "Binary size"): that is
# the binary the Pi gets, so it is the one measured and tested here; --tls openssl builds
# the other one.
#   tools/arm-test.sh [--no-deps] [--build DIR] [--lines "6.1 6.12"] [--tls wolfssl|openssl]
# Environment: DOCKLESS_ARM_CACHE (downloaded kernels and busybox; /var/cache/dockless-arm),
# DOCKLESS_ARM_TESTS (space-separated test names to run instead of the default set).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

deps=1
build=build-arm
lines="6.1 6.12"
tls=wolfssl
while [ $# -gt 0 ]; do
  case "$1" in
    --no-deps) deps=0 ;;
    --build) build=$2; shift ;;
    --lines) lines=$2; shift ;;
    --tls) tls=$2; shift ;;
    *) echo "usage: tools/arm-test.sh [--no-deps] [--build DIR] [--lines \"6.1 6.12\"] [--tls wolfssl|openssl]" >&2; exit 2 ;;
  esac
  shift
done
cache=${DOCKLESS_ARM_CACHE:-/var/cache/dockless-arm}
run_dir=$build/arm-run
results=$build/arm-results.tsv

die() { echo "arm-test: $*" >&2; exit 2; }
apt_quiet() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq "$@"; }

# --- 1. packages --------------------------------------------------------------------------
# The :arm64 libraries ship .a files (liburing, OpenSSL, GoogleTest); toml++ is used
# header-only in a static build. qemu-system-arm provides qemu-system-aarch64.
packages=(g++-aarch64-linux-gnu liburing-dev:arm64 libssl-dev:arm64 libtomlplusplus-dev:arm64
  libstdc++6:arm64 libgtest-dev:arm64 qemu-system-arm cpio)
if [ $deps -eq 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root (installs packages), or pass --no-deps"
  updated=0
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt_quiet update || die "apt-get update failed"
    updated=1
  fi
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "arm-test: installing ${missing[*]}"
    [ $updated -eq 1 ] || apt_quiet update || die "apt-get update failed"
    updated=1
    apt_quiet install -y --no-install-recommends "${missing[@]}" >/dev/null ||
      die "apt-get install failed"
  fi
fi

# libwolfssl-dev is not Multi-Arch: its :arm64 package cannot be installed next to the
# amd64 one the x86 -Dtls=wolfssl build uses (tools/deps.sh), so its files (libwolfssl.a,
# headers, .pc) are unpacked into the cache and found through a .pc file written here.
wolfssl_pc_dir=""
if [ "$tls" = wolfssl ]; then
  wolfssl_root="$cache/wolfssl-arm64"
  if [ ! -s "$wolfssl_root/usr/lib/aarch64-linux-gnu/libwolfssl.a" ]; then
    mkdir -p "$cache" || die "cannot create $cache"
    tmp=$(mktemp -d) && chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -qq libwolfssl-dev:arm64 >/dev/null 2>&1) &&
      rm -rf "$wolfssl_root" && dpkg-deb -x "$tmp"/libwolfssl-dev_*.deb "$wolfssl_root"
    rm -rf "$tmp"
    [ -s "$wolfssl_root/usr/lib/aarch64-linux-gnu/libwolfssl.a" ] || die "cannot download libwolfssl-dev:arm64"
  fi
  wolfssl_pc_dir="$root/$build.setup/pkgconfig"
  mkdir -p "$wolfssl_pc_dir"
  sed "s|^prefix=.*|prefix=$wolfssl_root/usr|" "$wolfssl_root/usr/lib/aarch64-linux-gnu/pkgconfig/wolfssl.pc" \
    >"$wolfssl_pc_dir/wolfssl.pc"
fi

# --- 2. kernels and busybox (downloaded once into the cache) ------------------------------
mkdir -p "$cache" || die "cannot create $cache"
# The newest signed cloud-arm64 image of a line ("6.1" -> linux-image-6.1.0-NN-cloud-arm64,
# "6.12" -> linux-image-6.12.NNN+deb12-cloud-arm64); names change with every point release.
newest_image() {
  local pattern="^linux-image-${1//./\\.}[.-][^ ]*-cloud-arm64\$"
  apt-cache search --names-only "$pattern" 2>/dev/null | awk '{print $1}' | sort -V | tail -1
}
# Extracts /boot/vmlinuz-* of package $1 into the cache; prints the file's path.
fetch_kernel() {
  local pkg=$1 tmp
  local out="$cache/$pkg.vmlinuz"
  if [ ! -s "$out" ]; then
    tmp=$(mktemp -d) && chmod 755 "$tmp" || return 1  # readable by apt's _apt user
    if (cd "$tmp" && apt-get download -qq "$pkg:arm64" >/dev/null 2>&1) &&
      dpkg-deb -x "$tmp"/*.deb "$tmp/x" && cp "$tmp"/x/boot/vmlinuz-* "$out.part"; then
      mv "$out.part" "$out"
    fi
    rm -rf "$tmp"
  fi
  [ -s "$out" ] && echo "$out"
}
declare -A kernel_of
for line in $lines; do
  pkg=$(newest_image "$line")
  if [ -z "$pkg" ] && [ $deps -eq 1 ]; then
    apt_quiet update >/dev/null 2>&1
    pkg=$(newest_image "$line")
  fi
  image=""
  [ -n "$pkg" ] && image=$(fetch_kernel "$pkg")
  if [ -z "$image" ]; then
    # Offline or the archive moved on: an image of the same line fetched earlier will do.
    image=$(ls "$cache"/linux-image-"$line"[.-]*-cloud-arm64.vmlinuz 2>/dev/null | sort -V | tail -1)
    [ -n "$image" ] && echo "arm-test: ${pkg:-no package for $line} not downloadable; using $(basename "$image")"
  fi
  [ -n "$image" ] || die "no arm64 cloud kernel of the $line line (apt-cache search linux-image cloud-arm64)"
  kernel_of[$line]=$image
done
busybox="$cache/busybox-arm64"
if [ ! -s "$busybox" ]; then
  tmp=$(mktemp -d) && chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1) &&
    dpkg-deb -x "$tmp"/*.deb "$tmp/x" && cp "$tmp/x/bin/busybox" "$busybox"
  rm -rf "$tmp"
  [ -s "$busybox" ] || die "cannot download busybox-static:arm64"
fi

# --- 3. static cross build ----------------------------------------------------------------
# name timeout(s) program [args]: the C++ test programs that need nothing but a kernel,
# busybox's sh and loopback networking. Left out on purpose:
#   http_server, http_stream: drive the server with curl (no aarch64 curl in the initramfs);
#   the Python/node suites (api, cli, e2e, dashboard): need python3/node on the target.
# runtime_task_O0 repeats runtime_task at -O0 (stack safety), which the native builds check.
# Volume tests are filtered out (an emulated CPU runs them at ~1/50 speed; the native builds
# run them): 1,000 children and a 256 MiB splice (runtime_process, ~190 s of 200 here),
# 100 MiB captured and 200 followers x 2 MiB (actors_log_actor, ~65 s of 75). And one
# wall-clock bound: http_limits' "ordinary clients answered within 250 ms" while a slowloris
# holds a connection (an emulated CPU stalls for longer now and then: 429 ms once on 6.1).
default_tests=(
  "runtime_reactor 120 runtime/runtime_reactor_test"
  "runtime_process 180 runtime/runtime_process_test --gtest_filter=-*ThousandChildren*:*Splice256MiB*"
  "runtime_process_start 120 runtime/runtime_process_start_test"
  "runtime_spawn_slots 120 runtime/runtime_spawn_slots_test"
  "runtime_task 120 runtime/runtime_task_test"
  "runtime_ops 120 runtime/runtime_ops_test"
  "runtime_cancel 120 runtime/runtime_cancel_test"
  "runtime_timer 120 runtime/runtime_timer_test"
  "runtime_channel 120 runtime/runtime_channel_test"
  "runtime_signals 120 runtime/runtime_signals_test"
  "runtime_fs 120 runtime/runtime_fs_test"
  "runtime_cgroup_limits 180 runtime/runtime_cgroup_limits_test"
  "runtime_cgroup 120 runtime/runtime_cgroup_test"
  "runtime_cgroup_stats 120 runtime/runtime_cgroup_stats_test"
  "config_values 60 config/config_values_test"
  "config_substitute 60 config/config_substitute_test"
  "config_graph 60 config/config_graph_test"
  "config_parse 60 config/config_parse_test"
  "config_errors 60 config/config_errors_test"
  "config_limits 60 config/config_limits_test"
  "actors_event_log 120 actors/actors_event_log_test"
  "actors_log_store 120 actors/actors_log_store_test"
  "actors_log_actor 180 actors/actors_log_actor_test --gtest_filter=-*HundredMiB*:*TwoHundredFollowers*"
  "actors_health_check 120 actors/actors_health_check_test"
  "actors_health_run 120 actors/actors_health_run_test"
  "actors_service_machine 120 actors/actors_service_machine_test"
  "actors_limits 120 actors/actors_limits_test"
  "http_router 60 http/http_router_test"
  "http_limits 120 http/http_limits_test --gtest_filter=-*SlowlorisDroppedWhileOthersAreServed*"
  "cli_format 60 cli/cli_format_test"
)
selected=()
for entry in "${default_tests[@]}"; do
  name=${entry%% *}
  if [ -n "${DOCKLESS_ARM_TESTS:-}" ] && ! [[ " $DOCKLESS_ARM_TESTS " == *" $name "* ]]; then
    continue
  fi
  selected+=("$entry")
done
[ ${#selected[@]} -gt 0 ] || die "no test selected (DOCKLESS_ARM_TESTS=$DOCKLESS_ARM_TESTS)"

build_start=$SECONDS
# A build directory configured for the other library is set up again.
if [ -f "$build/build.ninja" ] && ! python3 -c 'import json, sys
opts = json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))
sys.exit(0 if any(o["name"] == "tls" and o["value"] == sys.argv[2] for o in opts) else 1)' "$build" "$tls"; then
  rm -rf "$build"
fi
if [ ! -f "$build/build.ninja" ]; then
  cross=(--cross-file tools/cross/aarch64-linux-gnu.ini)
  if [ -n "$wolfssl_pc_dir" ]; then
    mkdir -p "$build.setup"
    printf "[properties]\npkg_config_libdir = ['%s', '/usr/lib/aarch64-linux-gnu/pkgconfig', '/usr/share/pkgconfig']\n" \
      "$wolfssl_pc_dir" >"$build.setup/wolfssl.ini"
    cross+=(--cross-file "$build.setup/wolfssl.ini")
  fi
  # Meson puts ccache in front of native compilers by itself but never of a cross file's:
  # a second cross file overrides the compilers with ccache-wrapped ones when it is installed.
  if command -v ccache >/dev/null 2>&1; then
    mkdir -p "$build.setup"
    printf "[binaries]\nc = ['ccache', 'aarch64-linux-gnu-gcc']\ncpp = ['ccache', 'aarch64-linux-gnu-g++']\n" \
      >"$build.setup/ccache.ini"
    cross+=(--cross-file "$build.setup/ccache.ini")
  fi
  meson setup "$build" "${cross[@]}" -Dstatic=true -Dtls="$tls" \
    -Dbuildtype=release -Dwerror=true --wrap-mode=nofallback >/dev/null || die "meson setup failed"
fi
targets=(tools/dockless tests/arm/arm_init)
for entry in "${selected[@]}"; do
  read -r _ _ prog _ <<<"$entry"
  targets+=("tests/$prog")
done
ninja -C "$build" "${targets[@]}" || die "aarch64 build failed"
echo "arm-test: cross build $((SECONDS - build_start)) s"
aarch64-linux-gnu-strip -o "$build/dockless.stripped" "$build/tools/dockless" &&
  echo "arm-test: static aarch64 dockless (-Dtls=$tls), stripped: $(stat -c %s "$build/dockless.stripped") bytes (docs/develop.md \"Binary size\": goal 3 MiB)"

# --- 4. initramfs -------------------------------------------------------------------------
rm -rf "$run_dir"
fs="$run_dir/root"
mkdir -p "$fs"/{bin,etc,tests,dev,proc,sys,tmp,run} || die "cannot create $fs"
cp "$build/tests/arm/arm_init" "$fs/init"
cp "$busybox" "$fs/bin/busybox" && chmod 755 "$fs/bin/busybox"
# The commands the tests' shell snippets use.
for applet in sh cat echo env false true kill ls printf pwd seq sleep yes head tail dd \
  mkdir rm touch wc grep sed tr id date test timeout; do
  ln -s busybox "$fs/bin/$applet"
done
printf 'root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$fs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$fs/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$fs/etc/hosts"
echo dockless-arm >"$fs/etc/hostname"
: >"$fs/arm-tests.txt"
for entry in "${selected[@]}"; do
  read -r name timeout prog args <<<"$entry"
  # Stripped: the archive is unpacked into the guest's memory.
  aarch64-linux-gnu-strip -o "$fs/tests/$name" "$build/tests/$prog" || die "strip $prog"
  echo "$name $timeout /tests/$name ${args:-}" >>"$fs/arm-tests.txt"
done
# Uncompressed: decompressing in an emulated CPU costs more than reading the bytes.
(cd "$fs" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$run_dir/initramfs.cpio" ||
  die "cpio failed"
echo "arm-test: initramfs $(( $(stat -c %s "$run_dir/initramfs.cpio") / 1024 / 1024 )) MiB, ${#selected[@]} tests"

# --- 5. boot each kernel ------------------------------------------------------------------
# A machine that hangs is cut off: every test's own limit plus boot, at most 20 minutes.
limit=60
for entry in "${selected[@]}"; do
  read -r _ timeout _ <<<"$entry"
  limit=$((limit + timeout))
done
[ $limit -le 1200 ] || limit=1200
: >"$results"
status=0
for line in $lines; do
  image=${kernel_of[$line]}
  kname=$(basename "$image" .vmlinuz)
  kname=${kname#linux-image-}
  log="$run_dir/$kname.log"
  echo "=== arm: $kname (qemu-system-aarch64 -M virt -cpu cortex-a72, limit ${limit} s)"
  t0=$SECONDS
  # -nic none: no NIC (the default one wants an efi-virtio.rom that is not installed).
  # -no-reboot: the init's power-off (or a panic) ends qemu.
  timeout -k 10 "$limit" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -accel tcg \
    -kernel "$image" -initrd "$run_dir/initramfs.cpio" \
    -append "console=ttyAMA0 panic=-1 rdinit=/init quiet" \
    -nic none -nographic -no-reboot -serial mon:stdio </dev/null >"$log" 2>&1
  qemu_rc=$?
  secs=$((SECONDS - t0))
  tr -d '\r' <"$log" >"$log.txt" && mv "$log.txt" "$log"
  # Every listed test must report; one that never did (the machine died) is a failure.
  for entry in "${selected[@]}"; do
    name=${entry%% *}
    r=$(grep -m1 "^DOCKLESS-ARM RESULT $name " "$log")
    if [ -z "$r" ]; then
      printf '%s\t%s\t%s\t%s\n' "$kname" "$name" "FAIL" "-" >>"$results"
      echo "FAIL $name: no result (qemu exit $qemu_rc; see $log)"
      continue
    fi
    read -r _ _ _ verdict code tsecs _ <<<"$r"
    printf '%s\t%s\t%s\t%s\n' "$kname" "$name" "$verdict" "${tsecs#secs=}" >>"$results"
    if [ "$verdict" != PASS ] && [ "$verdict" != SKIP ]; then
      echo "$verdict $name ($code); its output:"
      sed -n "/^DOCKLESS-ARM BEGIN $name\$/,/^DOCKLESS-ARM RESULT $name /p" "$log" | tail -40
    fi
  done
  # The wait path the reactor chose, as runtime_reactor printed it: 6.1 has no
  # IORING_OP_WAITID, so its processes must have been waited for through pidfd polls.
  features=$(grep -m1 "^reactor features:" "$log")
  want=waitid-op
  [ "$line" = 6.1 ] && want=pidfd-poll
  if [[ " ${selected[*]} " == *" runtime/runtime_reactor_test"* ]]; then
    if [[ "$features" == *"$want"* ]]; then
      printf '%s\t%s\t%s\t%s\n' "$kname" "wait_path_$want" PASS 0 >>"$results"
      echo "wait path: $want (${features#reactor features: })"
    else
      printf '%s\t%s\t%s\t%s\n' "$kname" "wait_path_$want" FAIL 0 >>"$results"
      echo "FAIL wait path: expected $want, runtime_reactor printed: '${features:-nothing}'"
    fi
  fi
  p=$(awk -F'\t' -v k="$kname" '$1 == k && $3 == "PASS"' "$results" | wc -l)
  f=$(awk -F'\t' -v k="$kname" '$1 == k && $3 != "PASS" && $3 != "SKIP"' "$results" | wc -l)
  s=$(awk -F'\t' -v k="$kname" '$1 == k && $3 == "SKIP"' "$results" | wc -l)
  echo "arm $kname: passed $p, failed $f, skipped $s; boot and run ${secs} s (qemu exit $qemu_rc)"
  [ "$f" -eq 0 ] || status=1
done
exit $status
