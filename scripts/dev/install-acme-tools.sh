#!/usr/bin/env bash
# scripts/dev/install-acme-tools.sh — build (once) and cache the ACME tools of the TLS tests:
# Pebble (Let's Encrypt's test CA), pebble-challtestsrv (its DNS stand-in) and lego (the ACME
# client that acme/renew.sh drives); prints the directory that holds them (last line of stdout).
#
#   scripts/dev/install-acme-tools.sh          ensure they are built; print the directory
#   "$(scripts/dev/install-acme-tools.sh)/lego" --version
#
# Built from the Go module proxy, like scripts/dev/install-actionlint.sh: GitHub release
# downloads and Docker Hub are not reachable from every machine that runs the tests.
# Cache: ${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/tools/
#   acme-<versions>/{pebble,pebble-challtestsrv,lego}   the binaries (the directory appears
#                                                       only when all three are built)
#   go/mod, go/build                                    Go module and build caches
# A warm run only checks that the binaries exist: no go, no network.

set -euo pipefail

# Versions the module proxy serves (`go list -m -versions MODULE`). The proxy refuses every
# lego v4 version, so v5 is the line there is; v5 moved lego's main package from cmd/lego to
# the module root.
PEBBLE_VERSION=v2.10.3
PEBBLE_MODULE=github.com/letsencrypt/pebble/v2
LEGO_VERSION=v5.6.0
LEGO_MODULE=github.com/go-acme/lego/v5
TOOLS=(pebble pebble-challtestsrv lego)

ROOT="${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/tools"
KEY="pebble-$PEBBLE_VERSION-lego-$LEGO_VERSION"
DIR="$ROOT/acme-$KEY"

log() { printf '[acme-tools] %s\n' "$*" >&2; }
die() {
	printf '[acme-tools] error: %s\n' "$*" >&2
	exit 1
}

have_all() {
	local tool
	for tool in "${TOOLS[@]}"; do
		[ -x "$1/$tool" ] || return 1
	done
}

# Warm path.
if have_all "$DIR"; then
	printf '%s\n' "$DIR"
	exit 0
fi

# --- cold path -----------------------------------------------------------------------------
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] ||
	die "Go is needed to build Pebble and lego (once) and was not found: install Go >= 1.26 (https://go.dev/dl)"
command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"

mkdir -p "$ROOT"
# One builder at a time (parallel test runs share the cache); the others wait, then reuse.
exec 9>"$ROOT/acme-$KEY.lock"
flock 9
if have_all "$DIR"; then
	printf '%s\n' "$DIR"
	exit 0
fi

# Same Go settings as scripts/engine/bootstrap.sh: only the proxy (GitHub is unreachable),
# no checksum database (sum.golang.org is unreachable), never download another toolchain.
export GOMODCACHE="$ROOT/go/mod"
export GOCACHE="$ROOT/go/build"
export GOPROXY="${MEDUSA_BG_GOPROXY:-https://proxy.golang.org}"
export GOSUMDB=off GOFLAGS="-buildvcs=false" GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0

staging="$(mktemp -d "$ROOT/.acme-$KEY.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

for cmd in pebble pebble-challtestsrv; do
	log "building $PEBBLE_MODULE/cmd/$cmd@$PEBBLE_VERSION (first time only; about a minute)"
	if ! GOBIN="$staging" nice -n 10 go install -trimpath -ldflags "-X main.version=$PEBBLE_VERSION" \
		"$PEBBLE_MODULE/cmd/$cmd@$PEBBLE_VERSION" \
		2>"$staging/build.log"; then
		tail -n 30 "$staging/build.log" >&2
		die "go install $PEBBLE_MODULE/cmd/$cmd@$PEBBLE_VERSION failed"
	fi
done

# lego does not build with a plain `go install`: the proxy refuses the source of some of its
# dependencies (two dozen DNS provider SDKs, and gitlab.com/greyxor/slogor, the colored log
# handler of its CLI). Two things get around that without touching lego's code:
# - the build tag lego_dnslight (lego's own slim build: a DNS provider only with its
#   lego_dns_<name> tag) leaves every DNS provider out; acme/renew.sh only uses HTTP-01;
# - slogor is replaced by the stand-in below (the four calls lego makes, on log/slog's text
#   handler), from a throwaway main module that requires lego at exactly $LEGO_VERSION.
# `go version -m lego` shows the replacement (`=> ./slogor`).
module_dir="$staging/lego-build"
mkdir -p "$module_dir/slogor"
cat >"$module_dir/slogor/go.mod" <<'GOMOD'
module gitlab.com/greyxor/slogor

go 1.21
GOMOD
cat >"$module_dir/slogor/slogor.go" <<'GO'
// Package slogor stands in for gitlab.com/greyxor/slogor, whose source the module proxy does
// not serve: lego's CLI only sets its log level through it, so slog's text handler will do.
package slogor

import (
	"io"
	"log/slog"
)

type options struct{ level slog.Leveler }

type OptionFn func(*options)

func SetLevel(level slog.Leveler) OptionFn { return func(o *options) { o.level = level } }

func SetTimeFormat(string) OptionFn { return func(*options) {} }

func DisableColor() OptionFn { return func(*options) {} }

func NewHandler(w io.Writer, fns ...OptionFn) slog.Handler {
	o := options{level: slog.LevelInfo}
	for _, fn := range fns {
		fn(&o)
	}
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: o.level})
}
GO
cat >"$module_dir/go.mod" <<GOMOD
module medusa-bluegreen/acme-tools

go 1.26

require $LEGO_MODULE $LEGO_VERSION

replace gitlab.com/greyxor/slogor => ./slogor
GOMOD
log "building $LEGO_MODULE@$LEGO_VERSION with -tags lego_dnslight (first time only; about two minutes)"
if ! (cd "$module_dir" && nice -n 10 go build -mod=mod -tags lego_dnslight -trimpath \
	-ldflags "-X main.version=$LEGO_VERSION" -o "$staging/lego" "$LEGO_MODULE") 2>"$staging/build.log"; then
	tail -n 30 "$staging/build.log" >&2
	die "go build $LEGO_MODULE@$LEGO_VERSION failed"
fi
rm -rf "$module_dir"

# -trimpath keeps the module versions in the binaries: check we got what we asked for.
for tool in "${TOOLS[@]}"; do
	want="$PEBBLE_VERSION"
	[ "$tool" = lego ] && want="$LEGO_VERSION"
	got="$(go version -m "$staging/$tool" | awk '$1 == "mod" { print $3; exit }')"
	[ "$got" = "$want" ] || die "built $tool is module version '$got', expected $want"
done
rm -f "$staging/build.log"
chmod 755 "$staging"
mv "$staging" "$DIR" # the directory appears complete or not at all
trap - EXIT
log "built ${TOOLS[*]} in $DIR"
printf '%s\n' "$DIR"
