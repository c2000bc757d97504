#!/usr/bin/env bash
# run.sh: the standard benchmark (`make bench`): issue 17's targets, kefu against Nchan in the same
# run. Builds kefu and the tools, then, each load on a fresh kefu and right after it on a fresh
# nginx with Nchan: idle connections over WebSocket and SSE; chat loads at fixed rates over both,
# kefu with every message synced (--synchronous FULL) and, at the low rates, with NORMAL; the
# write+fdatasync floor (kf_fsync) in each FULL run's data directory; a sweep of rates for the
# durable peak (p99 < 10 ms, nothing lost); one run far above what either sustains; and the
# history comparison (kf_history_bench --compare). Then bench_report.js prints the target table,
# every run's figures and the history table, and draws the charts.
#
#   bench/run.sh [--install] [--no-nchan] [--quick] [--keep] [--full-history | --no-history]
#
#   --install       install nginx and libnginx-mod-nchan when missing (needs root and apt)
#   --no-nchan      measure kefu only
#   --quick         a smoke test (about 2 minutes): 1,000 connections, 500 visitors, 3-second
#                   runs, a short sweep, 10,000 against 20,000 conversations; charts not in docs/
#   --keep          keep the directory with every run's full output (printed at the end)
#   --full-history  the history at issue 17's size: 10,000 against 1,000,000 conversations and
#                   20,000,000 messages (about 7 minutes more, 4 GiB in /tmp while it runs); by
#                   default 10,000 against 100,000 conversations (about 1.5 minutes)
#   --no-history    leave the history out
#
# Environment: BUILD_DIR (default ./build), CONNECT_N (10000), CHAT_N (10000), LOW_RATES ("1000
# 5000"), HIGH_RATE (20000), CPU_RATE (10000), SWEEP_RATES ("1000 2500 5000 7500 10000 12500 15000
# 20000 25000 30000 40000"), PEAK_RATE (50000), SECONDS_RUN (10), HOLD (10), NCHAN_PORT (8081),
# CHARTS_DIR (docs/). Load stays on 127.0.0.0/8 and every run is bounded in connections and time;
# the suite takes 10-13 minutes after the build.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# start_kefu, stop_kefu and the raised limits.
source "$root/bench/kefu.sh"
build=${BUILD_DIR:-$root/build}
connect_n=${CONNECT_N:-10000}
chat_n=${CHAT_N:-10000}
low_rates=${LOW_RATES:-1000 5000}
high_rate=${HIGH_RATE:-20000}
cpu_rate=${CPU_RATE:-10000}
sweep_rates=${SWEEP_RATES:-1000 2500 5000 7500 10000 12500 15000 20000 25000 30000 40000}
peak_rate=${PEAK_RATE:-50000}
seconds=${SECONDS_RUN:-10}
loops=${LOOPS:-0}
hold=${HOLD:-10}
nchan_port=${NCHAN_PORT:-8081}
charts=${CHARTS_DIR:-$root/docs}
history_args=(--compare --conversations 100000 --messages 2000000 --seconds 5 --runs 10)
history=1
install=0
nchan=1
keep=0

for arg in "$@"; do
    case "$arg" in
    --install) install=1 ;;
    --no-nchan) nchan=0 ;;
    --quick)
        connect_n=1000 chat_n=500 low_rates=500 high_rate=2000 cpu_rate=1000
        sweep_rates="1000 2000 4000" peak_rate=8000 seconds=3 hold=3
        history_args=(--compare --conversations 20000 --messages 400000 --seconds 2 --runs 5)
        charts=${CHARTS_DIR:-$build/bench-charts}
        ;;
    --keep) keep=1 ;;
    --full-history)
        history_args=(--compare --conversations 1000000 --messages 20000000 --seconds 10 --runs 20)
        ;;
    --no-history) history=0 ;;
    -h | --help)
        sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "run.sh: unknown option $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

out=$(mktemp -d /tmp/kf-bench.XXXXXX)
nchan_pid=""
nchan_dir=""

