#!/usr/bin/env bash
# Dispatches/s of `dit-coordinator bench` (dispatch part only) without and with the status
# server, with a client polling / and /metrics ten times a second (README, "Watching a job").
# Usage: scripts/bench-http.sh [SHARDS] [PORT]   (release build first: swift build -c release)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="${DIT_BIN:-$here/.build/release}"
shards="${1:-20000}"
port="${2:-18089}"
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }

poller=""
cleanup() { if [ -n "$poller" ]; then kill "$poller" 2>/dev/null || true; fi; }
trap cleanup EXIT

echo "== without --http"
"$bin/dit-coordinator" bench --shards "$shards" --sample-dit none 2>/dev/null

echo "== with --http 127.0.0.1:$port and a client polling / and /metrics at 10 Hz"
(
  polls=0 fails=0
  while :; do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/" -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null
    then polls=$((polls + 1)); else fails=$((fails + 1)); fi
    echo "$polls $fails" > "${TMPDIR:-/tmp}/dit-bench-http-polls"
    sleep 0.1
  done
) &
poller=$!
"$bin/dit-coordinator" bench --shards "$shards" --sample-dit none --http "127.0.0.1:$port" 2>/dev/null
read -r polls fails < "${TMPDIR:-/tmp}/dit-bench-http-polls"
echo "client: $polls polls of / and /metrics answered (and $fails refused: before the server was up or after it stopped)"
