#!/bin/sh
# acme/renew.sh — keeps the router's TLS certificate issued and renewed by an ACME CA over
# HTTP-01, with lego. The long-lived command of the ACME container (lego binary + a POSIX sh:
# busybox ash or dash); nginx picks a new certificate up on its next handshake, so nothing is
# reloaded or restarted.
#
#   renew.sh loop    obtain if there is no certificate, else renew when due; install; sleep
#                    ACME_CHECK_SECONDS; repeat (a failure retries sooner: 5 min, doubling)
#   renew.sh once    obtain, or renew if due, once. Exit 0: a new certificate was installed;
#                    3: none was due, the installed one stays; 1: failed; 2: bad usage or env
#   renew.sh now     renew (or obtain) now, due or not, for operators and tests. Exit 0/1/2
#
# Environment:
#   ACME_DOMAIN          the one name on the certificate (lowercase; HTTP-01 has no wildcards)
#   ACME_EMAIL           optional: the ACME account's contact (lego names the account after
#                        it; without one, "default")
#   ACME_DIRECTORY_URL   the CA's directory URL (Let's Encrypt, or Pebble in tests)
#   ACME_WEBROOT         lego's --http.webroot: the challenge for token T is written to
#                        $ACME_WEBROOT/.well-known/acme-challenge/T, so nginx serves
#                        `location ^~ /.well-known/acme-challenge/ { root $ACME_WEBROOT; }`
#   ACME_STATE_DIR       lego's --path (account key, certificates/<domain>.{crt,key,json})
#   ACME_TLS_DIR         where nginx reads fullchain.pem and privkey.pem
#   ACME_TLS_GROUP       optional group (name or gid) of both files. nginx loads a certificate
#                        given with a variable in every handshake, in the worker, so the
#                        worker's user must be able to read the key: 0640 with this group
#   ACME_KEY_MODE        optional mode of privkey.pem (default 0640 with ACME_TLS_GROUP, else
#                        0600), e.g. 0644 in a volume only nginx and this container mount
#   ACME_RENEW_DAYS      renew when fewer days than this are left (default 30); the CA's
#                        renewal info (ARI) can make it sooner
#   ACME_CHECK_SECONDS   loop: time between checks (default 43200)
#   ACME_RETRY_SECONDS   loop: first wait after a failure, doubled up to ACME_CHECK_SECONDS
#                        (default 300: Let's Encrypt allows 5 failed validations an hour)
#   ACME_LEGO            the lego binary (default `lego` on PATH; /lego in goacme/lego)
#   LEGO_CA_CERTIFICATES lego's own: a PEM file of the CA to trust for the directory (tests)
#
# Renewals reuse the private key (lego --reuse-key), so only fullchain.pem changes, in one
# rename(2): a handshake reads either the old or the new certificate, always with a key that
# matches. A first issuance writes privkey.pem before fullchain.pem for the same reason.
# Nothing here prints key material; lego's own output goes to $ACME_STATE_DIR/lego-last-run.log
# and its tail to stderr when it fails.

set -eu

LEGO="${ACME_LEGO:-lego}"
RENEW_DAYS="${ACME_RENEW_DAYS:-30}"
CHECK_SECONDS="${ACME_CHECK_SECONDS:-43200}"
RETRY_SECONDS="${ACME_RETRY_SECONDS:-300}"

EXIT_INSTALLED=0
EXIT_FAILED=1
EXIT_USAGE=2
EXIT_NOT_DUE=3

