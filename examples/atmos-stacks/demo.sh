#!/usr/bin/env bash
# The Atmos-stacks example end to end: copy it into a throwaway git repository, validate,
# describe prod's station as the stack resolves it, roll it out dev → staging → prod, and show
# status and history. terraform is not installed here (and the demo applies nothing), so
# atmos runs the stand-in in examples/stand-ins/terraform, which prints the command, folder
# and varfile Atmos's terraform contract gives it. Set ATMOS_DEMO_KEEP=1 to keep the copy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$(dirname "$here")")

cargo build --quiet --locked --manifest-path "$root/Cargo.toml" -p atmos-cli
atmos="$root/target/debug/atmos"
work=$(mktemp -d "${TMPDIR:-/tmp}/atmos-stacks-demo.XXXXXX")
if [ "${ATMOS_DEMO_KEEP:-}" = 1 ]; then
  echo "(keeping $work)"
else
  trap 'rm -rf "$work"' EXIT
fi
cp -R "$here/." "$work/"
rm -f "$work/demo.sh"
git -C "$work" init -q
git -C "$work" config user.name "Demo Developer"
git -C "$work" config user.email dev@example.com
git -C "$work" add -A
git -C "$work" commit -q -m "Atmos stacks with a deployment over them"
export ATMOS_TERRAFORM_BIN="$root/examples/stand-ins/terraform"

step() { printf '\n\033[1m$ atmos %s\033[0m\n' "$*"; (cd "$work" && "$atmos" "$@"); }
step deployment validate weather
step deployment describe weather --target prod
step deployment rollout weather --target dev
step deployment rollout weather --target staging --promote-from dev
step deployment rollout weather --target prod --promote-from staging
step deployment status weather
step deployment history weather --target prod
