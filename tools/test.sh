#!/usr/bin/env bash
# Sets up and runs every test: installs packages, builds a release build and an
# AddressSanitizer+UBSan build (warnings are errors in both), runs `meson test`
# in each, runs the TLS and crypto tests again in a small -Dtls=wolfssl build, runs the
# libFuzzer targets for a bounded time in a clang build, then the C++
# test programs cross-built for aarch64 on two ARM kernels under qemu-system-aarch64
# (tools/arm-test.sh), runs clang-tidy (tools/tidy.sh), and ends with one line
# "N passed, N failed, N skipped".
#   tools/test.sh            both builds, fuzzing, clang-tidy and the ARM run
#   tools/test.sh --fast     release build only (no ASan, no fuzzing, no clang-tidy, no ARM)
set -uo pipefail
cd "$(dirname "$0")/.."
fast=0
[ "${1:-}" = "--fast" ] && fast=1

if [ "$(id -u)" -ne 0 ]; then
  echo "tools/test.sh: run as root (sudo tools/test.sh): the tests mount tmpfs and install packages" >&2
  exit 2
fi
bash tools/deps.sh --test || { echo "package installation failed" >&2; exit 2; }

# ccache (Meson uses it when installed): paths relative to the checkout and no build
# directory in the hash, so a fresh clone elsewhere reuses what an earlier run compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

# CI builds exactly what the system provides: no wrap fallback downloads.
common=(--wrap-mode=nofallback -Dwerror=true)
builds=("build-release:-Dbuildtype=release")
[ $fast -eq 1 ] || builds+=("build-asan:-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false")

