#!/usr/bin/env bash
# deps.sh: installs what kefu needs on Debian 12, only what is missing.
#   deps.sh build   - compiler, CMake and the libraries the server links against
#   deps.sh test    - also cmocka, clang (fuzzing, sanitizers), Chromium, gcovr, Node.js packages
set -euo pipefail
mode=${1:-build}
pkgs=(build-essential cmake pkg-config libuv1-dev libjansson-dev libsqlite3-dev libssl-dev zlib1g-dev
  libhiredis-dev libcurl4-openssl-dev libpq-dev)
if [ "$mode" = test ]; then
  # fonts-noto-cjk: the browser tests and their screenshots show Chinese, Japanese and Korean text
  # (the visitor page in zh-CN); fonts-noto-color-emoji: and the emoji people write.
  # nginx: tests/e2e/nginx.test.js runs the transport conformance suite through deploy/nginx.conf.
  # redis-server: tests/e2e/bus.test.js runs two nodes over a throw-away Redis (--bus).
  # postgresql: the store suite runs on a throw-away cluster too (scripts/pg_cluster.sh, started
  # by CTest for tests/unit/store/test_postgres.c; and KEFU_STORE for the browser tests).
  pkgs+=(libcmocka-dev clang clang-format libclang-rt-14-dev chromium curl sqlite3 gcovr fonts-noto-cjk
    fonts-noto-color-emoji nginx redis-server postgresql)
  # Node.js may come from elsewhere than Debian (the machine's own install): take any that works.
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$mode" = test ]; then
  cd "$(dirname "$0")/.."
  if [ ! -d node_modules/playwright-core ] || [ package.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