log() { printf '%s renew.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
warn() { printf '%s renew.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
usage_error() {
	warn "error: $*"
	exit "$EXIT_USAGE"
}

usage() {
	printf 'usage: %s loop|once|now   (environment: see the header of this script)\n' "$0" >&2
	exit "$EXIT_USAGE"
}

require_env() {
	for name in "$@"; do
		eval "value=\${$name:-}"
		# shellcheck disable=SC2154 # set by the eval above
		[ -n "$value" ] || usage_error "$name is not set"
	done
}

require_count() { # NAME VALUE: a whole number of at least 1
	case "$2" in
	'' | *[!0-9]* | 0) usage_error "$1 must be a whole number >= 1, got '$2'" ;;
	esac
}

check_env() {
	require_env ACME_DOMAIN ACME_DIRECTORY_URL ACME_WEBROOT ACME_STATE_DIR ACME_TLS_DIR
	# lego names its files after the domain (sanitized); a plain lowercase name keeps that name
	# the same as the domain, so the paths below are lego's.
	case "$ACME_DOMAIN" in
	*[!a-z0-9.-]* | .* | *. | *..*) usage_error "ACME_DOMAIN must be a lowercase host name, got '$ACME_DOMAIN'" ;;
	esac
	require_count ACME_RENEW_DAYS "$RENEW_DAYS"
	require_count ACME_CHECK_SECONDS "$CHECK_SECONDS"
	require_count ACME_RETRY_SECONDS "$RETRY_SECONDS"
	KEY_MODE=0600
	[ -z "${ACME_TLS_GROUP:-}" ] || KEY_MODE=0640
	if [ -n "${ACME_KEY_MODE:-}" ]; then
		case "$ACME_KEY_MODE" in
		[0-7][0-7][0-7] | 0[0-7][0-7][0-7]) KEY_MODE="$ACME_KEY_MODE" ;;
		*) usage_error "ACME_KEY_MODE must be an octal mode like 0640, got '$ACME_KEY_MODE'" ;;
		esac
	fi
	command -v "$LEGO" >/dev/null 2>&1 || usage_error "lego binary '$LEGO' not found (ACME_LEGO)"
	[ -d "$ACME_WEBROOT" ] || usage_error "ACME_WEBROOT $ACME_WEBROOT is not a directory"

	STATE_CERT="$ACME_STATE_DIR/certificates/$ACME_DOMAIN.crt"
	STATE_KEY="$ACME_STATE_DIR/certificates/$ACME_DOMAIN.key"
	TLS_CERT="$ACME_TLS_DIR/fullchain.pem"
	TLS_KEY="$ACME_TLS_DIR/privkey.pem"
	LEGO_LOG="$ACME_STATE_DIR/lego-last-run.log"
}

# --- install: lego's files -> ACME_TLS_DIR, each by one rename ---------------------------------

put() { # SOURCE TARGET MODE: copy to a temporary file beside TARGET, then rename over it
	tmp="$(mktemp "$ACME_TLS_DIR/.$(basename "$2").XXXXXX")" || return 1
	if cat "$1" >"$tmp" && chmod "$3" "$tmp" && { [ -z "${ACME_TLS_GROUP:-}" ] || chgrp "$ACME_TLS_GROUP" "$tmp"; } &&
		mv -f "$tmp" "$2"; then
		return 0
	fi
	rm -f "$tmp"
	return 1
}

looks_like() { # FILE MARKER: the file is non-empty PEM with that block (never printed)
	[ -s "$1" ] && grep -q -- "-----BEGIN $2" "$1"
}

# Sets INSTALLED to "yes" when ACME_TLS_DIR got a new certificate.
install_files() {
	INSTALLED=no
	if ! looks_like "$STATE_CERT" "CERTIFICATE"; then
		warn "lego left no certificate at $STATE_CERT"
		return 1
	fi
	if ! looks_like "$STATE_KEY" ""; then
		warn "lego left no private key at $STATE_KEY"
		return 1
	fi
	mkdir -p "$ACME_TLS_DIR" || return 1
	if ! cmp -s "$STATE_KEY" "$TLS_KEY"; then
		# Renewals keep the key, so only a first issuance (or a lost state directory) gets here;
		# with a certificate already in place, handshakes pair it with the new key until the new
		# fullchain.pem follows a moment later.
		[ ! -e "$TLS_CERT" ] || log "the key changed: installing privkey.pem, then fullchain.pem"
		put "$STATE_KEY" "$TLS_KEY" "$KEY_MODE" || return 1
	fi
	if ! cmp -s "$STATE_CERT" "$TLS_CERT"; then
		put "$STATE_CERT" "$TLS_CERT" 0644 || return 1
		INSTALLED=yes
		log "installed $TLS_CERT for $ACME_DOMAIN"
	fi
}

# --- one pass: lego run, then install ----------------------------------------------------------

