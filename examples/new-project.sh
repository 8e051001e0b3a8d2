#!/usr/bin/env bash
# Make a standalone repository from examples/payment-service: the example, the policies
# atmos ships (policies/), the WebAssembly hooks it binds (built from guests/ into hooks/),
# and the GitHub Actions workflows (examples/ci/github-actions.yml as
# .github/workflows/deploy.yml, examples/ci/verify.yml), committed as its first commit. The gates are read from
# committed files, so everything they need is in that commit.
#
#   bash examples/new-project.sh DIR [--action OWNER/REPO@REF] [--no-commit]
#
# --action names the repository that hosts atmos's GitHub Action (the workflow's `uses:`
# lines); without it they stay `your-org/atmos@main`. DIR must not exist or be empty.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

usage() { echo "usage: $0 DIR [--action OWNER/REPO@REF] [--no-commit]" >&2; exit 2; }
[ $# -ge 1 ] || usage
dest=$1; shift
action="" commit=1
while [ $# -gt 0 ]; do
  case "$1" in
    --action) [ $# -ge 2 ] || usage; action=$2; shift 2 ;;
    --no-commit) commit=0; shift ;;
    *) usage ;;
  esac
done
if [ -n "$action" ] && ! [[ "$action" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[A-Za-z0-9_./-]+$ ]]; then
  echo "--action must look like owner/repo@ref, got: $action" >&2; exit 2
fi
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "$dest exists and is not empty" >&2; exit 2
fi

# The hooks, built from source for wasm32-wasip2 (added to rustup when missing).
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
CARGO_TARGET_DIR="$root/target/guests" cargo build --quiet --release --locked \
  --target wasm32-wasip2 --manifest-path "$root/guests/Cargo.toml"
guests="$root/target/guests/wasm32-wasip2/release"

mkdir -p "$dest"
cp -R "$here/payment-service/." "$dest/"
cp -R "$root/policies" "$dest/policies"
mkdir -p "$dest/hooks" "$dest/.github/workflows"
for hook in soak-time change-freeze; do cp "$guests/${hook//-/_}.wasm" "$dest/hooks/$hook.wasm"; done
# The workflow deploys the example's database with the stand-in terraform (a real one needs a
# cloud account); see the workflow's ATMOS_TERRAFORM_BIN.
mkdir -p "$dest/tools/stand-ins"
cp "$here/stand-ins/terraform" "$dest/tools/stand-ins/terraform"
cp "$here/ci/github-actions.yml" "$dest/.github/workflows/deploy.yml"
cp "$here/ci/verify.yml" "$dest/.github/workflows/verify.yml"
if [ -n "$action" ]; then
  sed -i "s#uses: your-org/atmos@main#uses: $action#" "$dest"/.github/workflows/*.yml
fi
# The example's TEST-ONLY keys: ssh-keygen refuses a private key others can read.
chmod 600 "$dest"/TEST-ONLY-keys/dev "$dest"/TEST-ONLY-keys/alice "$dest"/TEST-ONLY-keys/bob

if [ "$commit" = 1 ]; then
  git -C "$dest" init -q
  git -C "$dest" add -A
  git -C "$dest" -c user.name="${GIT_AUTHOR_NAME:-atmos example}" \
    -c user.email="${GIT_AUTHOR_EMAIL:-dev@example.com}" \
    commit -q -m "Initial payment-service layout"
fi
echo "$dest: the payment-service example with policies/, hooks/ and .github/workflows/deploy.yml"
