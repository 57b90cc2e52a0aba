#!/usr/bin/env bash
# `make up`: the whole stack on this machine, no Pulumi Cloud account needed.
# Builds (or reuses) the engine, starts the harness's dockerd, builds the local images, then
# runs `pulumi up` on the `local` stack with a file:// backend in .state/.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

# shellcheck source=scripts/dev/env.sh
source scripts/dev/env.sh
harness/images.sh >&2

mkdir -p .state
export PULUMI_BACKEND_URL="file://$PWD/.state"
# Only guards the local stack's secrets at rest in .state/; production stacks use their own.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-local-stack-passphrase}"
pulumi stack select local --non-interactive 2>/dev/null || pulumi stack init local --non-interactive
pulumi up --yes --stack local --non-interactive "$@"

echo
echo "Medusa (test app) is live at: $(pulumi stack output publicUrl --stack local)/"
echo "State: .state/ (file backend). Switch colors: pulumi config set activeColor green && make up"
