#!/bin/sh
# The analysis between prod's canary steps (strategy.canary.analysis): exit 0 when the canary is
# healthy. A real project queries its metrics here (error rate and latency of the canary's pods
# against the stable ones, e.g. from Prometheus) and fails when they are worse; its output is
# kept with the step's record (`atmos deployment logs`). This example reads a file a test or a
# person can write to fail it: $EXAMPLE_STATE_DIR/canary-error-rate (percent, default 0.2).
set -eu
rate=$(cat "${EXAMPLE_STATE_DIR:-/tmp}/canary-error-rate" 2>/dev/null || echo 0.2)
echo "canary at ${ATMOS_CANARY_WEIGHT:?}%: error rate ${rate}% (limit 1%)"
awk -v r="$rate" 'BEGIN { exit !(r + 0 < 1) }'
