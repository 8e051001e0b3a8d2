#!/usr/bin/env bash
# The main job on the shipped example: copy examples/payment-service into a throwaway git
# repository, validate it, roll it out to dev, promote it to staging, show status, history,
# the promotion graph and a diff, try prod (which needs an approval), check health, watch a
# release that fails its post-deploy verification roll back by itself, and show what git
# recorded. Set ATMOS_DEMO_KEEP=1 to keep the repository.
#
# terraform, nixpacks and docker are not installed here (and there is no cloud to apply to),
# so the demo points atmos at the stand-ins in examples/stand-ins/, which print the command
# they were given. The `script` components (migrations, smoke test) really run, and the SBOM
# is generated from the example services' real lockfiles.
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
# The example, the shipped policies and the WebAssembly hooks it binds (soak-time,
# change-freeze, built from guests/), as examples/new-project.sh lays out a new repository.
bash "$here/new-project.sh" "$work" --no-commit >/dev/null
# The example's year-end change freeze is dated; the demo moves it to the coming year-end so
# that its prod step runs on any day (and shows the freeze with `policy eval --now`).
year=$(date -u +%Y)
if [ "$(date -u +%m%d)" -ge 1221 ]; then year=$((year + 1)); fi
freeze_start="${year}-12-21T00:00:00Z" freeze_end="$((year + 1))-01-04T00:00:00Z"
sed -i "s/2026-12-21T00:00:00Z/$freeze_start/; s/2027-01-04T00:00:00Z/$freeze_end/" "$work/gates/settings.yaml"
export EXAMPLE_STATE_DIR="$work/.example-state"
git -C "$work" init -q
git -C "$work" config user.name "Demo Developer"
git -C "$work" config user.email dev@example.com
# Sign rollouts with dev's TEST-ONLY key (prod requires a proven deployer); ssh-keygen refuses
# a private key others can read, and git does not keep file modes.
chmod 600 "$work"/TEST-ONLY-keys/dev "$work"/TEST-ONLY-keys/alice "$work"/TEST-ONLY-keys/bob
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$work/TEST-ONLY-keys/dev"
git -C "$work" config gpg.ssh.allowedSignersFile "$work/TEST-ONLY-keys/allowed_signers"
git -C "$work" add -A
git -C "$work" commit -q -m "Initial payment-service layout"

export ATMOS_TERRAFORM_BIN="$here/stand-ins/terraform"
export ATMOS_NIXPACKS_BIN="$here/stand-ins/nixpacks"
export ATMOS_HELMFILE_BIN="$here/stand-ins/helmfile"
export ATMOS_DOCKER_BIN="$here/stand-ins/docker"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
step() { printf '\n%s$ atmos %s%s\n' "$bold" "$*" "$plain"; "$atmos" -C "$work" "$@"; }
# Runs a step that is expected to stop with a given exit code (denied 3, pending 4).
expect() { local want=$1; shift; set +e; step "$@"; local got=$?; set -e
  [ "$got" = "$want" ] || { echo "expected exit $want, got $got" >&2; exit 1; }
  echo "(exit $got, as expected)"; }

say "The configuration"
step deployment validate --all -q && echo "all deployments valid"
step deployment list
# The release chain and prod's gates come from deployments/_defaults/release-chain.yaml.
step deployment describe payment-service
step deployment promotion-graph payment-service

say "Build images and the SBOM of HEAD (from the services' lockfiles)"
step deployment build payment-service --target dev
step deployment sbom payment-service --git-sha HEAD --summary

say "Roll out HEAD to dev"
step deployment rollout payment-service --target dev --metadata pr=#101

say "A new commit reaches dev; staging still runs the first"
echo "CREATE INDEX payments_currency ON payments (currency);" > "$work/migrations/003_index.sql"
git -C "$work" add -A
git -C "$work" commit -q -m "Index payments by currency"
step deployment rollout payment-service --target dev --component migrate --component smoke-test -q

say "Promote dev to staging (each component takes the commit it runs in dev)"
step deployment rollout payment-service --target staging --promote-from dev

say "What runs where, and how we got here"
step deployment status payment-service
step deployment status payment-service --target staging
step deployment history payment-service --target dev
step deployment logs payment-service --target staging --component migrate
step deployment promotion-graph payment-service --show-status

say "A third commit in dev: what would staging get?"
sed -i 's/concurrency: 4/concurrency: 8/' "$work/deployments/payment-service.yaml"
git -C "$work" commit -q -am "Double worker concurrency"
step deployment rollout payment-service --target dev -q
step deployment diff payment-service --from-target staging --to-target dev --show-files

say "Gates: dev cannot skip staging; prod needs a ticket, and two approvals from sre"
expect 3 deployment rollout payment-service --target prod --promote-from dev
expect 3 deployment rollout payment-service --target prod --promote-from staging
expect 4 deployment rollout payment-service --target prod --promote-from staging --metadata ticket=OPS-42

say "Gates at another time: the same promotion during the year-end freeze"
expect 3 deployment policy eval payment-service --target prod --promote-from staging --metadata ticket=OPS-42 --now "${year}-12-24T10:00:00Z"

say "Approve: the deployer's own approval does not count; alice and bob from sre do"
step deployment approve payment-service --target prod --promote-from staging
ATMOS_ACTOR=alice@example.com step deployment approve payment-service --target prod --promote-from staging -m "staging soaked, dashboards green" --signing-key "$work/TEST-ONLY-keys/alice"
expect 4 deployment rollout payment-service --target prod --promote-from staging --metadata ticket=OPS-42
ATMOS_ACTOR=bob@example.com step deployment approve payment-service --target prod --promote-from staging --signing-key "$work/TEST-ONLY-keys/bob"

say "Promote staging to prod"
step deployment rollout payment-service --target prod --promote-from staging --metadata ticket=OPS-42
step deployment status payment-service --target prod
step deployment history payment-service --target prod
step deployment promotion-graph payment-service --show-status

say "Health, from the components' own health commands"
step deployment status payment-service --target prod --check-health

say "A release that fails its post-deploy verification is rolled back automatically"
sed -i 's|"/healthz"|"/health"|' "$work/services/api/main.go"
git -C "$work" commit -q -am "Rename the api's health route"
expect 1 deployment rollout payment-service --target dev --component api
step deployment history payment-service --target dev --component api --limit 3

say "What git recorded"
printf '\n$ git show-ref | grep refs/atmos/\n'
git -C "$work" show-ref | grep ' refs/atmos/'
printf '\n$ git tag -l "atmos/*"\n'
git -C "$work" tag -l 'atmos/*'
tag=$(git -C "$work" tag -l 'atmos/deployments/payment-service/staging/migrate/*' | tail -1)
printf '\n$ git cat-file -p %s\n' "$tag"
git -C "$work" cat-file -p "$tag"

say "Anyone can check the records, offline: signatures, deployers, chains, promotions, approvals"
step deployment verify payment-service
printf '\n$ git tag -v %s\n' "$tag"
git -C "$work" tag -v "$tag" 2>&1 | grep -i signature

say "The deployment board: a static site of all of this, for CI to publish"
board="${ATMOS_DEMO_BOARD:-$root/target/demo-board}"
step deployment report --html "$board"
