#!/usr/bin/env bash
# run.sh: the short standard benchmark (`make bench`): builds kefu and kf_load, measures kefu's
# idle connections and chat load over WebSocket and SSE, the same against Nchan when nginx with
# the Nchan module is installed, and prints one table with both side by side.
#
#   bench/run.sh [--install] [--no-nchan] [--quick] [--keep]
#
#   --install   install nginx and libnginx-mod-nchan when missing (needs root and apt)
#   --no-nchan  measure kefu only
#   --quick     a smoke test: 1,000 connections, 500 visitors, 3-second runs
#   --keep      keep the directory with every run's full output (printed at the end)
#
# Environment: BUILD_DIR (default ./build), CONNECT_N (10000), CHAT_N (10000), RATES
# ("1000 5000 20000"), PEAK_RATE (50000), SECONDS_RUN (10), HOLD (10), NCHAN_PORT (8081). Load
# stays on 127.0.0.0/8 and every run is bounded in connections and time; the suite takes about 8
# minutes after the build.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# start_kefu, stop_kefu and the raised limits.
source "$root/bench/kefu.sh"
build=${BUILD_DIR:-$root/build}
connect_n=${CONNECT_N:-10000}
chat_n=${CHAT_N:-10000}
rates=${RATES:-1000 5000 20000}
peak_rate=${PEAK_RATE:-50000}
seconds=${SECONDS_RUN:-10}
hold=${HOLD:-10}
nchan_port=${NCHAN_PORT:-8081}
install=0
nchan=1
keep=0

for arg in "$@"; do
    case "$arg" in
    --install) install=1 ;;
    --no-nchan) nchan=0 ;;
    --quick) connect_n=1000 chat_n=500 rates=500 peak_rate=5000 seconds=3 hold=3 ;;
    --keep) keep=1 ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
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

log() { echo "bench: $*" >&2; }

# ---- build ----

log "building into $build"
cmake -S "$root" -B "$build" -DKF_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target kefu kf_load >/dev/null
kefu_bin=$build/kefu
load_bin=$build/kf_load

# ---- kefu ----

# Runs kf_load; its output goes to $out/NAME.txt and its JSON line to $out/NAME.json.
run_load() {
    local name=$1
    shift
    log "$name: kf_load $*"
    if ! "$load_bin" "$@" --label "$name" >"$out/$name.txt" 2>"$out/$name.err"; then
        log "$name: kf_load failed:"
        cat "$out/$name.txt" "$out/$name.err" >&2 || true
    fi
    tail -n 1 "$out/$name.txt" >"$out/$name.json"
}

# One kefu run on a fresh server: NAME SYNC kf_load-arguments...
kefu_run() {
    local name=$1 sync=$2
    shift 2
    start_kefu "$kefu_bin" "$sync" || exit 1
    run_load "$name" --url "http://127.0.0.1:$kefu_port" --server-pid "$kefu_pid" \
        --agent-email admin@localhost --agent-password "$kefu_password" "$@"
    stop_kefu
}

# The loads: N idle connections held for a while; chat loads at fixed rates; one far above what
# either server sustains (the peak: the rate achieved). Up to 256 sends in flight, one per
# keep-alive connection, as 256 agents' consoles would send them (a console waits for each
# answer). Both servers get the same load; kefu answers a connection's pipelined requests one
# after another, each once durable, so pipelining would measure the commit round trip instead.
idle=(--visitors "$connect_n" --connect-only --duration "$hold")
chat=(--visitors "$chat_n" --duration "$seconds" --http-conns 256 --pipeline 1)

started_at=$(date +%s)
log "results in $out"
kefu_run kefu-connect-ws FULL --transport ws "${idle[@]}"
kefu_run kefu-connect-sse FULL --transport sse "${idle[@]}"
for transport in ws sse; do
    for rate in $rates; do
        kefu_run "kefu-chat-$transport-$rate" FULL --transport "$transport" --rate "$rate" "${chat[@]}"
    done
done
kefu_run kefu-peak-ws FULL --transport ws --rate "$peak_rate" "${chat[@]}"

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

