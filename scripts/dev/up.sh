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

# bin/bluegreen gives pulumi the local stack's backend (.state/) and passphrase (ops/environment.py).
bin/bluegreen pulumi stack select local --non-interactive 2>/dev/null ||
    bin/bluegreen pulumi stack init local --non-interactive
bin/bluegreen pulumi up --yes --non-interactive "$@"

echo
echo "Medusa (test app) is live at: $(bin/bluegreen pulumi stack output publicUrl)/"
echo "State: .state/ (file backend). Day 2: bin/bluegreen --help; what runs and what applies now:"
echo
# Only commands that work as printed: bin/bluegreen sets up this environment by itself.
bin/bluegreen status || true
echo "  release a test app to the idle color: bin/bluegreen release --image medusa-bg/testapp:v2   (or :v1)"
