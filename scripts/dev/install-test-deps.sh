#!/usr/bin/env bash
# Installs what the component tests run for real (Redis, PostgreSQL 15, wrk; nginx built from
# source with Debian's compiler and headers; Pebble and lego for the ACME tests, from the Go
# module proxy) and the
# workflow linters' shell checker (Debian shellcheck, which actionlint runs on run: blocks)
# from Debian, the Python tools into .venv, and actionlint (scripts/dev/install-actionlint.sh).
# Idempotent: a warm machine returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
# What scripts/dev/install-nginx.sh compiles nginx with.
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v make >/dev/null || need+=(make)
[ -f /usr/include/pcre2.h ] || need+=(libpcre2-dev)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v ssh >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
    echo "install-test-deps: apt-get install ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    # policy-rc.d keeps Debian from starting the system's own nginx/redis/postgres services:
    # the tests start their own on loopback ports.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt

# Built from the Go module proxy once, then cached outside the repo (see the scripts).
scripts/dev/install-actionlint.sh >/dev/null
scripts/dev/install-acme-tools.sh >/dev/null
# Built from crates.io's copy of the nginx source once, then cached outside the repo.
scripts/dev/install-nginx.sh >/dev/null
