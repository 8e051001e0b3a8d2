#!/bin/sh
# Health of an image component (`settings.nixpack.health`, run by `atmos deployment status
# --check-health`): prints {"status": "healthy"|"degraded"|"unhealthy", "detail": "..."}.
# A real project would ask its scheduler (kubectl get deploy -o json); this example reports
# the replicas its merged vars ask for as all ready.
set -eu
replicas=$(sed -n 's/.*"replicas": *\([0-9][0-9]*\).*/\1/p' "${ATMOS_VARS_FILE:?}" | head -1)
replicas=${replicas:-1}
printf '{"status": "healthy", "detail": "%s/%s pods"}\n' "$replicas" "$replicas"
