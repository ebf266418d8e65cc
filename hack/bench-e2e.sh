#!/usr/bin/env bash
# make bench-e2e: start a sandbox, scale scan-worker to $REPLICAS (first
# capped at $HOLD_NODES nodes, then uncapped) and measure it with
# hack/scalebench, then stop the sandbox. Not part of make test: at 5,000
# pods it runs for several minutes and starts hundreds of simulated nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
replicas=${REPLICAS:-5000}
hold=${HOLD_NODES:-20}
[ -e .sandbox/env ] && pgrep -f "$(pwd)/bin/sandbox" >/dev/null && { echo "a sandbox is already running in this checkout" >&2; exit 1; }
go build -o bin/sandbox ./hack/sandbox
go build -o bin/scalebench ./hack/scalebench
log=bin/bench-e2e.log
setsid bin/sandbox >"$log" 2>&1 &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null; wait $pid 2>/dev/null; echo "sandbox log: $log"' EXIT
for _ in $(seq 1 1200); do
  grep -q "sandbox ready" "$log" && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$log"; exit 1; }
  sleep 1
done
grep -q "sandbox ready" "$log" || { echo "sandbox not ready after 20 minutes" >&2; exit 1; }
# shellcheck disable=SC1091
. .sandbox/env
bin/scalebench -replicas "$replicas" -hold-nodes "$hold"
