#!/usr/bin/env bash
# Remakes docs/status-page.png, the README's screenshot of the coordinator's status page:
# the page test (a running synthetic job watched in headless Chromium) keeps its screenshot.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mkdir -p docs
DIT_STATUS_SCREENSHOT="$here/docs/status-page.png" swift test -c release -Xswiftc -enable-testing \
    --filter MonitoringHTTPTests/testPageAPIAndMetricsWhileAJobRuns
echo "wrote docs/status-page.png"