# One Nchan run on a fresh nginx: NAME kf_load-arguments...
nchan_run() {
    local name=$1 started
    shift
    started=$("$root/bench/nchan/run.sh" start "$nchan_port")
    nchan_pid=${started%% *}
    nchan_dir=${started#* }
    run_load "$name" --pubsub --publish-url "http://127.0.0.1:$nchan_port/pub?id={channel}" \
        --subscribe-url "http://127.0.0.1:$nchan_port/sub/{channel}" --server-pid "$nchan_pid" "$@"
    "$root/bench/nchan/run.sh" stop "$nchan_pid" "$nchan_dir"
    nchan_pid=""
}

if [ "$nchan" = 1 ] && have_nchan; then
    nchan_run nchan-connect-ws --transport ws "${idle[@]}"
    nchan_run nchan-connect-sse --transport sse "${idle[@]}"
    for transport in ws sse; do
        for rate in $rates; do
            nchan_run "nchan-chat-$transport-$rate" --transport "$transport" --rate "$rate" "${chat[@]}"
        done
    done
    nchan_run nchan-peak-ws --transport ws --rate "$peak_rate" "${chat[@]}"
elif [ "$nchan" = 1 ]; then
    log "nginx with the Nchan module is not installed (run.sh --install, as root): kefu only"
fi

# ---- the table ----

# field FILE KEY: a value from a run's JSON line ("-" when missing or null).
field() {
    local value=""
    if [ -s "$1" ]; then
        value=$(sed -n 's/.*"'"$2"'":\("[^"]*"\|[^,}]*\).*/\1/p' "$1" | tr -d '"')
    fi
    if [ -z "$value" ] || [ "$value" = null ]; then
        value=-
    fi
    echo "$value"
}

# row TEST METRIC KEY KEFU_RUN NCHAN_RUN: one line of the table, with kefu/Nchan when both exist.
row() {
    local test=$1 metric=$2 key=$3 k n ratio=-
    k=$(field "$out/$4.json" "$key")
    n=-
    if [ -n "$5" ]; then
        n=$(field "$out/$5.json" "$key")
    fi
    if [ "$k" != - ] && [ "$n" != - ]; then
        ratio=$(awk -v a="$k" -v b="$n" \
            'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }')
    fi
    printf '%-28s %-26s %14s %14s %12s\n' "$test" "$metric" "$k" "$n" "$ratio"
}

nchan_name() { if [ -s "$out/$1.json" ]; then echo "$1"; fi; }

echo
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
took=$(($(date +%s) - started_at))
echo "kefu vs Nchan, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), suite ${took} s"
printf '%-28s %-26s %14s %14s %12s\n' test metric kefu Nchan kefu/Nchan
for transport in ws sse; do
    c=connect-$transport
    k=kefu-$c
    n=$(nchan_name nchan-$c)
    row "idle $connect_n $transport" "established" established "$k" "$n"
    row "" "connect time s" connect_s "$k" "$n"
    row "" "server CPU s to connect" server_connect_cpu_s "$k" "$n"
    row "" "server bytes/connection" server_bytes_per_conn "$k" "$n"
    row "" "server RSS connected KiB" server_rss_connected_kb "$k" "$n"
    row "" "idle server CPU %" server_cpu_pct "$k" "$n"
done
for transport in ws sse; do
    for rate in $rates; do
        c=chat-$transport-$rate
        k=kefu-$c
        n=$(nchan_name nchan-$c)
        row "chat $chat_n $transport ${rate}/s" "achieved msg/s" rate_achieved "$k" "$n"
        row "" "lost" lost "$k" "$n"
        row "" "duplicates" duplicates "$k" "$n"
        row "" "latency p50 ms" lat_p50_ms "$k" "$n"
        row "" "latency p99 ms" lat_p99_ms "$k" "$n"
        row "" "latency p99.9 ms" lat_p999_ms "$k" "$n"
        row "" "latency max ms" lat_max_ms "$k" "$n"
        row "" "server CPU %" server_cpu_pct "$k" "$n"
        row "" "kf_load CPU %" self_cpu_pct "$k" "$n"
    done
done
k=kefu-peak-ws
n=$(nchan_name nchan-peak-ws)
row "peak ws (${peak_rate}/s asked)" "achieved msg/s" rate_achieved "$k" "$n"
row "" "lost" lost "$k" "$n"
row "" "latency p50 ms" lat_p50_ms "$k" "$n"
row "" "latency p99 ms" lat_p99_ms "$k" "$n"
row "" "server CPU %" server_cpu_pct "$k" "$n"
row "" "kf_load CPU %" self_cpu_pct "$k" "$n"
echo
echo "kefu: one loop thread and a writer thread, --synchronous FULL (every message committed with"
echo "fsync, group commit, before it is acknowledged and pushed). Nchan: nginx with 2 workers,"
echo "in-memory storage."
if [ "$keep" = 1 ]; then
    echo "every run's full output: $out"
fi
