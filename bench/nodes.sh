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
# Environment: BUILD_DIR (default ./build), NODES (6), CONNECTIONS (100000), MEASURED (10000),
# RATES ("1000 5000"), SECONDS_RUN (20), TRANSPORT (ws), SYNC (NORMAL), WRITERS (one: every
# message is posted on node 1 and received on the others; all: each node takes its share of the
# posts, and with SQLite the nodes' writers queue for the file's one write lock), KEFU_STORE
# (unset: the shared data directory). CONNECTIONS - MEASURED are opened first and held idle (one
# kf_load per node); then each rate runs on MEASURED more (one kf_load per receiving node), so
# that the figures are taken with all CONNECTIONS held. Each node holds about CONNECTIONS / NODES
# (at most 19,000: a process here may hold 20,000 open files). Load stays on 127.0.0.0/8; every
# run is bounded in connections and time, and only the processes this script started are
# stopped, by PID.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# kefu_limits: the abuse limits raised far above the load.
source "$root/bench/kefu.sh"
build=${BUILD_DIR:-$root/build}
nodes=${NODES:-6}
connections=${CONNECTIONS:-100000}
measured=${MEASURED:-10000}
rates=${RATES:-1000 5000}
seconds=${SECONDS_RUN:-20}
transport=${TRANSPORT:-ws}
sync=${SYNC:-NORMAL}
writers=${WRITERS:-one}
keep=0

for arg in "$@"; do
    case "$arg" in
    --quick) nodes=3 connections=3000 measured=600 rates="300 1000" seconds=5 ;;
    --keep) keep=1 ;;
    -h | --help)
        sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "nodes.sh: unknown option $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

per_node=$((connections / nodes))
hold_per=$(((connections - measured) / nodes))
hold_total=$((hold_per * nodes))
if [ "$nodes" -lt 2 ] || [ "$per_node" -gt 19000 ] || [ "$measured" -lt "$nodes" ] || [ "$hold_per" -lt 1 ]; then
    echo "nodes.sh: NODES >= 2, CONNECTIONS / NODES at most 19000, MEASURED / NODES and" \
        "(CONNECTIONS - MEASURED) / NODES at least 1 (got $nodes, $connections, $measured)" >&2
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
hold_pids=()
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

# start_nodes: NODES processes on the shared store, each on a port of its own, all ready.
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

# percentiles FILE...: nearest-rank p50, p99 and max (ms) of the pooled latency samples (us).
percentiles() {
    cat "$@" 2>/dev/null | sort -n | awk '{ v[NR] = $1 }
        function rank(p) { r = int(p * NR + 0.999999); if (r < 1) r = 1; return v[r] / 1000 }
        END { if (NR == 0) print "- - - 0"; else printf "%.2f %.2f %.1f %d\n", rank(0.5), rank(0.99), v[NR] / 1000, NR }'
}

started_at=$(date +%s)
start_nodes
: >"$out/samples"
sampler "$out/samples" &
sampler_pid=$!

# The held connections: one connect-only kf_load per node (sessions made on the next node),
# idle until stopped. Memory per connection from the nodes' RSS before and once all are held.
rss_before=$(rss_kb)
hold_pids=()
for i in $(seq "$nodes"); do
    own=${node_ports[$((i - 1))]}
    next=${node_ports[$((i % nodes))]}
    "$load_bin" --url "http://127.0.0.1:$next" --push-url "http://127.0.0.1:$own" \
        --transport "$transport" --visitors "$hold_per" --connect-only --duration 600 \
        --connect-timeout 300 --server-pid "${node_pids[$((i - 1))]}" --label "hold-node$i" \
        >"$out/hold-node$i.txt" 2>"$out/hold-node$i.err" </dev/null &
    hold_pids+=($!)
done
load_pids=("${hold_pids[@]}")
log "holding $hold_total $transport connections: $nodes kf_load of $hold_per"
held=0
for _ in $(seq 400); do
    held=$(push_connections)
    [ "$held" -ge "$hold_total" ] && break
    alive=0
    for pid in "${hold_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" = "$nodes" ] || break
    sleep 1
done
sleep 2
held=$(push_connections)
rss_held=$(rss_kb)
hold_s=$(($(date +%s) - started_at))
per_conn=$(awk -v a="$rss_before" -v b="$rss_held" -v n="$held" \
    'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1024 / n; else print "-" }')
log "$held connections held after ${hold_s} s; all nodes' RSS $((rss_before / 1024)) MiB -> $((rss_held / 1024)) MiB: $per_conn B per connection"
[ "$held" -ge "$hold_total" ] || log "WARNING: only $held of $hold_total connections held"

# The measured runs, one rate at a time, on top of the held connections, one kf_load per node
# that holds measured connections: WRITERS=one, the visitors made and messages posted on node 1,
# push connections on the others; WRITERS=all, on the next node, push connections on its own.
if [ "$writers" = one ]; then
    measure_nodes=$(seq 2 "$nodes")
else
    measure_nodes=$(seq "$nodes")
