#!/bin/sh
# Deploys a built image, run by atmos as the `deploy` command of the nixpack components. atmos
# never rebuilds at rollout: it passes the image built once for the commit (`atmos deployment
# build`), and on a promotion the very digest the source target ran.
# A real project would run `kubectl set image`, update a GitOps repo, or call its scheduler;
# this example only says what it would do.
set -eu
# In canary steps (prod's strategy) ATMOS_CANARY_WEIGHT is the percent of traffic the new image
# takes; 0 drains it when the canary is aborted.
weight=${ATMOS_CANARY_WEIGHT:+ at ${ATMOS_CANARY_WEIGHT}% (canary step ${ATMOS_CANARY_STEP}/${ATMOS_CANARY_STEPS})}
echo "deploying ${ATMOS_IMAGE:?}@${ATMOS_IMAGE_DIGEST:-unknown digest} to ${ATMOS_TARGET:?}${weight}"
