#!/usr/bin/env bash
# Starts Kiln's production topology as local processes: a redis-server (AOF on, noeviction), one
# `kiln api` and N `kiln worker` processes, all on loopback, for a quick real check of a multi-process
# deployment. Stops everything on exit (Ctrl-C, or when COMMAND ends).
#
#   deploy/topology.sh [--workers N] [--port PORT] [-- COMMAND ...]
#
# With a COMMAND, runs it with KILN_URL set to the API and exits with its status; without one, waits.
# The API runs in dev mode (--dev) unless KILN_ADMIN_KEY is set.
# KILN_BIN names the kiln binary to use (default: build target/release/kiln).
set -euo pipefail
cd "$(dirname "$0")/.."

workers=2
port=8080
while (($#)); do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: deploy/topology.sh [--workers N] [--port PORT] [-- COMMAND ...]" >&2; exit 2 ;;
  esac
done

kiln=${KILN_BIN:-}
if [ -z "$kiln" ]; then
  cargo build --release -q -p kiln
  kiln=target/release/kiln
fi

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# URL PID LOG: until URL answers 200, for up to 3 minutes (workers compile components first); if the
# process exits first, says so with the end of its log.
wait_for() {
  for _ in $(seq 1800); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "topology: the process behind $1 exited; the end of its log:" >&2
      tail -n 20 "$3" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "topology: $1 did not come up; the end of $3:" >&2
  tail -n 20 "$3" >&2
  return 1
}

redis-server --port 0 --unixsocket "$dir/redis.sock" --dir "$dir" --appendonly yes --appendfsync everysec \
  --maxmemory-policy noeviction --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.1; done
# KILN_DATA_DIR, if set, is kept (e.g. to reuse compiled components); else a temp dir.
export KILN_REDIS_URL="redis+unix://$dir/redis.sock" KILN_DATA_DIR="${KILN_DATA_DIR:-$dir/kiln}"

# Dev mode (no keys, loopback only) unless KILN_ADMIN_KEY is set.
mode=()
[ -n "${KILN_ADMIN_KEY:-}" ] || mode=(--dev)
"$kiln" api "${mode[@]}" --listen "127.0.0.1:$port" >"$dir/api.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$port/readyz" $! "$dir/api.log"
worker_pids=()
for i in $(seq "$workers"); do
  "$kiln" worker --ops-listen "127.0.0.1:$((port + i))" >"$dir/worker-$i.log" 2>&1 &
  pids+=($!)
  worker_pids+=($!)
done
for i in $(seq "$workers"); do
  wait_for "http://127.0.0.1:$((port + i))/readyz" "${worker_pids[$((i - 1))]}" "$dir/worker-$i.log"
done
echo "topology: redis-server, 1 api and $workers workers are up; KILN_URL=http://127.0.0.1:$port" >&2

if (($#)); then
  KILN_URL="http://127.0.0.1:$port" "$@"
else
  wait "${pids[@]}"
fi
