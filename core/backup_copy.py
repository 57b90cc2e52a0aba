"""The off-host copy of a pre-migration dump (backups.copyTo): command lines, kept pure.

The copy runs in a one-off container of the router's image, which the health gate already needs
to have curl >= 7.84; curl signs the request itself (AWS Signature V4), so no AWS CLI or SDK is
needed on the host or in an image. The container mounts the backups volume read-only and joins
the stack's network.

What makes a copy count: S3 checks the body against the SHA-256 the request was signed with
(x-amz-content-sha256), so a truncated or altered upload is refused; then a HEAD must report the
dump's size. The release stops if either fails, before its migration, with the backup's name.

Credentials reach the container as `-e NAME` (values in the docker CLI's environment) and
reach curl on stdin as a config file (`-K -`): on no command line (rule 8).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from core.restore import BACKUPS_DIR, valid_backup_name

ACCESS_KEY_ENV = "BACKUP_COPY_ACCESS_KEY_ID"
SECRET_KEY_ENV = "BACKUP_COPY_SECRET_ACCESS_KEY"
# x-amz-content-sha256 of a request without a body (the HEAD).
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MOUNT = BACKUPS_DIR


@dataclass(frozen=True)
class CopyTarget:
    endpoint: str  # scheme://host[:port], no path (settings validate it)
    bucket: str
    region: str
    prefix: str

    def object_url(self, backup: str) -> str:
        """Path-style, which AWS and every S3-compatible store answer."""
        return f"{self.endpoint}/{self.bucket}/{self.prefix}/{backup}"

    def describe(self, backup: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{backup} at {self.endpoint}"


# The `user = "ID:SECRET"` line of a curl config, in $auth. The credentials' `\` and `"` are
# escaped for curl's quoted strings; printf is a shell builtin, so they are on no argv either.
CURL_AUTH = (
    "esc() { printf '%s' \"$1\" | sed 's/[\\\\\"]/\\\\&/g'; }; "
    'auth=$(printf \'user = "%s:%s"\' "$(esc "$' + ACCESS_KEY_ENV + '")" "$(esc "$' + SECRET_KEY_ENV + '")")'
)

# $1 the dump's name, $2 its object URL, $3 the region.
COPY_SCRIPT = (
    'set -eu; file="' + MOUNT + '/$1"; url="$2"; region="$3"; ' + CURL_AUTH + '; '
    's3() { printf \'%s\\n\' "$auth" | curl --silent --show-error --fail-with-body --retry 3 '
    '--aws-sigv4 "aws:amz:$region:s3" -K - "$@"; }; '
    'fail() { echo "the copy of backup $1 to $url failed: $2; the dump is still on the backups volume; '
    'the release stopped before its migration" >&2; exit 1; }; '
    '[ -f "$file" ] || fail "$1" "it is not on the backups volume"; '
    'sum=$(sha256sum "$file" | cut -d " " -f 1); size=$(stat -c %s "$file"); '
    'out=$(s3 -H "x-amz-content-sha256: $sum" -T "$file" "$url" 2>&1) || fail "$1" "$out"; '
    'head=$(s3 --head -H "x-amz-content-sha256: ' + EMPTY_SHA256 + '" "$url" 2>&1) || fail "$1" "$head"; '
    "got=$(printf '%s\\n' \"$head\" | tr -d '\\r' | awk 'tolower($1) == \"content-length:\" {print $2}'); "
    '[ "$got" = "$size" ] || fail "$1" "the bucket holds ${got:-no} bytes, the dump has $size"; '
    'echo "copied=$url ($size bytes, sha256 $sum)"'
)


def copy_backup(
    backup: str, target: CopyTarget, *, image: str, network: str, volume: str, container: str
) -> Sequence[str]:
    """The docker command line that copies /backups/BACKUP to the bucket."""
    if not valid_backup_name(backup):
        raise ValueError(f"{backup!r} is not a backup name")
    return [
        "docker", "run", "--rm", "--name", container, "--network", network,
        "-v", f"{volume}:{MOUNT}:ro", "-e", ACCESS_KEY_ENV, "-e", SECRET_KEY_ENV,
        "--entrypoint", "sh", image, "-c", COPY_SCRIPT, "copy",
        backup, target.object_url(backup), target.region,
    ]


def copy_backup_line(backup: str, target: CopyTarget, **where: str) -> str:
    return " ".join(shlex.quote(arg) for arg in copy_backup(backup, target, **where))
