#!/usr/bin/env bash
# scripts/engine/bootstrap.sh — build (once) and cache the Pulumi engine this project runs on.
#
#   scripts/engine/bootstrap.sh               ensure it is built; print the bin dir (last line)
#   eval "$(scripts/engine/bootstrap.sh --print-env)"
#                                             ensure it is built; print export lines to eval
#
# Why build at all: the Pulumi CLI and its plugins are normally downloaded from GitHub
# releases, which no machine here reaches. Their Go sources come from the Go module proxy,
# which is reachable but filtered (it serves only some module versions). What it serves, and
# so what this script builds:
#
#   piece                       Go source (all from the module proxy)
#   pulumi (CLI)                github.com/pulumi/pulumi/pkg/v3@v<pulumi pin>
#   pulumi-language-python      github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
#                               at the only version found on the proxy (Aug 2025 source),
#                               built against pkg/sdk v3.188.0, the release it was written for
#   pulumi-language-python-exec, pulumi-resource-pulumi-python
#                               scripts copied from github.com/pulumi/pulumi/sdk/v3@v<pulumi pin>
#   pulumi-resource-random      upstream Terraform provider + pulumi-terraform-bridge + our
#                               mapping in random-provider/ (pulumi-random's own module: not served)
#   pulumi-resource-docker      upstream kreuzwerker provider + bridge + our mapping in
#                               docker-provider/ (pulumi-docker's own module: not served)
#   pulumi-resource-command     our own implementation in command-provider/ on sdk/v3
#                               (pulumi-command's module: not served)
#
# Versions come from the pulumi* pins in requirements.txt; the plugins are registered under
# exactly those versions because each Python SDK asks the engine for its own version.
#
# Cache: ${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/engine/<key>/ with
#   bin/        pulumi, pulumi-language-python, its two scripts (goes first on PATH)
#   providers/  the provider plugins (kept off PATH: the engine would prefer a plugin found on
#               PATH over the registered one, whatever its version, and warns on every run)
#   home/       PULUMI_HOME, with the plugins registered in it
#   logs/       one build log per piece, timings.txt
#   work/       the throwaway Go modules the pieces were built in (kept for inspection)
#   .complete   written last; without it the next run builds what is missing
#   .done-*     one stamp per piece; .done-command holds the sha256 of command-provider/*.go,
#               so editing our command provider rebuilds only that piece (and re-registers
#               the plugins), without a RECIPE bump
# The Go module and build caches (go/mod, go/build) are shared by all keys, so changing one
# pin rebuilds only what changed. A warm run only checks .complete, the outputs and the
# command provider's source hash: no go, no network.
#
# Progress goes to stderr; a failing piece prints the tail of its log and exits non-zero.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
REQUIREMENTS="${MEDUSA_BG_REQUIREMENTS:-$REPO/requirements.txt}"

# Bump when a change to this script or the helper sources changes what gets built, so caches
# made by the old recipe are not reused. (Not needed for command-provider/*.go: its stamp
# carries the hash of its source, see command_stamp; bump COMMAND_RECIPE instead when only
# build_command changes.)
RECIPE=1
COMMAND_RECIPE=1

# --- Sources that are not derived from the pins (see the table above) --------------------
# The only version of the language host module found on the proxy (a pseudo-version: the
# module has no tags; the pseudo-versions of release commits are refused). Its code does not
# compile against sdk/pkg v3.259.0 (missing Template RPC, changed toolchain API), so it is
# built against v3.188.0, the release cut 5 commits after it. It speaks the same gRPC protocol
# as the newer CLI (tested: up / preview / destroy, dynamic providers).
LANGHOST_MODULE=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
LANGHOST_VERSION=v3.0.0-20250806165243-bee5e4fa4815
LANGHOST_PULUMI=v3.188.0
# Every pulumi module replaces atotto/clipboard with this fork; replaces of dependencies are
# ignored by Go, so each wrapper module repeats it.
CLIPBOARD_REPLACE="github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e"
# Bridged providers: the bridge version the providers were released with, and Pulumi's fork
# of terraform-plugin-sdk that the bridge needs (pulumi-docker/pulumi-random replace it too).
BRIDGE_VERSION=v3.137.0
TF_SDK_REPLACE="github.com/hashicorp/terraform-plugin-sdk/v2=github.com/pulumi/terraform-plugin-sdk/v2@v2.0.0-20260318212141-5525259d096b"

