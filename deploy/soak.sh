#!/usr/bin/env bash
# The full reliability soak: thousands of jobs from concurrent clients against `kiln api` and 2 `kiln worker`
# processes, one SIGKILLed and restarted midway; every job must end `succeeded`, exactly once.
#   deploy/soak.sh [JOBS] [CLIENTS]      (defaults 5000 and 16)
# It starts its own redis-server (unix socket in a temp dir, AOF on) and kiln processes (127.0.0.1, port 0)
# through the test harness, stops them itself, and gives up after 15 minutes. Its last result is in
# BENCHMARKS.md ("Reliability"). A smaller version runs in `cargo test` (host/tests/e2e/reliability.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null 2>&1 || { echo "deploy/soak.sh: redis-server is needed" >&2; exit 1; }
export KILN_SOAK_JOBS="${1:-5000}" KILN_SOAK_CLIENTS="${2:-16}"
exec timeout 900 cargo test -p kiln --test e2e reliability::soak_full -- --ignored --nocapture --exact
