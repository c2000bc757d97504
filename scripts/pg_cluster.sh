#!/usr/bin/env bash
# pg_cluster.sh: a throw-away PostgreSQL cluster for the tests (tests/unit/store/test_postgres.c,
# and an e2e run with KEFU_STORE), on a free loopback port, in a directory of its own.
#   pg_cluster.sh start DIR   - initdb (once) and start; writes DIR/conninfo (libpq key=value)
#   pg_cluster.sh stop DIR    - stop it (the data stays until DIR is removed)
#   pg_cluster.sh restart DIR - stop and start again on the same port
#   pg_cluster.sh remove DIR  - stop it and delete its files and DIR
# PostgreSQL refuses to run as root: as root the server runs as the postgres user, and its files
# (data, socket, log) go to /tmp/kefu-pg-<hash of DIR>, which that user owns: DIR may be below a
# directory only root may enter (a clone in /root, or in a mktemp -d directory). Authentication
# is trust, on 127.0.0.1 and that directory's socket only: nothing here is kept.
set -euo pipefail
cmd=${1:?usage: pg_cluster.sh start|stop|restart|remove DIR}
dir=${2:?usage: pg_cluster.sh start|stop|restart|remove DIR}
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bin/pg_ctl" ] || { echo "pg_cluster: no PostgreSQL server binaries (scripts/deps.sh test)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then (cd "$pg" && runuser -u postgres -- "$@"); else "$@"; fi
}
pg=$dir
if [ "$(id -u)" -eq 0 ]; then
  pg=/tmp/kefu-pg-$(printf %s "$dir" | sha256sum | cut -c1-16)
  mkdir -p "$pg"
  chown postgres: "$pg"
  chmod 700 "$pg"
fi

# A port below the kernel's ephemeral range (ip_local_port_range, 32768 by default), which no
# client's connection takes as its own end: a port there may be free now and bound by a load
# test's client a moment later, and PostgreSQL then cannot listen (a CI run failed so).
free_port() {
  local port low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 21024 ] || low=32768
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % (low - 20000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

start() {
  if [ ! -f "$pg/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$pg/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  local port
  if [ -f "$dir/port" ]; then port=$(cat "$dir/port"); else port=$(free_port); echo "$port" >"$dir/port"; fi
  # Already running (a run before this one did not stop it): take it as it is.
  if as_owner "$bin/pg_ctl" -D "$pg/data" status >/dev/null 2>&1; then
    echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/conninfo"
    echo "pg_cluster: already running on 127.0.0.1:$port ($dir)"
    return 0
  fi
  # fsync stays on: the store's durability is what the tests check. max_connections: every
  # store the tests open holds a reader's and a writer's connection.
  as_owner "$bin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
    -o "-p $port -k $pg -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300" start >/dev/null
  echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/conninfo"
  echo "pg_cluster: running on 127.0.0.1:$port ($dir)"
}

stop() {
  if [ -f "$pg/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  remove) stop; rm -rf "$pg" "$dir" ;;
  *) echo "usage: pg_cluster.sh start|stop|restart|remove DIR" >&2; exit 2 ;;
esac
