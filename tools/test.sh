#!/usr/bin/env bash
# Sets up and runs every test: installs packages, builds a release build and an
# AddressSanitizer+UBSan build (warnings are errors in both), runs `meson test`
# in each, and ends with one line "N passed, N failed, N skipped".
#   tools/test.sh            both builds
#   tools/test.sh --fast     release build only
set -uo pipefail
cd "$(dirname "$0")/.."
fast=0
[ "${1:-}" = "--fast" ] && fast=1

if [ "$(id -u)" -ne 0 ]; then
  echo "tools/test.sh: run as root (sudo tools/test.sh): the tests mount tmpfs and install packages" >&2
  exit 2
fi
bash tools/deps.sh --test || { echo "package installation failed" >&2; exit 2; }

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

python3 - "${builds[@]}" <<'PY'
import json, os, sys
passed = failed = skipped = 0
for entry in sys.argv[1:]:
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
