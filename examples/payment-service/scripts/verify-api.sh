#!/bin/sh
# Post-deploy verification of the api, run by atmos after its deploy command succeeds
# (`settings.nixpack.verify`), in the tree of the commit just deployed. A real project would
# call the new release's /healthz through the load balancer; this example checks that the
# code it deployed still serves /healthz, which is what a broken release gets wrong.
set -eu
if grep -q '"/healthz"' services/api/main.go; then
  echo "GET /healthz on ${ATMOS_TARGET:?}: 200 ok"
else
  echo "GET /healthz on ${ATMOS_TARGET:?}: 404 (the release does not serve /healthz)" >&2
  exit 1
fi
