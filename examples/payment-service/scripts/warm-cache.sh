#!/bin/sh
# Warms the inventory cache after a rollout, run by atmos as a `script` component.
set -eu
state_dir="${EXAMPLE_STATE_DIR:-${TMPDIR:-/tmp}/atmos-example-state}/${ATMOS_TARGET:?}"
mkdir -p "$state_dir"
echo "${ATMOS_GIT_SHA:?}" > "$state_dir/cache.warmed"
echo "cache warmed on ${ATMOS_TARGET}"
