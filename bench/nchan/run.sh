#!/usr/bin/env bash
# run.sh: starts Nchan (bench/nchan/nginx.conf) in a temporary prefix directory and stops it by PID.
#
#   bench/nchan/run.sh start [PORT]    start on 127.0.0.1:PORT (default 8081); prints "PID DIR"
#   bench/nchan/run.sh stop PID [DIR]  stop that nginx (SIGTERM, then SIGKILL) and remove DIR
#   bench/nchan/run.sh fg [PORT]       run in the foreground until Ctrl-C
#
# Needs Debian's nginx and libnginx-mod-nchan (apt-get install nginx libnginx-mod-nchan).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

need_nginx() {
    if ! command -v nginx >/dev/null 2>&1 ||
        [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        echo "run.sh: needs nginx and its Nchan module:" \
            "apt-get install nginx libnginx-mod-nchan" >&2
        exit 1
    fi
}

# Makes a prefix directory with the configuration, listening on port $1.
make_prefix() {
    local port=$1 dir
    dir=$(mktemp -d /tmp/kf-nchan.XXXXXX)
    mkdir -p "$dir/tmp"
    # Workers may run as an unprivileged user: let them use the temporary directories.
    chmod 755 "$dir"
    chmod 777 "$dir/tmp"
    sed "s/127\.0\.0\.1:8081/127.0.0.1:$port/" "$here/nginx.conf" >"$dir/nginx.conf"
    echo "$dir"
}

# Waits until something accepts connections on 127.0.0.1:$1 (at most 10 s).
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

case "${1:-}" in
start)
    need_nginx
    port=${2:-8081}
    dir=$(make_prefix "$port")
    nginx -p "$dir/" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 </dev/null &
    pid=$!
    if ! wait_port "$port" || ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: nginx did not start; its log:" >&2
        cat "$dir/stdout.log" "$dir/error.log" >&2 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    echo "$pid $dir"
    ;;
stop)
    pid=${2:?usage: run.sh stop PID [DIR]}
    dir=${3:-}
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    case "$dir" in
    /tmp/kf-nchan.*) rm -rf "$dir" ;;
    esac
    ;;
fg)
    need_nginx
    port=${2:-8081}
    dir=$(make_prefix "$port")
    echo "run.sh: Nchan on 127.0.0.1:$port, prefix $dir; Ctrl-C stops it" >&2
    trap 'rm -rf "$dir"' EXIT
    nginx -p "$dir/" -c "$dir/nginx.conf" -g 'daemon off;'
    ;;
*)
    sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
