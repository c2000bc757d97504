#!/usr/bin/env bash
# nodes.sh: many kefu nodes on this machine (issue 16): NODES nodes on their own loopback ports,
# one shared store (the SQLite data directory, or --store when KEFU_STORE is set) and one
# throw-away Redis between them, hold CONNECTIONS push connections together, and carry messages
# posted on one node to subscribers on another at each rate of RATES. One kf_load per node: it
# makes its visitors and posts its messages on the next node (--url) and opens its push
# connections on its own node (--push-url), so every delivery crosses Redis.
#
#   bench/nodes.sh [--quick] [--keep]
#
#   --quick     3 nodes, 3,000 connections, 300 and 1,000 msg/s, 5-second runs: a smoke test
#   --keep      keep the directory with every run's output (printed at the end)
#
# Environment: BUILD_DIR (default ./build), NODES (6), CONNECTIONS (100000), RATES ("1000 5000"),
# SECONDS_RUN (20), TRANSPORT (ws), SYNC (NORMAL), KEFU_STORE (unset: the shared data directory).
# Each node holds CONNECTIONS / NODES (at most 19,000: a process here may hold 20,000 open files),
# each kf_load as many. Load stays on 127.0.0.0/8; every run is bounded in connections and time,
# and only the processes this script started are stopped, by PID.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# kefu_limits: the abuse limits raised far above the load.
source "$root/bench/kefu.sh"
build=${BUILD_DIR:-$root/build}
nodes=${NODES:-6}
connections=${CONNECTIONS:-100000}
rates=${RATES:-1000 5000}
seconds=${SECONDS_RUN:-20}
transport=${TRANSPORT:-ws}
sync=${SYNC:-NORMAL}
keep=0

for arg in "$@"; do
    case "$arg" in
    --quick) nodes=3 connections=3000 rates="300 1000" seconds=5 ;;
    --keep) keep=1 ;;
    -h | --help)
        sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "nodes.sh: unknown option $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

per_node=$((connections / nodes))
if [ "$nodes" -lt 2 ] || [ "$per_node" -lt 1 ] || [ "$per_node" -gt 19000 ]; then
    echo "nodes.sh: NODES >= 2 and CONNECTIONS / NODES in 1..19000 (got $nodes, $per_node)" >&2
    exit 2
fi
if [ "$seconds" -gt 120 ]; then
    echo "nodes.sh: SECONDS_RUN is at most 120" >&2
    exit 2
fi
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((per_node + 512)) ]; then
    echo "nodes.sh: $per_node connections per node need $((per_node + 512)) open files; the limit is $(ulimit -n)" >&2
    exit 2
fi

out=$(mktemp -d /tmp/kf-nodes.XXXXXX)
data=$out/data
mkdir -p "$data"
redis_pid=""
node_pids=()
node_ports=()
load_pids=()
sampler_pid=""

log() { echo "nodes: $*" >&2; }

