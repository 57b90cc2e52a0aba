#!/usr/bin/env bash
# scripts/dev/install-actionlint.sh — build (once) and cache actionlint, the linter for
# .github/workflows; prints the path of the binary (last line of stdout).
#
#   scripts/dev/install-actionlint.sh         ensure it is built; print its path
#   "$(scripts/dev/install-actionlint.sh)" -color .github/workflows/*.yml
#
# Built from the Go module proxy (`go install ...@VERSION`), like the engine in
# scripts/engine/bootstrap.sh: GitHub release downloads are not reachable from every machine
# that runs the tests. Cache: ${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/tools/
#   actionlint-<version>/actionlint   the binary (its directory appears only when complete)
#   go/mod, go/build                  Go module and build caches for the tools
# A warm run only checks that the binary exists: no go, no network.
#
# actionlint checks `run:` blocks with shellcheck when it is on PATH (Debian `shellcheck`,
# installed by scripts/dev/install-test-deps.sh).

set -euo pipefail

# A version the module proxy serves (`go list -m -versions github.com/rhysd/actionlint`).
VERSION=v1.7.12
MODULE=github.com/rhysd/actionlint/cmd/actionlint

ROOT="${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/tools"
DIR="$ROOT/actionlint-$VERSION"
BIN="$DIR/actionlint"

log() { printf '[actionlint] %s\n' "$*" >&2; }
die() {
	printf '[actionlint] error: %s\n' "$*" >&2
	exit 1
}

# Warm path.
if [ -x "$BIN" ]; then
	printf '%s\n' "$BIN"
	exit 0
fi

# --- cold path -----------------------------------------------------------------------------
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] ||
	die "Go is needed to build actionlint (once) and was not found: install Go >= 1.25 (https://go.dev/dl)"
command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"

mkdir -p "$ROOT"
# One builder at a time (parallel test runs share the cache); the others wait, then reuse.
exec 9>"$ROOT/actionlint-$VERSION.lock"
flock 9
if [ -x "$BIN" ]; then
	printf '%s\n' "$BIN"
	exit 0
fi

# Same Go settings as scripts/engine/bootstrap.sh: only the proxy (GitHub is unreachable),
# no checksum database (sum.golang.org is unreachable), never download another toolchain.
export GOMODCACHE="$ROOT/go/mod"
export GOCACHE="$ROOT/go/build"
export GOPROXY="${MEDUSA_BG_GOPROXY:-https://proxy.golang.org}"
export GOSUMDB=off GOFLAGS="-buildvcs=false" GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0

staging="$(mktemp -d "$ROOT/.actionlint-$VERSION.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
log "building $MODULE@$VERSION (first time only; about a minute)"
if ! GOBIN="$staging" nice -n 10 go install -trimpath "$MODULE@$VERSION" 2>"$staging/build.log"; then
	tail -n 30 "$staging/build.log" >&2
	die "go install $MODULE@$VERSION failed"
fi
got="$("$staging/actionlint" -version | head -n1)"
[ "$got" = "$VERSION" ] || die "built actionlint reports version '$got', expected $VERSION"
rm -f "$staging/build.log"
chmod 755 "$staging"
mv "$staging" "$DIR" # the directory appears complete or not at all
trap - EXIT
log "built $BIN"
printf '%s\n' "$BIN"