# Stops what this script started, by PID.
cleanup() {
    stop_kefu
    if [ -n "$nchan_pid" ]; then
        "$root/bench/nchan/run.sh" stop "$nchan_pid" "$nchan_dir" || true
        nchan_pid=""
    fi
    if [ "$keep" = 0 ]; then
        rm -rf "$out"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started_at=$(date +%s)
log() { echo "bench [$(($(date +%s) - started_at)) s]: $*" >&2; }

# ---- build ----

log "building into $build"
cmake -S "$root" -B "$build" -DKF_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target kefu kf_load kf_fsync kf_history_bench >/dev/null
kefu_bin=$build/kefu
load_bin=$build/kf_load
started_at=$(date +%s)

# ---- Nchan ----

have_nchan() {
    command -v nginx >/dev/null 2>&1 && [ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]
}

if [ "$nchan" = 1 ] && ! have_nchan && [ "$install" = 1 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing nginx and libnginx-mod-nchan"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            nginx libnginx-mod-nchan >/dev/null
    else
        log "--install needs root and apt-get; skipping Nchan"
    fi
fi
if [ "$nchan" = 1 ] && ! have_nchan; then
    log "nginx with the Nchan module is not installed (run.sh --install, as root): kefu only"
    nchan=0
fi

# ---- the runs ----

# Runs kf_load; its output goes to $out/NAME.txt and its JSON line to $out/NAME.json.
run_load() {
    local name=$1
    shift
    log "$name: kf_load $*"
    # The machine's load as the run starts: the report shows it beside the run's figures.
    echo "$name $(cut -d' ' -f1 /proc/loadavg)" >>"$out/load.txt"
    if ! "$load_bin" "$@" --label "$name" >"$out/$name.txt" 2>"$out/$name.err"; then
        log "$name: kf_load failed:"
        cat "$out/$name.txt" "$out/$name.err" >&2 || true
    fi
    tail -n 1 "$out/$name.txt" >"$out/$name.json"
}

# One kefu run on a fresh server: NAME SYNC kf_load-arguments... A FULL chat run first times the
# disk's floor (4 KiB write + fdatasync) in that server's data directory: fsync-NAME.json.
kefu_run() {
    local name=$1 sync=$2
    shift 2
    start_kefu "$kefu_bin" "$sync" --loops "$loops" || exit 1
    if [ "$sync" = FULL ] && [[ "$name" == *-chat-* ]]; then
        "$build/kf_fsync" --count 1000 "$kefu_dir" >"$out/fsync-$name.txt" 2>/dev/null || true
        tail -n 1 "$out/fsync-$name.txt" >"$out/fsync-$name.json"
    fi
    run_load "$name" --url "http://127.0.0.1:$kefu_port" --server-pid "$kefu_pid" \
        --agent-email admin@localhost --agent-password "$kefu_password" "$@"
    stop_kefu
}

# One Nchan run on a fresh nginx: NAME kf_load-arguments...
nchan_run() {
    local name=$1 started
    shift
    [ "$nchan" = 1 ] || return 0
    started=$("$root/bench/nchan/run.sh" start "$nchan_port")
    nchan_pid=${started%% *}
    nchan_dir=${started#* }
    run_load "$name" --pubsub --publish-url "http://127.0.0.1:$nchan_port/pub?id={channel}" \
        --subscribe-url "http://127.0.0.1:$nchan_port/sub/{channel}" --server-pid "$nchan_pid" "$@"
    "$root/bench/nchan/run.sh" stop "$nchan_pid" "$nchan_dir"
    nchan_pid=""
}

# The loads: N idle connections held for a while; chat loads at fixed rates. Up to 256 sends in
# flight, one per keep-alive connection, as 256 agents' consoles would send them (a console waits
# for each answer). Both servers get the same load, kefu's run and then Nchan's, so that the
# machine's other work weighs on both alike; kefu answers a connection's pipelined requests one
# after another, each once durable, so pipelining would measure the commit round trip instead.
idle=(--visitors "$connect_n" --connect-only --duration "$hold")
chat=(--visitors "$chat_n" --duration "$seconds" --http-conns 256 --pipeline 1)

load_start=$(cut -d' ' -f1 /proc/loadavg)
log "results in $out"
for transport in ws sse; do
    kefu_run "kefu-connect-$transport" FULL --transport "$transport" "${idle[@]}"
    nchan_run "nchan-connect-$transport" --transport "$transport" "${idle[@]}"
done
for transport in ws sse; do
    for rate in $low_rates $high_rate; do
        kefu_run "kefu-full-chat-$transport-$rate" FULL --transport "$transport" --rate "$rate" \
            "${chat[@]}"
        case " $low_rates " in
        *" $rate "*)
            kefu_run "kefu-normal-chat-$transport-$rate" NORMAL --transport "$transport" \
                --rate "$rate" "${chat[@]}"
            ;;
        esac
        nchan_run "nchan-chat-$transport-$rate" --transport "$transport" --rate "$rate" "${chat[@]}"
    done
done
if [ ! -s "$out/kefu-full-chat-ws-$cpu_rate.json" ]; then
    kefu_run "kefu-full-chat-ws-$cpu_rate" FULL --transport ws --rate "$cpu_rate" "${chat[@]}"
    nchan_run "nchan-chat-ws-$cpu_rate" --transport ws --rate "$cpu_rate" "${chat[@]}"
fi

# The durable peak: rates upwards over ws, each server until two rates in a row miss (p99 under
# 10 ms, nothing lost, the rate sustained: bench_report.js's `durable`); rates measured above are
# reused.
durable() {
    [ -s "$1" ] && node -e 'const r = require(process.argv[1]);
        const lines = require("node:fs").readFileSync(process.argv[2], "utf8").trim().split("\n");
        let run = null; try { run = JSON.parse(lines.pop()); } catch {}
        process.exit(run && r.durable(run) ? 0 : 1)' "$root/bench/bench_report.js" "$1"
}
kefu_misses=0
nchan_misses=$((nchan == 1 ? 0 : 2))
for rate in $sweep_rates; do
    if [ "$kefu_misses" -lt 2 ]; then
        name=kefu-full-chat-ws-$rate
        [ -s "$out/$name.json" ] || kefu_run "$name" FULL --transport ws --rate "$rate" "${chat[@]}"
        if durable "$out/$name.json"; then kefu_misses=0; else kefu_misses=$((kefu_misses + 1)); fi
    fi
    if [ "$nchan_misses" -lt 2 ]; then
        name=nchan-chat-ws-$rate
        [ -s "$out/$name.json" ] || nchan_run "$name" --transport ws --rate "$rate" "${chat[@]}"
        if durable "$out/$name.json"; then nchan_misses=0; else nchan_misses=$((nchan_misses + 1)); fi
    fi
done
kefu_run kefu-peak-ws FULL --transport ws --rate "$peak_rate" "${chat[@]}"
nchan_run nchan-peak-ws --transport ws --rate "$peak_rate" "${chat[@]}"
load_end=$(cut -d' ' -f1 /proc/loadavg)

# ---- history ----

if [ "$history" = 1 ]; then
    log "history: kf_history_bench ${history_args[*]} (its progress follows)"
    if ! "$build/kf_history_bench" "${history_args[@]}" --kefu "$kefu_bin" >"$out/history.md"; then
        log "history: kf_history_bench failed"
        rm -f "$out/history.md"
    fi
fi

# ---- the report ----

join() { local IFS=,; echo "$*"; }
# shellcheck disable=SC2086 # the rate lists split into words on purpose
cat >"$out/config.json" <<JSON
{"date":"$(date -u +%Y-%m-%d)","cores":$(nproc),"cpu":"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1 | tr -cd '[:alnum:] ._()@-')",
 "connectN":$connect_n,"chatN":$chat_n,"seconds":$seconds,"lowRates":[$(join $low_rates)],
 "highRate":$high_rate,"cpuRate":$cpu_rate,"sweepRates":[$(join $sweep_rates)],"peakRate":$peak_rate,
 "loops":$loops,"tookS":$(($(date +%s) - started_at)),"loadStart":$load_start,"loadEnd":$load_end,
 "historyArgs":"$([ "$history" = 1 ] && echo "${history_args[*]}")"}
JSON
echo
node "$root/bench/bench_report.js" --dir "$out" --charts "$charts"
echo
echo "kefu: --loops $loops (0: one loop thread per core, $(nproc) here), a writer thread and a"
echo "checkpointer; FULL: every message committed with"
echo "fdatasync (group commit) before it is acknowledged and pushed. Nchan: nginx with 2 workers,"
echo "in-memory storage. The load generator runs on the same cores as the servers."
if [ "$keep" = 1 ]; then
    echo "every run's full output: $out"
fi