# Upstream Terraform provider source for each supported provider pin. Only these versions of
# the upstream modules are served by the proxy; to move a pin, find the matching upstream
# version and add a line here.
random_upstream() {
	case "$1" in
	# Checked: the generated schema has exactly the resources and properties of pulumi_random 4.21.4.
	4.21.4) echo "github.com/terraform-providers/terraform-provider-random@v1.3.2-0.20260824155315-e1092b0cfc07" ;;
	*) return 1 ;;
	esac
}
docker_upstream() {
	# Upstream v4.6.0+ (Sept 2026): what pulumi-docker 5.2.0 wraps (checked: the generated
	# schema has exactly the resources and properties of pulumi_docker 5.2.0, minus the native
	# docker.Image, which is pulumi-docker's own code). The module declares its
	# path as github.com/terraform-providers/terraform-provider-docker, so it is used through
	# a replace of that path.
	case "$1" in
	5.2.0) echo "github.com/kreuzwerker/terraform-provider-docker@v0.0.0-20260916201441-96d331c98ff4" ;;
	*) return 1 ;;
	esac
}

# --- small helpers ----------------------------------------------------------------------
log() { printf '[engine] %s\n' "$*" >&2; }
die() {
	printf '[engine] error: %s\n' "$*" >&2
	exit 1
}

pin() { # pin NAME -> version from "NAME==X" in requirements.txt
	local v
	v="$(sed -n "s/^[[:space:]]*$1[[:space:]]*==[[:space:]]*\([^[:space:];#]*\).*/\1/p" "$REQUIREMENTS" | head -n1)"
	[ -n "$v" ] || die "no '$1==' line in $REQUIREMENTS"
	printf '%s' "$v"
}

usage() {
	sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

MODE=bin
case "${1:-}" in
"") ;;
--print-env) MODE="env" ;;
-h | --help)
	usage
	exit 0
	;;
*)
	usage
	die "unknown argument: $1"
	;;
esac

[ -f "$REQUIREMENTS" ] || die "requirements file not found: $REQUIREMENTS"
PULUMI_V="$(pin pulumi)"
DOCKER_V="$(pin pulumi-docker)"
COMMAND_V="$(pin pulumi-command)"
RANDOM_V="$(pin pulumi-random)"

KEY="pulumi-${PULUMI_V}_docker-${DOCKER_V}_command-${COMMAND_V}_random-${RANDOM_V}_r${RECIPE}"
ROOT="${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/engine"
DIR="$ROOT/$KEY"
BIN="$DIR/bin"
PROVIDERS="$DIR/providers"
HOME_DIR="$DIR/home"
LOGS="$DIR/logs"
WORK="$DIR/work"

print_result() {
	if [ "$MODE" = env ]; then
		# shellcheck disable=SC2016 # "$PATH" is expanded by the shell that evals this
		printf 'export PATH=%q:"$PATH"\n' "$BIN"
		printf 'export PULUMI_HOME=%q\n' "$HOME_DIR"
		printf 'export PULUMI_SKIP_UPDATE_CHECK=true\n'
		printf 'export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true\n'
		printf 'export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true\n'
	else
		printf '%s\n' "$BIN"
	fi
}

# outputs_present: every file a complete build leaves (cheap checks, no go, no network).
outputs_present() {
	local f
	for f in "$BIN/pulumi" "$BIN/pulumi-language-python" "$BIN/pulumi-language-python-exec" \
		"$BIN/pulumi-resource-pulumi-python" "$PROVIDERS/pulumi-resource-docker" \
		"$PROVIDERS/pulumi-resource-command" "$PROVIDERS/pulumi-resource-random" \
		"$HOME_DIR/plugins/resource-docker-v$DOCKER_V" "$HOME_DIR/plugins/resource-command-v$COMMAND_V" \
		"$HOME_DIR/plugins/resource-random-v$RANDOM_V"; do
		[ -e "$f" ] || return 1
	done
}

# sha256 of a file's content (coreutils on Linux, shasum on macOS).
sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

