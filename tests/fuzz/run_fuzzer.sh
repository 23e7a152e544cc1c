#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time: new inputs go to a scratch corpus in
# the build dir (the repository's corpus is only read), a crash leaves its input as
# <build>/fuzz-crashes/<target>-crash-* and fails the test. To keep a crash as a
# regression test, copy that file into tests/fuzz/corpus/<target>/ with the fix.
# The seed is fixed: a run explores the same inputs in the same order on every machine,
# so a CI run shorter than a clean local run of the same code cannot fail on its own.
#   run_fuzzer.sh BINARY SEED_CORPUS SCRATCH_DIR SECONDS
set -euo pipefail
bin=$1 seeds=$2 scratch=$3 seconds=$4
name=$(basename "$bin")
mkdir -p "$scratch/corpus-$name" "$scratch/fuzz-crashes"
exec "$bin" -seed=1 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$scratch/fuzz-crashes/$name-" "$scratch/corpus-$name" "$seeds"