fi
measure_count=$(echo "$measure_nodes" | wc -w)
measure_per=$((measured / measure_count))
results=()
for rate in $rates; do
    name=rate$rate
    first_sample=$(wc -l <"$out/samples")
    measure_pids=()
    for i in $measure_nodes; do
        own=${node_ports[$((i - 1))]}
        post=${node_ports[0]}
        [ "$writers" = one ] || post=${node_ports[$((i % nodes))]}
        node_rate=$(awk -v r="$rate" -v n="$measure_count" 'BEGIN { printf "%.3f", r / n }')
        "$load_bin" --url "http://127.0.0.1:$post" --push-url "http://127.0.0.1:$own" \
            --transport "$transport" --visitors "$measure_per" --rate "$node_rate" \
            --duration "$seconds" --agent-email admin@localhost --agent-password "$password" \
            --server-pid "${node_pids[$((i - 1))]}" --http-conns 32 --pipeline 1 \
            --latencies "$out/$name-node$i.lat" --label "$name-node$i" \
            >"$out/$name-node$i.txt" 2>"$out/$name-node$i.err" </dev/null &
        measure_pids+=($!)
    done
    load_pids=("${hold_pids[@]}" "${measure_pids[@]}")
    log "$rate msg/s: $measure_count kf_load of $measure_per $transport connections each, ${seconds} s (writers: $writers)"
    failed=0
    for pid in "${measure_pids[@]}"; do
        wait "$pid" || failed=$((failed + 1))
    done
    load_pids=("${hold_pids[@]}")
    [ "$failed" = 0 ] || log "$rate msg/s: $failed kf_load runs failed (see $out/$name-node*.txt)"
    for i in $measure_nodes; do tail -n 1 "$out/$name-node$i.txt" >"$out/$name-node$i.json"; done
    # The most connections held at once while it ran (the held ones and its own).
    run_held=$(tail -n +"$((first_sample + 1))" "$out/samples" |
        awk '$3 > m { m = $3 } END { printf "%d", m }')
    read -r p50 p99 pmax count < <(percentiles "$out/$name"-node*.lat)
    read -r a50 a99 _ _ < <(percentiles "$out/$name"-node*.lat.ack)
    totals=$(for i in $measure_nodes; do
        f=$out/$name-node$i.json
        echo "$(field "$f" acked) $(field "$f" received) $(field "$f" lost) $(field "$f" duplicates) $(field "$f" rate_achieved)"
    done | awk '{ a += $1; r += $2; l += $3; d += $4; x += $5 } END { printf "%d %d %d %d %.0f", a, r, l, d, x }')
    read -r acked received lost dups achieved <<<"$totals"
    # The machine's load average over the last minute, the run's: it is shared.
    loadavg=$(cut -d' ' -f1 /proc/loadavg)
    results+=("$(printf '%-7s %8s %8s %8s %5s %5s %8s %8s %8s %8s %8s %10s %6s' "$rate" "$achieved" \
        "$acked" "$received" "$lost" "$dups" "$p50" "$p99" "$pmax" "$a50" "$a99" "$run_held" \
        "$loadavg")")
    log "$rate msg/s: achieved $achieved, acked $acked, received $received, lost $lost, duplicates $dups; delivery p50 $p50 ms, p99 $p99 ms, max $pmax ms over $count deliveries (send to 2xx: p50 $a50, p99 $a99); up to $run_held connections held"
done

# The held loads end (SIGINT: they report and close), then the nodes.
for pid in "${hold_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
for pid in "${hold_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
load_pids=()
kill -TERM "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
for i in $(seq "$nodes"); do tail -n 1 "$out/hold-node$i.txt" >"$out/hold-node$i.json"; done
peak=$(awk '$3 > m { m = $3 } END { printf "%d", m }' "$out/samples")

echo
echo "kefu: $nodes nodes on one machine, one store, one Redis ($(date -u +%Y-%m-%d), $(nproc) cores," \
    "$transport, --synchronous $sync, $(($(date +%s) - started_at)) s in all; the machine is shared)"
echo "  held: $held push connections ($hold_total idle + the runs' own; peak $peak), after ${hold_s} s"
echo "  memory: all nodes' RSS $((rss_before / 1024)) MiB before, $((rss_held / 1024)) MiB held: $per_conn B per connection"
echo "  per node (kf_load, RSS after connecting - before / connections):"
for i in $(seq "$nodes"); do
    f=$out/hold-node$i.json
    echo "    node $i: $(field "$f" established) held, $(field "$f" server_bytes_per_conn) B per connection," \
        "connected in $(field "$f" connect_s) s"
done
echo "  node-to-node delivery, writers: $writers (posted on one node, received on another; send to"
echo "  reception, and send to 2xx (the store's commit); percentiles pooled over the loads):"
printf '  %-7s %8s %8s %8s %5s %5s %8s %8s %8s %8s %8s %10s %6s\n' 'msg/s' achieved acked received \
    lost dup 'p50 ms' 'p99 ms' 'max ms' 'ack p50' 'ack p99' 'held (max)' load
for r in "${results[@]}"; do echo "  $r"; done