# command_stamp: what .done-command must hold for the built command provider to be current:
# the sources it is built from (every command-provider/*.go, by name and content) and the
# build recipe. The SDK and version pins are already in KEY.
command_stamp() {
	local f out="recipe=$COMMAND_RECIPE"
	for f in "$HERE"/command-provider/*.go; do
		[ -f "$f" ] || die "no Go source in $HERE/command-provider"
		out="$out ${f##*/}=$(sha256_of "$f")"
	done
	printf '%s' "$out"
}
COMMAND_STAMP="$(command_stamp)"

# command_current: does the command provider's stamp match its source?
command_current() {
	local have=''
	[ -f "$DIR/.done-command" ] || return 1
	IFS= read -r have <"$DIR/.done-command" || true
	[ "$have" = "$COMMAND_STAMP" ]
}

# Warm path: everything built before; touch nothing else.
if [ -f "$DIR/.complete" ] && outputs_present && command_current; then
	print_result
	exit 0
fi

# --- cold path -----------------------------------------------------------------------------
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] ||
	die "Go is needed to build the Pulumi engine (once) and was not found: install Go >= 1.25.11 (https://go.dev/dl) and put it on PATH"
command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"
# pkg/v3 declares go 1.25.11; GOTOOLCHAIN=local below forbids fetching a newer Go.
GO_MIN=1.25.11
GO_HAVE="$(go env GOVERSION | sed 's/^go//')"
[ "$(printf '%s\n%s\n' "$GO_MIN" "$GO_HAVE" | sort -V | head -n1)" = "$GO_MIN" ] ||
	die "Go $GO_HAVE is too old to build the Pulumi engine: need Go >= $GO_MIN"

random_upstream "$RANDOM_V" >/dev/null ||
	die "pulumi-random==$RANDOM_V: no known upstream source for it; supported: 4.21.4 (see random_upstream in $0)"
docker_upstream "$DOCKER_V" >/dev/null ||
	die "pulumi-docker==$DOCKER_V: no known upstream source for it; supported: 5.2.0 (see docker_upstream in $0)"

# A marker with outputs missing (someone deleted files) or an edited command provider: forget
# the stamps of missing or stale pieces.
if [ -f "$DIR/.complete" ]; then
	if outputs_present; then
		log "command-provider source changed; rebuilding the command provider only"
	else
		log "cache $DIR is incomplete; rebuilding what is missing"
	fi
	rm -f "$DIR/.complete"
	[ -x "$BIN/pulumi" ] || rm -f "$DIR/.done-cli"
	[ -x "$BIN/pulumi-language-python" ] || rm -f "$DIR/.done-language-python"
	if [ ! -x "$BIN/pulumi-language-python-exec" ] || [ ! -x "$BIN/pulumi-resource-pulumi-python" ]; then
		rm -f "$DIR/.done-python-scripts"
	fi
	for p in docker command random; do
		[ -x "$PROVIDERS/pulumi-resource-$p" ] || rm -f "$DIR/.done-$p"
	done
fi

mkdir -p "$ROOT" "$BIN" "$PROVIDERS" "$HOME_DIR" "$LOGS" "$WORK"

# One builder per key at a time (e.g. CI and a developer shell).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$DIR.lock"
	if ! flock -n 9; then
		log "another bootstrap is building $KEY; waiting for it"
		flock 9
	fi
	if [ -f "$DIR/.complete" ] && outputs_present && command_current; then
		print_result
		exit 0
	fi
fi

# Go settings for every build here:
# - module/build caches inside the cache root, so rebuilding one piece is fast;
# - only the module proxy (no "direct": GitHub is unreachable);
# - GOSUMDB=off because sum.golang.org is not reachable from here (downloads still get
#   recorded in each throwaway module's go.sum);
# - -mod=mod lets go complete the throwaway go.mod files; GOWORK=off ignores any go.work;
# - GOTOOLCHAIN=local: never try to download another Go;
# - CGO_ENABLED=0: static binaries, no C toolchain needed.
export GOMODCACHE="$ROOT/go/mod"
export GOCACHE="$ROOT/go/build"
export GOPROXY="${MEDUSA_BG_GOPROXY:-https://proxy.golang.org}"
export GOSUMDB=off GONOSUMDB='' GONOSUMCHECK='' GOPRIVATE='' GONOPROXY=''
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0
# Two cores here: keep the build from starving everything else.
GO_BUILD=(nice -n 10 go build -p 2 -trimpath)

