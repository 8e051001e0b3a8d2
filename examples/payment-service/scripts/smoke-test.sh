#!/bin/sh
# Post-deploy smoke test for payment-service, run by atmos as a `script` component.
# Checks that the merged vars reached us and records the check in the example's state folder.
set -eu
vars="${ATMOS_VARS_FILE:?}"
grep -q '"endpoint"' "$vars" || { echo "endpoint missing from $vars" >&2; exit 1; }
state_dir="${EXAMPLE_STATE_DIR:-${TMPDIR:-/tmp}/atmos-example-state}/${ATMOS_TARGET:?}"
mkdir -p "$state_dir"
echo "${ATMOS_GIT_SHA:?}" > "$state_dir/smoke-test.passed"
echo "smoke test passed on ${ATMOS_TARGET} at ${ATMOS_GIT_SHA}"
