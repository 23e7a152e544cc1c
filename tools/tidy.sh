#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy, every warning an error) over the project's own
# sources: runtime/ config/ actors/ http/ tools/ bench/ tests/ (never subprojects/ or
# generated files). The compile commands come from a clang build dir (build-tidy): a GCC
# compile_commands.json carries flags clang rejects.
#   tools/tidy.sh [-j N] [FILE...]     default -j 2, every project source
# Clean verdicts are cached (see below; TIDY_CACHE=DIR or off).
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

# One clang-tidy per file, $jobs at a time, with a cache of clean verdicts (like ccache's):
# a file whose preprocessed text (the repository's path replaced by a placeholder, so another
# clone of the same tree hits), .clang-tidy and clang-tidy's version are unchanged was clean
# before and is clean now, since clang-tidy sees nothing else. Only clean results are kept: a
# finding is always re-run and printed. TIDY_CACHE=off runs everything.
cache=${TIDY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dockless/tidy}
start=$(date +%s)
python3 - "$tidy" "$dir" "$jobs" "$cache" "${files[@]}" <<'PY'
import concurrent.futures, hashlib, json, os, re, shlex, subprocess, sys
tidy, build, jobs, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = [os.path.relpath(os.path.normpath(f)) for f in sys.argv[5:]]
root = os.getcwd()
commands = {}
for entry in json.load(open(os.path.join(build, "compile_commands.json"))):
    path = os.path.relpath(os.path.normpath(os.path.join(entry["directory"], entry["file"])), root)
    commands.setdefault(path, entry)
version = subprocess.run([tidy, "--version"], capture_output=True, text=True).stdout
config = open(".clang-tidy", "rb").read()
noise = re.compile(r"^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|"
                   r"^Use -header-filter|^Use -system-headers")

def cache_key(path):
    entry = commands.get(path)
    if cache == "off" or entry is None:
        return None
    argv = shlex.split(entry["command"])
    # The same compiler invocation, preprocessing only, to stdout, writing no dependency file.
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MQ", "-MF", "-MT"):
            skip = True
            continue
        if arg in ("-c", "-MD", "-MMD"):
            continue
        out.append(arg)
    pre = subprocess.run(out + ["-E"], cwd=entry["directory"], capture_output=True)
    if pre.returncode != 0:
        return None
    digest = hashlib.sha256()
    for part in (version.encode(), config, path.encode(), pre.stdout.replace(root.encode(), b"@ROOT@")):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()

def check(path):
    key = cache_key(path)
    marker = os.path.join(cache, key[:2], key) if key else None
    if marker and os.path.exists(marker):
        return path, 0, "", True
    run = subprocess.run([tidy, "-p", build, "--quiet", path], capture_output=True, text=True)
    text = "\n".join(l for l in (run.stdout + run.stderr).splitlines() if not noise.search(l))
    clean = run.returncode == 0 and not re.search(r": (warning|error): ", text)
    if clean and marker:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        open(marker, "w").close()
    return path, run.returncode, text, False

failed = findings = cached = 0
with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    for path, rc, text, hit in pool.map(check, files):
        cached += hit
        if text.strip():
            print(text, flush=True)
        findings += len(re.findall(r": (?:warning|error): ", text))
        failed += rc != 0
print(f"clang-tidy: {findings} finding(s), {failed} file(s) failed, {cached} of {len(files)} clean in the cache")
sys.exit(0 if failed == 0 and findings == 0 else 1)
PY
rc=$?
echo "clang-tidy: $(( $(date +%s) - start )) s"
exit $rc