log "building Pulumi engine $KEY (first time only; tens of minutes on 2 cores)"
log "go: $(go version | cut -d' ' -f3-); cache: $DIR"

# step NAME FUNCTION [STAMP]: run FUNCTION once, logging to logs/NAME.log. The stamp file
# .done-NAME holds STAMP (default: empty); a stamp file holding anything else is stale and
# the piece is built again.
step() {
	local name="$1" fn="$2" stamp="${3:-}" t0 t1 have=''
	if [ -f "$DIR/.done-$name" ]; then
		IFS= read -r have <"$DIR/.done-$name" || true
		if [ "$have" = "$stamp" ]; then
			log "$name: cached"
			return 0
		fi
		log "$name: stale (its sources changed)"
		rm -f "$DIR/.done-$name"
	fi
	log "$name: building (log: $LOGS/$name.log)"
	t0=$(date +%s)
	# Not "if ! (...)": bash ignores set -e inside a condition, so a failed go build would
	# not stop the piece. Run it as a plain command with errexit on and check the status.
	local rc=0
	set +e
	(
		set -e
		"$fn"
	) >"$LOGS/$name.log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -ne 0 ]; then
		log "$name: FAILED; last lines of $LOGS/$name.log:"
		tail -n 40 "$LOGS/$name.log" >&2
		exit 1
	fi
	t1=$(date +%s)
	printf '%s %ss\n' "$name" "$((t1 - t0))" >>"$LOGS/timings.txt"
	log "$name: done in $((t1 - t0))s"
	printf '%s' "$stamp" >"$DIR/.done-$name"
}

# new_module DIR MODULE: a throwaway module to build in. Go ignores replace directives of
# dependencies, so every wrapper repeats the ones the real modules use.
new_module() {
	rm -rf "$1"
	mkdir -p "$1"
	(cd "$1" && go mod init "$2" && go mod edit -go=1.25.11 -replace="$CLIPBOARD_REPLACE")
}

# ---- the pieces -----------------------------------------------------------------------------

build_cli() {
	local w="$WORK/cli"
	new_module "$w" medusa-bg/engine-build/pulumi
	cd "$w"
	# Only require the module: "go get .../cmd/pulumi@v" would first ask the proxy for a module
	# named .../cmd/pulumi, and this proxy answers 403 (not 404) for unknown paths, which stops go.
	go mod edit -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_V"
	"${GO_BUILD[@]}" -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_V" \
		-o "$BIN/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
	"$BIN/pulumi" version
}

build_language_host() {
	local w="$WORK/language-python"
	new_module "$w" medusa-bg/engine-build/language-python
	cd "$w"
	go mod edit -require="$LANGHOST_MODULE@$LANGHOST_VERSION" \
		-require="github.com/pulumi/pulumi/pkg/v3@$LANGHOST_PULUMI" \
		-require="github.com/pulumi/pulumi/sdk/v3@$LANGHOST_PULUMI"
	"${GO_BUILD[@]}" -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_VERSION" \
		-o "$BIN/pulumi-language-python" "$LANGHOST_MODULE"
}

install_python_scripts() {
	# The exec script (run by the language host) and the dynamic-provider launcher ship inside
	# the sdk/v3 module zip; take them from the same release as the CLI.
	local w="$WORK/python-scripts" dir
	new_module "$w" medusa-bg/engine-build/python-scripts
	cd "$w"
	go mod download "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_V"
	dir="$GOMODCACHE/github.com/pulumi/pulumi/sdk/v3@v$PULUMI_V/python"
	install -m 0755 "$dir/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
	install -m 0755 "$dir/dist/pulumi-resource-pulumi-python" "$BIN/pulumi-resource-pulumi-python"
}

