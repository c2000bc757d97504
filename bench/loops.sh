#!/usr/bin/env bash
# loops.sh: kefu on 1 loop against kefu on N loops (--loops; docs/ARCHITECTURE.md, "Every
# core"), under the same loads, runs interleaved (1, N, 1, N, ...) so that what else the machine
# does falls on both alike: 10,000 WebSocket visitors at each rate of RATES msg/s (an agent's
# replies, each pushed to its visitor and timed), and 10,000 SSE connections opened at once.
# Prints one line per run (kf_load's JSON figures) to stdout; the figures are in
# docs/PERFORMANCE.md, "Every core".
#
#   bench/loops.sh [LOOPS] [ROUNDS]     (defaults: 2 loops, 2 rounds)
#   BUILD_DIR=build-test RATES="5000 10000 20000" SECONDS_RUN=10 VISITORS=10000 bench/loops.sh
set -euo pipefail
cd "$(dirname "$0")/.."
loops=${1:-2}
rounds=${2:-2}
build=${BUILD_DIR:-build}
rates=${RATES:-"5000 10000"}
seconds=${SECONDS_RUN:-10}
visitors=${VISITORS:-10000}
log() { echo "loops.sh: $*" >&2; }
# shellcheck source=bench/kefu.sh
. bench/kefu.sh
trap stop_kefu EXIT

run() { # LOOPS LABEL kf_load-args...
    local n=$1 label=$2
    shift 2
    start_kefu "$build/kefu" FULL --loops "$n"
    local out agent=()
    # The admin's password is the fresh data directory's: known only once it started.
    case $label in ws-*) agent=(--agent-email admin@localhost --agent-password "$kefu_password") ;; esac
    out=$("$build/kf_load" --url "http://127.0.0.1:$kefu_port" --server-pid "$kefu_pid" \
        --label "$label loops=$n" "${agent[@]}" "$@" 2>/dev/null | tail -n 1) || true
    stop_kefu
    echo "{\"loops\":$n,\"run\":\"$label\",\"figures\":${out:-null}}"
}

for round in $(seq "$rounds"); do
    for n in 1 "$loops"; do
        log "round $round, $n loop(s)"
        for rate in $rates; do
            run "$n" "ws-$rate" --transport ws --visitors "$visitors" --rate "$rate" \
                --duration "$seconds"
        done
        run "$n" "connect-sse" --transport sse --visitors "$visitors" --connect-only --duration 2
    done
done
