#!/bin/sh
# Database migrations for payment-service, run by atmos as a `script` component.
# atmos sets ATMOS_DEPLOYMENT, ATMOS_TARGET, ATMOS_COMPONENT, ATMOS_GIT_SHA and
# ATMOS_VARS_FILE (the component's vars merged with the target's context, as JSON).
# With --dry-run (the plan command) it exits 2 when migrations are pending, the plan
# convention atmos uses for `rollout --plan` and `diff --check-drift`.
set -eu
mode=apply
[ "${1:-}" = "--dry-run" ] && mode=plan
# The applied migrations stand for the database: they live outside the repository (atmos runs
# each rollout in a fresh export of the deployed commit, so nothing written here would stay).
state_dir="${EXAMPLE_STATE_DIR:-${TMPDIR:-/tmp}/atmos-example-state}/${ATMOS_TARGET:?}"
applied="$state_dir/migrations.applied"
mkdir -p "$state_dir"
pending=0
for m in migrations/*.sql; do
  [ -e "$m" ] || continue
  if ! grep -qxF "$m" "$applied" 2>/dev/null; then
    pending=$((pending + 1))
    if [ "$mode" = apply ]; then
      echo "applying $m to ${ATMOS_TARGET}"
      echo "$m" >> "$applied"
    else
      echo "would apply $m to ${ATMOS_TARGET}"
    fi
  fi
done
echo "$mode: $pending pending migration(s) for commit ${ATMOS_GIT_SHA:?}"
if [ "$mode" = plan ] && [ "$pending" -gt 0 ]; then exit 2; fi