# pass due|force: returns EXIT_INSTALLED, EXIT_NOT_DUE or EXIT_FAILED. Runs in a subshell
# (run_pass), where `set -e` does not hold: every step checks its own status.
pass() {
	force="$1"
	if ! mkdir -p "$ACME_STATE_DIR" || ! chmod 0700 "$ACME_STATE_DIR"; then
		warn "cannot create ACME_STATE_DIR $ACME_STATE_DIR"
		return "$EXIT_FAILED"
	fi
	# One lego at a time on a state directory (`now` through `docker exec` while `loop` runs).
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$ACME_STATE_DIR/.renew.lock" && flock 9 || return "$EXIT_FAILED"
	fi

	if [ -s "$STATE_CERT" ]; then
		action=renew
		[ "$force" = due ] || action="forced renewal"
	else
		action=obtain
	fi
	log "$action: $ACME_DOMAIN from $ACME_DIRECTORY_URL"

	set -- --log.format text run --accept-tos --server "$ACME_DIRECTORY_URL" \
		--domains "$ACME_DOMAIN" --path "$ACME_STATE_DIR" --http --http.webroot "$ACME_WEBROOT" \
		--reuse-key --renew-days "$RENEW_DAYS"
	[ -z "${ACME_EMAIL:-}" ] || set -- "$@" --email "$ACME_EMAIL"
	if [ "$action" = obtain ] && looks_like "$TLS_KEY" ""; then
		# lego's state is gone but nginx has a key: keep it, so the key does not change under nginx.
		set -- "$@" --private-key "$TLS_KEY"
	fi
	# lego waits up to 8 minutes before a renewal when its output is not a terminal, so that
	# clients started by cron do not all arrive at the CA at once: loop keeps that, once and now
	# do not.
	[ "$MODE" = loop ] || set -- "$@" --no-random-sleep
	[ "$force" = due ] || set -- "$@" --renew-force

	# lego asks for 0644 challenge files and 0755 directories: nginx's workers must read them.
	umask 022
	status=0
	"$LEGO" "$@" >"$LEGO_LOG" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		log "$action failed: lego exited $status (its log: $LEGO_LOG)"
		tail -n 20 "$LEGO_LOG" >&2
		return "$EXIT_FAILED"
	fi
	if ! install_files; then
		log "install failed for $ACME_DOMAIN"
		return "$EXIT_FAILED"
	fi
	if [ "$INSTALLED" = yes ]; then
		return "$EXIT_INSTALLED"
	fi
	skipped="$(sed -n 's/.*msg="\(Skip renewal[^"]*\)".*/\1/p' "$LEGO_LOG" | head -n 1)"
	log "not due: ${skipped:-the installed certificate is current}"
	return "$EXIT_NOT_DUE"
}

# The lock (fd 9) and the umask end with the subshell.
run_pass() {
	code=0
	(pass "$1") || code=$?
	return "$code"
}

# --- loop ----------------------------------------------------------------------------------------

sleeper=""
stop() {
	[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
	log "stopped"
	exit 0
}

nap() { # SECONDS; interruptible: sh runs a trap only once a foreground child ends
	sleep "$1" &
	sleeper=$!
	wait "$sleeper" || true
	sleeper=""
}

loop() {
	# PID 1 in a container ignores SIGTERM unless it has a handler: without one, `docker stop`
	# waits its whole timeout and then kills.
	trap stop TERM INT
	retry="$RETRY_SECONDS"
	while :; do
		code=0
		run_pass due || code=$?
		if [ "$code" -eq "$EXIT_FAILED" ]; then
			wait_for="$retry"
			retry=$((retry * 2))
			[ "$retry" -le "$CHECK_SECONDS" ] || retry="$CHECK_SECONDS"
			[ "$wait_for" -le "$CHECK_SECONDS" ] || wait_for="$CHECK_SECONDS"
		else
			wait_for="$CHECK_SECONDS"
			retry="$RETRY_SECONDS"
		fi
		log "next check in ${wait_for}s"
		nap "$wait_for"
	done
}

[ "$#" -eq 1 ] || usage
MODE="$1"
case "$MODE" in
loop)
	check_env
	loop
	;;
once)
	check_env
	code=0
	run_pass due || code=$?
	exit "$code"
	;;
now)
	check_env
	code=0
	run_pass force || code=$?
	# Forced, a pass that changed nothing means lego renewed to the same bytes: not a success.
	[ "$code" -ne "$EXIT_NOT_DUE" ] || code="$EXIT_FAILED"
	exit "$code"
	;;
*) usage ;;
esac