status=0
for entry in "${builds[@]}"; do
  dir=${entry%%:*}
  opts=${entry#*:}
  echo "=== $dir ($opts)"
  if [ -d "$dir" ]; then
    # shellcheck disable=SC2086
    meson setup --reconfigure "$dir" "${common[@]}" $opts >/dev/null || status=1
  else
    # shellcheck disable=SC2086
    meson setup "$dir" "${common[@]}" $opts >/dev/null || status=1
  fi
  ninja -C "$dir" || { echo "build failed: $dir"; status=1; continue; }
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
done

# -Dtls=wolfssl (docs/develop.md "Binary size"; the static aarch64 build uses it): the tests
# of what the library does — HTTPS, HMAC and webhook signatures, the CLI's verifying client —
# with wolfSSL loaded instead of OpenSSL. Only those tests' programs are built.
if [ $fast -eq 0 ]; then
  wolf_dir=build-wolfssl
  wolf_tests=(http_crypto http_hmac_auth http_tls http_auth http_webhook api_auth api_triggers api_replay
              api_lazy_openssl cli_transport cli_auth tls_e2e e2e_reload_tls)
  echo "=== $wolf_dir (-Dtls=wolfssl: ${wolf_tests[*]})"
  if [ -d "$wolf_dir" ]; then
    meson setup --reconfigure "$wolf_dir" "${common[@]}" -Dbuildtype=release -Dtls=wolfssl >/dev/null || status=1
  else
    meson setup "$wolf_dir" "${common[@]}" -Dbuildtype=release -Dtls=wolfssl >/dev/null || status=1
  fi
  if ninja -C "$wolf_dir" tools/dockless tests/http/http_{crypto,hmac_auth,tls,auth,webhook}_test; then
    meson test -C "$wolf_dir" --no-rebuild --print-errorlogs --num-processes 2 "${wolf_tests[@]}" || status=1
  else
    echo "build failed: $wolf_dir"
    status=1
  fi
  builds+=("$wolf_dir:")
fi

# Fuzzing (tests/fuzz): the libFuzzer targets under clang with ASan+UBSan, each for a
# bounded time (FUZZ_SECONDS, default 60), two at a time. The GCC builds above already
# replayed the checked-in corpus.
if [ $fast -eq 0 ]; then
  fuzz_dir=build-fuzz
  echo "=== $fuzz_dir (clang libFuzzer, ASan+UBSan, ${FUZZ_SECONDS:-60} s per target)"
  fuzz_opts=(-Dbuildtype=debugoptimized -Dfuzzing=true -Dfuzz_seconds="${FUZZ_SECONDS:-60}"
             -Db_sanitize=address,undefined -Db_lundef=false)
  if [ -d "$fuzz_dir" ]; then
    meson setup --reconfigure "$fuzz_dir" "${common[@]}" "${fuzz_opts[@]}" >/dev/null || status=1
  else
    CC=clang CXX=clang++ meson setup "$fuzz_dir" "${common[@]}" "${fuzz_opts[@]}" >/dev/null || status=1
  fi
  # Only the fuzz targets: the rest of the suite already ran in the GCC builds.
  mapfile -t fuzzers < <(ninja -C "$fuzz_dir" -t targets all 2>/dev/null | grep -o '^tests/fuzz/fuzz_[a-z_]*' | grep -v replay | sort -u)
  if [ ${#fuzzers[@]} -gt 0 ] && ninja -C "$fuzz_dir" "${fuzzers[@]}"; then
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      meson test -C "$fuzz_dir" --no-rebuild --suite libfuzzer --print-errorlogs --num-processes 2 || status=1
  else
    echo "build failed: $fuzz_dir"
    status=1
  fi
  builds+=("$fuzz_dir:")
fi

# clang-tidy (tools/tidy.sh, .clang-tidy): every project source, two at a time, every
# warning an error. Counts as one test below; a crash of the phase (no result) is a failure.
tidy_result=build-tidy/tidy-result
if [ $fast -eq 0 ]; then
  echo "=== build-tidy (clang-tidy)"
  rm -f "$tidy_result"
  if bash tools/tidy.sh -j 2; then verdict=PASS; else verdict=FAIL; status=1; fi
  mkdir -p build-tidy && echo "$verdict" > "$tidy_result"
fi

# aarch64: static cross build, tests booted on a 6.1 and a 6.12 arm64 kernel; every
# (kernel, test) pair counts below. A failed setup leaves no results file: one failure.
arm_results=build-arm/arm-results.tsv
if [ $fast -eq 0 ]; then
  echo "=== build-arm (aarch64 static, qemu-system-aarch64)"
  rm -f "$arm_results"
  bash tools/arm-test.sh || status=1
fi

# The Debian package (tests/deb/deb_test.sh): build, lintian, install -> upgrade -> remove ->
# purge in a debootstrap chroot. One result (PASS, FAIL or SKIP without network).
deb_result=build-deb/deb-result
if [ $fast -eq 0 ]; then
  echo "=== build-deb (Debian package in a chroot)"
  bash tests/deb/deb_test.sh || status=1
fi

DEB_RESULT="$([ $fast -eq 0 ] && echo "$deb_result")" \
TIDY_RESULT="$([ $fast -eq 0 ] && echo "$tidy_result")" \
python3 - "$([ $fast -eq 0 ] && echo "$arm_results")" "${builds[@]}" <<'PY'
import json, os, sys
passed = failed = skipped = 0
tidy = os.environ.get("TIDY_RESULT")
if tidy:
    verdict = open(tidy).read().strip() if os.path.exists(tidy) else "missing"
    if verdict == "PASS": passed += 1
    else:
        failed += 1
        print(f"clang-tidy: {verdict}")
deb = os.environ.get("DEB_RESULT")
if deb:
    verdict = open(deb).read().strip() if os.path.exists(deb) else "missing"
    if verdict == "PASS": passed += 1
    elif verdict == "SKIP": skipped += 1
    else:
        failed += 1
        print(f"tests/deb: {verdict}")
arm = sys.argv[1]
if arm:
    if not os.path.exists(arm):
        failed += 1
        print(f"{arm}: missing (the ARM run did not get to its tests)")
    else:
        for line in open(arm):
            verdict = line.rstrip("\n").split("\t")[2]
            if verdict == "PASS": passed += 1
            elif verdict == "SKIP": skipped += 1
            else: failed += 1
for entry in sys.argv[2:]:
    d = entry.split(":", 1)[0]
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        failed += 1
        print(f"{d}: no test log (build failed)")
        continue
    for line in open(log):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
summary=$?
[ $summary -ne 0 ] && status=1
exit $status