# Stops what this script started, by PID: the loads, the sampler, the nodes, Redis.
cleanup() {
    local pid
    for pid in "${load_pids[@]}" $sampler_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    stop_nodes
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    if [ "$keep" = 0 ]; then
        rm -rf "$out"
    else
        log "output kept in $out"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load_bin=$build/kf_load
kefu_bin=$build/kefu
for bin in "$kefu_bin" "$load_bin"; do
    [ -x "$bin" ] || {
        echo "nodes.sh: $bin is missing: cmake --build $build --target kefu kf_load" >&2
        exit 2
    }
done
command -v redis-server >/dev/null || {
    echo "nodes.sh: redis-server is missing (apt-get install redis-server)" >&2
    exit 2
}

# ---- Redis: a free loopback port, nothing saved ----

for _ in $(seq 20); do
    redis_port=$((20000 + RANDOM % 30000))
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        >"$out/redis.log" 2>&1 </dev/null &
    redis_pid=$!
    for _ in $(seq 50); do
        grep -q 'Ready to accept connections' "$out/redis.log" && break
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'Ready to accept connections' "$out/redis.log" && break
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
done
[ -n "$redis_pid" ] || {
    log "redis-server did not start:"
    cat "$out/redis.log" >&2
    exit 1
}
log "redis on 127.0.0.1:$redis_port (pid $redis_pid)"

# ---- the nodes: the first start makes the store (and prints the admin password) ----

store=()
if [ -n "${KEFU_STORE:-}" ]; then
    store=(--store "$KEFU_STORE")
fi
password=""
runs=0

# start_nodes: NODES fresh processes on the shared store, each on a port of its own, all ready
# (so that every run's memory figures start from the same place).
start_nodes() {
    local i nlog port url
    runs=$((runs + 1))
    node_pids=()
    node_ports=()
    for i in $(seq "$nodes"); do
        nlog=$out/node$i.run$runs.log
        "$kefu_bin" --listen 127.0.0.1:0 --data "$data" "${store[@]}" --synchronous "$sync" \
            --log-level warn --bus "redis://127.0.0.1:$redis_port" "${kefu_limits[@]}" \
            >"$nlog" 2>&1 </dev/null &
        node_pids+=($!)
        port=""
        for _ in $(seq 200); do
            port=$(sed -n 's|.*agent console: http://127\.0\.0\.1:\([0-9]*\)/agent.*|\1|p' "$nlog" 2>/dev/null || true)
            [ -n "$port" ] && break
            sleep 0.1
        done
        [ -n "$port" ] || {
            log "node $i did not start:"
            cat "$nlog" >&2
            exit 1
        }
        node_ports+=("$port")
        if [ -z "$password" ]; then
            password=$(sed -n 's/.*password: *//p' "$nlog" || true)
        fi
    done
    [ -n "$password" ] || {
        log "the first node printed no admin password:"
        cat "$out/node1.run1.log" >&2
        exit 1
    }
    for i in $(seq "$nodes"); do
        url=http://127.0.0.1:${node_ports[$((i - 1))]}
        for _ in $(seq 100); do
            [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && break
            sleep 0.1
        done
        log "node $i: $url (pid ${node_pids[$((i - 1))]})"
    done
}

# stop_nodes: SIGTERM to each node this script started (SIGKILL after 15 s).
stop_nodes() {
    local pid
    for pid in "${node_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${node_pids[@]}"; do
        for _ in $(seq 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    node_pids=()
}

# ---- sampling: the nodes' RSS and push connections, every second ----

# rss_kb: VmRSS of every node, summed.
rss_kb() {
    local pid sum=0 v
    for pid in "${node_pids[@]}"; do
        v=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# push_connections: open push connections of every node, from /metrics, summed.
push_connections() {
    local port sum=0 v
    for port in "${node_ports[@]}"; do
        v=$(curl -s --max-time 2 "http://127.0.0.1:$port/metrics" |
            awk '/^kefu_push_connections[{ ]/ { s += $NF } END { printf "%d", s }')
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# sampler FILE: "seconds rss_kb connections" lines until stopped.
sampler() {
    local t0
    t0=$(date +%s)
    while :; do
        echo "$(($(date +%s) - t0)) $(rss_kb) $(push_connections)" >>"$1"
        sleep 1
    done
}

# ---- the runs ----

# field FILE KEY: a value from a kf_load JSON line.
field() {
    sed -n 's/.*"'"$2"'":\("[^"]*"\|[^,}]*\).*/\1/p' "$1" | tr -d '"'
}

results=()
started_at=$(date +%s)
for rate in $rates; do
    name=rate$rate
    start_nodes
    rss_before=$(rss_kb)
    : >"$out/$name.samples"
    sampler "$out/$name.samples" &
    sampler_pid=$!
    load_pids=()
    # kf_load i: visitors made and messages posted on node i+1, push connections on node i.
    for i in $(seq "$nodes"); do
        own=${node_ports[$((i - 1))]}
        post=${node_ports[$((i % nodes))]}
        node_rate=$(awk -v r="$rate" -v n="$nodes" 'BEGIN { printf "%.3f", r / n }')
        "$load_bin" --url "http://127.0.0.1:$post" --push-url "http://127.0.0.1:$own" \
            --transport "$transport" --visitors "$per_node" --rate "$node_rate" \
            --duration "$seconds" --agent-email admin@localhost --agent-password "$password" \
            --server-pid "${node_pids[$((i - 1))]}" --http-conns 32 --pipeline 1 \
            --connect-timeout 300 --label "$name-node$i" \
            >"$out/$name-node$i.txt" 2>"$out/$name-node$i.err" </dev/null &
        load_pids+=($!)
    done
    log "$rate msg/s: $nodes kf_load of $per_node $transport connections each, ${seconds} s"
    failed=0
    for pid in "${load_pids[@]}"; do
        wait "$pid" || failed=$((failed + 1))
    done
    load_pids=()
    kill -TERM "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    [ "$failed" = 0 ] || log "$rate msg/s: $failed kf_load runs failed (see $out/$name-node*.txt)"
    stop_nodes

    # The run's figures: deliveries pooled over the loads' percentiles (each load's p50/p99
    # weighted by its receptions), memory from the sampled peak.
    for i in $(seq "$nodes"); do tail -n 1 "$out/$name-node$i.txt" >"$out/$name-node$i.json"; done
    peak_line=$(sort -k3,3n "$out/$name.samples" | tail -n 1)
    peak_conns=$(echo "$peak_line" | awk '{ print $3 }')
    peak_rss=$(echo "$peak_line" | awk '{ print $2 }')
    summary=$(for i in $(seq "$nodes"); do
        f=$out/$name-node$i.json
        echo "$(field "$f" established) $(field "$f" acked) $(field "$f" received) \
$(field "$f" lost) $(field "$f" duplicates) $(field "$f" lat_p50_ms) $(field "$f" lat_p99_ms) \
$(field "$f" lat_max_ms) $(field "$f" server_bytes_per_conn) $(field "$f" rate_achieved)"
    done | awk -v peak="$peak_conns" -v rss0="$rss_before" -v rss1="$peak_rss" '
        { est += $1; acked += $2; recv += $3; lost += $4; dup += $5;
          p50 += $6 * $3; p99 += $7 * $3; if ($8 > max) max = $8; bpc += $9 * $1; ach += $10 }
        END {
          printf "established %d, peak held at once %d; rate %.0f msg/s; acked %d, received %d, lost %d, duplicates %d; ",
            est, peak, ach, acked, recv, lost, dup
          printf "latency p50 %.2f ms, p99 %.2f ms (the loads'\'' percentiles weighted by receptions), max %.1f ms; ",
            recv ? p50 / recv : 0, recv ? p99 / recv : 0, max
          printf "memory per connection %.0f B (kf_load, per node: RSS after connecting - before), ",
            est ? bpc / est : 0
          printf "%.0f B (all nodes'\'' RSS at the peak - before the run, / peak connections)\n",
            peak ? (rss1 - rss0) * 1024 / peak : 0 }')
    results+=("$rate msg/s: $summary")
    log "$rate msg/s: $summary"
done

echo
echo "kefu, $nodes nodes on one machine over Redis, $(date -u +%Y-%m-%d), $(nproc) cores, $transport," \
    "$connections connections, --synchronous $sync, runs of ${seconds} s, $(($(date +%s) - started_at)) s in all"
for r in "${results[@]}"; do echo "  $r"; done
echo "  per node and run:"
for f in "$out"/*-node*.json; do
    echo "    $(basename "$f" .json): established $(field "$f" established), acked $(field "$f" acked)," \
        "lost $(field "$f" lost), dup $(field "$f" duplicates), p50 $(field "$f" lat_p50_ms) ms," \
        "p99 $(field "$f" lat_p99_ms) ms, $(field "$f" server_bytes_per_conn) B/conn," \
        "connect $(field "$f" connect_s) s, server CPU $(field "$f" server_cpu_pct) %"
done
