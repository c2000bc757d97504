# shellcheck shell=bash disable=SC2034 # the variables are the callers'
# kefu.sh: starting and stopping kefu for the load scripts (run.sh, soak.sh), which source it.
# A fresh data directory and a free loopback port for each start, the abuse limits raised far
# above the load, the admin password it prints; stopped by PID, its exit status kept.
#
#   start_kefu BIN SYNC [FLAGS...]  sets kefu_pid, kefu_port, kefu_password, kefu_dir, kefu_log
#   stop_kefu                       SIGTERM (SIGKILL after 15 s); sets kefu_status; removes the dir
#
# The callers' `log` function says what goes wrong.

kefu_pid=""
kefu_dir=""
kefu_log=""
kefu_port=""
kefu_password=""
kefu_status=""

# The abuse limits (docs/SECURITY.md) raised far above the load: the load tools open up to 19,000
# connections over 100 loopback addresses (190 each, near the default 256 per address), reconnect
# faster than people do, and send each visitor's messages faster than a person (the default is
# 30 a minute). High values rather than 0, so that the limits' bookkeeping is measured too.
kefu_limits=(--max-connections-per-address 20000 --max-push-per-visitor 1000
    --max-push-per-agent 1000
    --visitor-requests-per-minute 1000000 --visitor-request-burst 100000
    --visitor-messages-per-minute 1000000 --visitor-message-burst 100000
    --visitor-sessions-per-minute 1000000 --visitor-session-burst 100000)

start_kefu() {
    local bin=$1 sync=$2
    shift 2
    kefu_dir=$(mktemp -d /tmp/kf-bench-data.XXXXXX)
    kefu_log=$kefu_dir/kefu.log
    "$bin" --listen 127.0.0.1:0 --data "$kefu_dir" --synchronous "$sync" --log-level warn \
        "${kefu_limits[@]}" "$@" >"$kefu_log" 2>&1 </dev/null &
    kefu_pid=$!
    for _ in $(seq 100); do
        if grep -q 'agent console:' "$kefu_log" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    kefu_port=$(sed -n 's|.*agent console: http://127\.0\.0\.1:\([0-9]*\)/agent.*|\1|p' "$kefu_log")
    kefu_password=$(sed -n 's/.*password: *//p' "$kefu_log")
    if [ -z "$kefu_port" ] || [ -z "$kefu_password" ]; then
        log "kefu did not start:"
        cat "$kefu_log" >&2
        return 1
    fi
}

stop_kefu() {
    kefu_status=""
    if [ -n "$kefu_pid" ]; then
        kill -TERM "$kefu_pid" 2>/dev/null || true
        for _ in $(seq 150); do
            kill -0 "$kefu_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$kefu_pid" 2>/dev/null || true
        kefu_status=0
        wait "$kefu_pid" 2>/dev/null || kefu_status=$?
        kefu_pid=""
    fi
    case "$kefu_dir" in
    /tmp/kf-bench-data.*) rm -rf "$kefu_dir" ;;
    esac
    kefu_dir=""
}
