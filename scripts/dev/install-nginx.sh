#!/usr/bin/env bash
# scripts/dev/install-nginx.sh — build (once) and cache the nginx the router tests run; prints
# the path of the nginx binary (last line of stdout).
#
#   scripts/dev/install-nginx.sh            ensure it is built; print the binary's path
#   "$(scripts/dev/install-nginx.sh)" -V
#
# Why not Debian's: the router pools upstream connections with `server NAME resolve` inside an
# `upstream` block (a color's address is re-resolved at run time, so the router starts with no
# color present), which nginx has only since 1.27.3; bookworm ships 1.22. nginx.org is not
# reachable from every machine that runs the tests, so the source comes from crates.io's
# `nginx-src` crate (nginx's own Rust module SDK vendors the release tarball there), checked
# against the sha256 below. The same binary goes into the harness's router image
# (harness/images.sh), so the component tests and the e2e router run one nginx.
# Cache: ${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/tools/nginx-<version>/sbin/nginx
# A warm run only checks that the binary exists: no compiler, no network.

set -euo pipefail

NGINX_VERSION=1.28.3
CRATE=nginx-src-1.28.5+$NGINX_VERSION
# sha256 of the .crate file, as crates.io's index records it (`cksum`).
CRATE_SHA256=60c9192630560c017a18e1da5b4c5de9d78450923f17325752c6f0f7f3911c86
CRATE_URL="https://static.crates.io/crates/nginx-src/$CRATE.crate"

# Debian's own paths, so the binary drops into the bookworm image in place of Debian's nginx
# (its /etc/nginx, mime.types, www-data user and log links stay as they are). Only the modules
# the router uses beyond the default set are added; mail and stream are left out.
CONFIGURE_FLAGS=(
	--prefix=/usr/share/nginx
	--sbin-path=/usr/sbin/nginx
	--conf-path=/etc/nginx/nginx.conf
	--modules-path=/usr/lib/nginx/modules
	--error-log-path=/var/log/nginx/error.log
	--http-log-path=/var/log/nginx/access.log
	--pid-path=/run/nginx.pid
	--lock-path=/var/lock/nginx.lock
	--http-client-body-temp-path=/var/lib/nginx/body
	--http-proxy-temp-path=/var/lib/nginx/proxy
	--http-fastcgi-temp-path=/var/lib/nginx/fastcgi
	--http-uwsgi-temp-path=/var/lib/nginx/uwsgi
	--http-scgi-temp-path=/var/lib/nginx/scgi
	--with-threads
	--with-file-aio
	--with-http_ssl_module
	--with-http_v2_module
	--with-http_realip_module
	--with-http_stub_status_module
	--with-pcre-jit
)

ROOT="${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}/tools"
KEY="$NGINX_VERSION-$(printf '%s\n' "$CRATE_SHA256" "${CONFIGURE_FLAGS[@]}" | sha256sum | cut -c1-12)"
DIR="$ROOT/nginx-$KEY"
BINARY="$DIR/sbin/nginx"

log() { printf '[nginx] %s\n' "$*" >&2; }
die() {
	printf '[nginx] error: %s\n' "$*" >&2
	exit 1
}

if [ -x "$BINARY" ]; then
	printf '%s\n' "$BINARY"
	exit 0
fi

# --- cold path -----------------------------------------------------------------------------
for tool in cc make curl sha256sum tar; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is needed to build nginx (once): run scripts/dev/install-test-deps.sh"
done
for header in pcre2.h openssl/ssl.h zlib.h; do
	[ -f "/usr/include/$header" ] || [ -f "/usr/include/x86_64-linux-gnu/$header" ] ||
		die "/usr/include/$header is missing: run scripts/dev/install-test-deps.sh (libpcre2-dev libssl-dev zlib1g-dev)"
done

mkdir -p "$ROOT"
# One builder at a time (parallel test runs share the cache); the others wait, then reuse.
exec 9>"$ROOT/nginx-$KEY.lock"
flock 9
if [ -x "$BINARY" ]; then
	printf '%s\n' "$BINARY"
	exit 0
fi

work="$(mktemp -d "$ROOT/.nginx-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "fetching $CRATE from crates.io"
curl -fsS --retry 3 --max-time 120 -o "$work/src.crate" "$CRATE_URL" || die "could not download $CRATE_URL"
echo "$CRATE_SHA256  $work/src.crate" | sha256sum -c --quiet - || die "$CRATE_URL does not match its pinned sha256"
tar -xzf "$work/src.crate" -C "$work"
src="$work/$CRATE/nginx"
[ -x "$src/auto/configure" ] || die "$CRATE holds no nginx source tree at nginx/"

log "building nginx $NGINX_VERSION (about a minute)"
started=$(date +%s)
(
	cd "$src"
	# The crate keeps the release layout under auto/ (the tarball's ./configure is auto/configure).
	./auto/configure "${CONFIGURE_FLAGS[@]}" >"$work/configure.log" 2>&1 ||
		{ tail -30 "$work/configure.log" >&2; exit 1; }
	make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log" >&2; exit 1; }
) || die "the nginx build failed (log above)"

mkdir -p "$work/out/sbin"
cp "$src/objs/nginx" "$work/out/sbin/nginx"
# Read whole before matching: `nginx -V | grep -q` can die of SIGPIPE under pipefail.
reported="$("$work/out/sbin/nginx" -v 2>&1)"
case "$reported" in
*"nginx/$NGINX_VERSION") ;;
*) die "the built binary reports '$reported', not nginx/$NGINX_VERSION" ;;
esac
rm -rf "$DIR"
mv "$work/out" "$DIR"
log "built nginx $NGINX_VERSION in $(($(date +%s) - started)) s: $BINARY"
printf '%s\n' "$BINARY"
