#!/usr/bin/env bash
# fuzz.sh: runs every libFuzzer target in a build directory for SECONDS each, JOBS at a time,
# each on its seed corpus (fuzz/corpus/<name>) plus a working corpus kept in the build directory.
# Prints each target's executions; on a crash prints the end of its log and exits non-zero.
#
#   scripts/fuzz.sh BUILD_DIR SECONDS JOBS
set -uo pipefail

build=$1
seconds=$2
jobs=$3
root=$(cd "$(dirname "$0")/.." && pwd)

run_one() {
    local f=$1 name corpus log
    name=$(basename "$f")
    corpus=$root/fuzz/corpus/${name#fuzz_}
    log=$build/$name.log
    mkdir -p "$build/corpus-$name"
    if ! "$f" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/$name-" \
        "$build/corpus-$name" "$corpus" >"$log" 2>&1; then
        echo "fuzz: $name FAILED:"
        tail -50 "$log"
        return 1
    fi
    echo "fuzz: $name $(grep -E 'stat::number_of_executed_units' "$log" | tr -s ' ')"
}
export -f run_one
export build seconds root

# The targets are the executables: each leaves a fuzz_<name>.log beside it.
targets=()
for f in "$build"/fuzz_*; do
    [[ -f $f && -x $f ]] && targets+=("$f")
done
echo "fuzz: ${#targets[@]} targets, $seconds s each, $jobs at a time"
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {}
