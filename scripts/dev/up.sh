#!/usr/bin/env bash
# `make up`: the whole stack on this machine, no Pulumi Cloud account needed.
# Builds (or reuses) the engine, starts the harness's dockerd, builds the local images, then
# runs `pulumi up` on the `local` stack with a file:// backend in .state/: the real Medusa app
# of examples/medusa-app, built by `pulumi up`, with its admin dashboard at /app.
# `make up APP=testapp` deploys the small test app instead (a stack not deployed yet only).
set -euo pipefail
cd "$(dirname "$0")/../.."
app="${APP:-medusa}"
case "$app" in
    medusa | testapp) ;;
    *) echo "make up: APP must be medusa (the default) or testapp, not '$app'" >&2; exit 2 ;;
esac

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

# shellcheck source=scripts/dev/env.sh
source scripts/dev/env.sh
harness/images.sh >&2

# bin/bluegreen gives pulumi the local stack's backend (.state/) and passphrase (ops/environment.py).
bin/bluegreen pulumi stack select local --non-interactive 2>/dev/null ||
    bin/bluegreen pulumi stack init local --non-interactive
live="$(bin/bluegreen pulumi stack output liveColor 2>/dev/null || true)"

if [ "$app" = testapp ]; then
    if [ -n "$live" ]; then
        echo "make up APP=testapp: the local stack is deployed already; release the test app to it:" >&2
        echo "  bin/bluegreen release --image medusa-bg/testapp:v1" >&2
        exit 2
    fi
    # The test app has none of the Medusa app's routes: Medusa's /health is its whole gate.
    bin/bluegreen pulumi config rm blueBuild
    bin/bluegreen pulumi config rm --path healthGate.checks
    bin/bluegreen pulumi config rm --path healthGate.workerCheck
    bin/bluegreen pulumi config set blueImage medusa-bg/testapp:v1
fi
began=$SECONDS
bin/bluegreen pulumi up --yes --non-interactive "$@"
url="$(bin/bluegreen pulumi stack output publicUrl)"

echo
echo "pulumi up took $((SECONDS - began)) s. State: .state/ (file backend)."
if [ "$app" = testapp ]; then
    echo "The test app is live at: $url/"
else
    echo "Medusa is live at: $url/ (store API $url/store/..., admin API $url/admin/...)"
    echo "Admin dashboard: $url/app"
    # The first admin is invited once; the invite stays printable until it is accepted.
    invite=.state/local-admin-invite
    if [ ! -s "$invite" ]; then
        (umask 077 && bin/bluegreen admin-invite admin@localhost >"$invite.new" && mv "$invite.new" "$invite") ||
            { rm -f "$invite.new"; echo "  (no admin invite made; try: bin/bluegreen admin-invite admin@localhost)"; }
    fi
    if [ -s "$invite" ]; then cat "$invite"; fi
fi
echo "Day 2: bin/bluegreen --help; what runs and what applies now:"
echo
# Only commands that work as printed: bin/bluegreen sets up this environment by itself.
bin/bluegreen status || true
if [ "$app" = testapp ]; then
    echo "  release a test app to the idle color: bin/bluegreen release --image medusa-bg/testapp:v2   (or :v1)"
else
    echo "  release a change of examples/medusa-app to the idle color: bin/bluegreen release --build examples/medusa-app"
fi