# build_bridged NAME VERSION UPSTREAM_MODULE@VERSION UPSTREAM_PATH [build tags]
# Copies our mapping from <NAME>-provider/, adds a shim module that lives under the upstream
# module path (so it may import the upstream's internal provider package), runs tfgen to make
# schema.json + bridge-metadata.json, then builds the plugin embedding both.
build_bridged() {
	local name="$1" version="$2" upstream="$3" path="$4" tags="${5:-}"
	local w="$WORK/$name" umod="${upstream%@*}" uver="${upstream#*@}"
	new_module "$w" "medusa-bg/engine-build/$name"
	cp -R "$HERE/$name-provider/." "$w/"
	cd "$w"
	# The upstream is required at its proxy version, or, when the proxy serves it under another
	# path than the one its go.mod declares (docker), through a replace of the declared path.
	local req="$path@$uver"
	if [ "$umod" != "$path" ]; then
		req="$path@v0.0.0"
		go mod edit -replace="$path=$umod@$uver"
	fi
	(cd shim && go mod init "$path/shim" && go mod edit -go=1.25.8 -require="$req")
	# Same bridge as the released providers; pkg/sdk at the CLI's version, so the big shared
	# packages are compiled once for all pieces (the bridge builds fine against it).
	go mod edit -replace="$TF_SDK_REPLACE" \
		-replace="$path/shim=./shim" \
		-require="$path/shim@v0.0.0" \
		-require="$req" \
		-require="github.com/pulumi/pulumi-terraform-bridge/v3@$BRIDGE_VERSION" \
		-require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_V" \
		-require="github.com/pulumi/pulumi/sdk/v3@v$PULUMI_V"
	local ld="-s -w -X main.version=$version"
	"${GO_BUILD[@]}" ${tags:+-tags "$tags"} -ldflags "$ld" -o "$w/pulumi-tfgen-$name" "./cmd/pulumi-tfgen-$name"
	mkdir -p "$w/gen"
	"$w/pulumi-tfgen-$name" schema --out "$w/gen" --skip-docs --skip-examples
	cp "$w/gen/schema.json" "$w/gen/bridge-metadata.json" "$w/cmd/pulumi-resource-$name/"
	"${GO_BUILD[@]}" ${tags:+-tags "$tags"} -ldflags "$ld" -o "$PROVIDERS/pulumi-resource-$name" "./cmd/pulumi-resource-$name"
}

build_random() {
	build_bridged random "$RANDOM_V" "$(random_upstream "$RANDOM_V")" \
		github.com/terraform-providers/terraform-provider-random
}

build_docker() {
	# no_compose: upstream's own build tag that leaves out docker_compose (a plugin-framework
	# resource pulumi-docker does not expose) and its large dependency tree.
	build_bridged docker "$DOCKER_V" "$(docker_upstream "$DOCKER_V")" \
		github.com/terraform-providers/terraform-provider-docker no_compose
}

build_command() {
	local w="$WORK/command"
	new_module "$w" medusa-bg/engine-build/command
	cp "$HERE"/command-provider/*.go "$w/"
	cd "$w"
	go mod edit -require="github.com/pulumi/pulumi/sdk/v3@v$PULUMI_V"
	"${GO_BUILD[@]}" -ldflags "-s -w -X main.version=$COMMAND_V" -o "$PROVIDERS/pulumi-resource-command" .
}

register_plugins() {
	# Registered in our own PULUMI_HOME under the pinned versions; the engine then finds them
	# without any download (automatic acquisition is disabled in the printed env).
	export PULUMI_HOME="$HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
	local p v
	for p in docker:"$DOCKER_V" command:"$COMMAND_V" random:"$RANDOM_V"; do
		v="${p#*:}"
		p="${p%%:*}"
		rm -rf "$HOME_DIR/plugins/resource-$p-v"*
		"$BIN/pulumi" plugin install resource "$p" "$v" --file "$PROVIDERS/pulumi-resource-$p"
	done
	"$BIN/pulumi" plugin ls
}

T0=$(date +%s)
: >>"$LOGS/timings.txt"
step cli build_cli
step language-python build_language_host
step python-scripts install_python_scripts
step command build_command "$COMMAND_STAMP"
step random build_random
step docker build_docker
rm -f "$DIR/.done-plugins" # always re-register after any rebuild
step plugins register_plugins

printf 'key=%s\nbuilt=%s\n' "$KEY" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$DIR/.complete"
log "engine ready in $(($(date +%s) - T0))s: $BIN"
print_result
