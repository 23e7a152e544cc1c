#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy, every warning an error) over the project's own
# sources: runtime/ config/ actors/ http/ tools/ bench/ tests/ (never subprojects/ or
# generated files). The compile commands come from a clang build dir (build-tidy): a GCC
# compile_commands.json carries flags clang rejects.
#   tools/tidy.sh [-j N] [FILE...]     default -j 2, every project source
# Exits 0 when clean, 1 on any finding (or a file clang cannot parse), 2 on setup errors.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=2
if [ "${1:-}" = "-j" ]; then
  jobs=$2
  shift 2
fi
dir=build-tidy
tidy=$(command -v clang-tidy-14 || command -v clang-tidy) || { echo "tools/tidy.sh: clang-tidy not installed" >&2; exit 2; }

if [ ! -f "$dir/compile_commands.json" ]; then
  # A debug build: no -O flags, and the same options as the builds CI tests.
  CC=clang CXX=clang++ meson setup "$dir" --wrap-mode=nofallback -Dbuildtype=debug >/dev/null ||
    { echo "tools/tidy.sh: meson setup $dir failed" >&2; exit 2; }
fi
# Generated headers and sources some translation units include (dockless_config.h is made
# by setup; the dashboard's assets are a custom target).
ninja -C "$dir" http/dashboard/dashboard_assets.cpp >/dev/null ||
  { echo "tools/tidy.sh: generating sources in $dir failed" >&2; exit 2; }

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(python3 - "$dir/compile_commands.json" <<'PY'
import json, os, sys
root = os.getcwd()
dirs = ("runtime", "config", "actors", "http", "tools", "bench", "tests")
seen = set()
for entry in json.load(open(sys.argv[1])):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    rel = os.path.relpath(path, root)
    # Generated files live in the build dir (rel starts with it), not in a source folder.
    if rel.split(os.sep)[0] in dirs and rel not in seen:
        seen.add(rel)
        print(rel)
PY
)
fi
echo "clang-tidy: ${#files[@]} files, -j $jobs ($($tidy --version | grep -o 'version [0-9.]*'))"

# xargs runs one clang-tidy per file, $jobs at a time; exit 123 when any of them failed.
start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '%s\0' "${files[@]}" |
  xargs -0 -P "$jobs" -n 1 "$tidy" -p "$dir" --quiet >"$out" 2>&1
rc=$?
# clang-tidy prints "N warnings generated" for the headers it filtered out: noise.
grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers' "$out"
findings=$(grep -c -E ': (warning|error): ' "$out")
echo "clang-tidy: $findings finding(s) in $(( $(date +%s) - start )) s"
[ $rc -eq 0 ] && [ "$findings" -eq 0 ]
