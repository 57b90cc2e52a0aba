# shellcheck shell=bash
# Source me (bash): puts the locally built Pulumi engine on PATH and points DOCKER_HOST at the
# harness's own dockerd, building/starting whatever is missing. Used by `make up`, `make test`
# and the e2e suite.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
eval "$("$_repo/scripts/engine/bootstrap.sh" --print-env)" || return 1
"$_repo/harness/dockerd.sh" start >&2 || return 1
eval "$("$_repo/harness/dockerd.sh" env)"
unset _repo
