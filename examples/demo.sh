#!/usr/bin/env bash
# The main job on the shipped example: copy examples/payment-service into a throwaway git
# repository and run atmos on it. Set ATMOS_DEMO_KEEP=1 to keep the repository afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

cargo build --quiet --locked --manifest-path "$root/Cargo.toml" -p atmos-cli
atmos="$root/target/debug/atmos"

work=$(mktemp -d "${TMPDIR:-/tmp}/atmos-demo.XXXXXX")
if [ "${ATMOS_DEMO_KEEP:-}" = 1 ]; then
  echo "(keeping $work)"
else
  trap 'rm -rf "$work"' EXIT
fi
cp -R "$here/payment-service/." "$work/"
rm -rf "$work/.example-state"
git -C "$work" init -q
git -C "$work" add -A
git -C "$work" -c user.name=Demo -c user.email=demo@example.com commit -q -m "Initial payment-service layout"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ atmos %s%s\n' "$bold" "$*" "$plain"; "$atmos" -C "$work" "$@"; }

step deployment validate --all
step deployment list
step deployment list targets payment-service
step deployment describe payment-service --target prod
step deployment promotion-graph payment-service
step deployment promotion-graph inventory-service
