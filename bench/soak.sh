#!/usr/bin/env bash
# soak.sh: the soak (`make soak`, and `make soak-short` in `make test`): a fresh kefu, kf_soak's
# visitors and agents on it for a long while (mixed transports, random reconnections, answers),
# the samples as CSV, the plot as SVG, and the verdict (bench/soak_report.js): nothing lost,
# nothing doubled, memory, open files and p99 flat at the end, and kefu exiting cleanly on
# SIGTERM. Exits 1 when the run fails.
#
#   bench/soak.sh [--short] [--minutes N] [--visitors N] [--out DIR] [--svg FILE] [--csv FILE]
#
#   (default)   30 minutes, 5,000 visitors, a drop every 60 s per listener on average, a sample
#               a minute; writes docs/soak.svg and docs/soak.csv
#   --short     2 minutes, 1,000 visitors, a drop every 10 s on average, a sample every 5 s;
#               writes into the output directory only
#   --out DIR   where the samples, kf_soak's output and kefu's log go (default: a new
#               /tmp/kf-soak.* directory, kept)
#
# Environment: BUILD_DIR (default ./build; configured with KF_TESTS=OFF if it does not exist),
# RATE (visitors' messages a second, default 10), AGENTS (4), DRAIN (30 s). The soak stays on
# 127.0.0.0/8, at most 5,000 visitors (kefu and kf_soak share this session's 20,000 open files),
# and stops what it started, by PID, whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# start_kefu, stop_kefu and the raised limits.
source "$root/bench/kefu.sh"
build=${BUILD_DIR:-$root/build}
rate=${RATE:-10}
agents=${AGENTS:-4}
drain=${DRAIN:-30}
minutes=30
visitors=5000
reconnect=60
sample=60
short=0
out=""
svg=""
csv=""

while [ $# -gt 0 ]; do
    case "$1" in
    --short) short=1 minutes=2 visitors=1000 reconnect=10 sample=5 ;;
    --minutes) minutes=$2 && shift ;;
    --visitors) visitors=$2 && shift ;;
    --out) out=$2 && shift ;;
    --svg) svg=$2 && shift ;;
    --csv) csv=$2 && shift ;;
    -h | --help)
        sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "soak.sh: unknown option $1 (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

log() { echo "soak: $*" >&2; }

if [ -z "$out" ]; then
    out=$(mktemp -d /tmp/kf-soak.XXXXXX)
fi
mkdir -p "$out"
if [ "$short" = 0 ]; then
    svg=${svg:-$root/docs/soak.svg}
    csv=${csv:-$root/docs/soak.csv}
fi
svg=${svg:-$out/soak.svg}
csv=${csv:-$out/soak.csv}

soak_pid=""

# Stops what this script started, by PID.
cleanup() {
    if [ -n "$soak_pid" ]; then
        kill -TERM "$soak_pid" 2>/dev/null || true
        wait "$soak_pid" 2>/dev/null || true
        soak_pid=""
    fi
    if [ -n "$kefu_pid" ] && [ -n "$kefu_log" ] && [ -f "$kefu_log" ]; then
        cp "$kefu_log" "$out/kefu.log" || true
    fi
    stop_kefu
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -f "$build/CMakeCache.txt" ]; then
    log "configuring $build"
    cmake -S "$root" -B "$build" -DKF_TESTS=OFF >/dev/null
fi
log "building kefu and kf_soak in $build"
cmake --build "$build" -j"$(nproc)" --target kefu kf_soak >/dev/null

# What else runs here: the machine is shared, and the figures depend on it.
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "busiest processes at start:"
    ps -eo pcpu,rss,comm --sort=-pcpu 2>/dev/null | head -n 8 || true
} >"$out/machine.txt"

start_kefu "$build/kefu" FULL
log "kefu $kefu_pid on 127.0.0.1:$kefu_port; $minutes min, $visitors visitors, $agents agents," \
    "$rate msg/s, drops every ${reconnect} s, a sample every ${sample} s; output in $out"
"$build/kf_soak" --url "http://127.0.0.1:$kefu_port" --server-pid "$kefu_pid" \
    --agent-email admin@localhost --agent-password "$kefu_password" \
    --visitors "$visitors" --agents "$agents" --duration $((minutes * 60)) --rate "$rate" \
    --reconnect-mean "$reconnect" --sample-interval "$sample" --drain "$drain" \
    --samples "$csv" >"$out/summary.txt" 2> >(tee "$out/progress.txt" >&2) &
soak_pid=$!
soak_status=0
wait "$soak_pid" || soak_status=$?
soak_pid=""
cp "$kefu_log" "$out/kefu.log"
stop_kefu
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
cat "$out/summary.txt"

status=0
if [ "$soak_status" != 0 ]; then
    log "kf_soak exited with $soak_status"
    status=1
fi
if [ "$kefu_status" != 0 ]; then
    log "kefu exited with $kefu_status on SIGTERM (expected 0); its log: $out/kefu.log"
    tail -n 20 "$out/kefu.log" >&2 || true
    status=1
fi
tail -n 1 "$out/summary.txt" >"$out/summary.json"
# Each time a loop gave up waiting for a late message (chat/app.c, KF_BUS_HOLE): listeners that
# come back then may get messages again below their cursor, as docs/PROTOCOL.md allows.
late=$(grep -c "did not come in time" "$out/kefu.log" || true)
if ! node "$root/bench/soak_report.js" --csv "$csv" --summary "$out/summary.json" --svg "$svg" \
    --title "kefu soak, $minutes min" --late "${late:-0}"; then
    status=1
fi
log "samples $csv, plot $svg, everything in $out"
exit "$status"
