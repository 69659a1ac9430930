#!/usr/bin/env bash
# Dispatches/s of `dit-coordinator bench` (dispatch part only) without and with the status
# server, with a client polling / and /metrics ten times a second (README, "Watching a job").
# Usage: scripts/bench-http.sh [SHARDS] [ROUNDS] [PORT]   (release build first: swift build -c release)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="${DIT_BIN:-$here/.build/release}"
shards="${1:-20000}"
rounds="${2:-1}"
port="${3:-18089}"
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
tally=$(mktemp)

poller=""
cleanup() { if [ -n "$poller" ]; then kill "$poller" 2>/dev/null || true; fi; rm -f "$tally"; }
trap cleanup EXIT

# Fetches / and /metrics (one curl, one connection) at every tenth of a second; counts answers.
poll() {
  local polls=0 start next now
  start=$(date +%s%3N); next=$start
  while :; do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/" -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null; then
      polls=$((polls + 1))
      now=$(date +%s%3N)
      echo "$polls $(( now - start ))" > "$tally"
    fi
    next=$((next + 100)); now=$(date +%s%3N)
    if [ "$next" -gt "$now" ]; then sleep "$(printf '0.%03d' $((next - now)))"; else next=$now; fi
  done
}

for r in $(seq "$rounds"); do
  echo "== round $r: without --http"
  "$bin/dit-coordinator" bench --shards "$shards" --sample-dit none 2>/dev/null
  echo "== round $r: with --http 127.0.0.1:$port and a client polling / and /metrics at 10 Hz"
  echo "0 0" > "$tally"
  poll & poller=$!
  "$bin/dit-coordinator" bench --shards "$shards" --sample-dit none --http "127.0.0.1:$port" 2>/dev/null
  kill "$poller" 2>/dev/null || true; wait "$poller" 2>/dev/null || true; poller=""
  read -r polls ms < "$tally"
  echo "client: $polls polls of / and /metrics answered in $ms ms of serving ($(awk -v p="$polls" -v m="$ms" 'BEGIN { if (m > 0) printf "%.1f", p * 1000 / m; else printf "0" }') polls/s)"
done
