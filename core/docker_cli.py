"""Docker CLI command lines run by pulumi-command, kept apart from the resources that run them.

The router's own command lines live with the parsing of their output in core/router_control.py.

They reach the engine through DOCKER_HOST, so the same lines work for a local socket and an
ssh:// host. No secret is ever part of a command line (rule 8): secrets travel on stdin or in
the environment of the docker CLI, named with `-e NAME` and no value.
"""

import re
import shlex
from collections.abc import Mapping, Sequence

from core.naming import BUILD_TAG_PREFIX


def _join(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def backup_database(postgres: str, color: str, image: str, keep: int) -> str:
    """pg_dump inside the Postgres container into its backups volume; prints `backup=<name>`.

    The dump is read back in full before it counts: pg_dump 15 exits 0 after writing an empty
    archive to a full disk (seen on this project's harness), so its exit code alone proves
    nothing. A dump that fails either way is removed and the error names it, with the space
    left on the volume: the release stops here, before its migration. Only a dump that counts
    lets older ones go (`keep` newest stay), so a failing release never thins out the backups.
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", image).strip("-")[:80]
    script = (
        "set -eu; name=$(date -u +%Y%m%dT%H%M%SZ)-" + color + "-" + slug + '.dump; file="/backups/$name"; '
        'if ! PGPASSWORD="$POSTGRES_PASSWORD" pg_dump -h 127.0.0.1 -U "$POSTGRES_USER" '
        '-d "${POSTGRES_DB:-$POSTGRES_USER}" -Fc -f "$file"; then why="pg_dump failed (its error is above)"; '
        'elif ! pg_restore --file=/dev/null "$file"; then '
        'why="the dump cannot be read back (pg_restore\'s error is above)"; '
        'else echo "backup=$name"; ' + prune_backups("/backups", keep) + '; exit 0; fi; '
        'rm -f "$file"; '
        'free=$(df -h /backups | awk \'NR == 2 {print $4}\'); '
        'echo "backup $name failed: $why; free space on the backups volume: $free;'
        ' the release stopped before its migration" >&2; exit 1'
    )
    return _join(["docker", "exec", postgres, "sh", "-c", script])


# The names backup_database gives its dumps: a UTC timestamp first, so name order is age order.
BACKUP_NAME_PATTERN = "^[0-9]{8}T[0-9]{6}Z-.+[.]dump$"


def prune_backups(directory: str, keep: int) -> str:
    """Shell that removes all but the `keep` newest dumps in `directory`, printing each name."""
    return (
        f"ls -1 {shlex.quote(directory)} | grep -E {shlex.quote(BACKUP_NAME_PATTERN)} | sort -r "
        f"| tail -n +{int(keep) + 1} | while read -r old; do "
        f'rm -f {shlex.quote(directory)}/"$old" && echo "pruned=$old"; done'
    )


def sync_postgres_password(postgres: str) -> str:
    """Sets the database role's password to the one the container was started with.

    The official image applies POSTGRES_PASSWORD only when it initialises an empty data
    directory; a kept volume (after `pulumi destroy`, or a rotated secret) would otherwise
    keep the old password and lock every client out. Runs over the container's Unix socket,
    which the image trusts, and passes the password as a psql variable read from the
    container's environment, so it is on no command line and quoted by psql.
    """
    script = (
        "set -eu; psql -v ON_ERROR_STOP=1 -qAt -U \"$POSTGRES_USER\" -d \"${POSTGRES_DB:-$POSTGRES_USER}\" "
        "-v role=\"$POSTGRES_USER\" -v password=\"$POSTGRES_PASSWORD\" <<'SQL'\n"
        "ALTER ROLE :\"role\" WITH PASSWORD :'password';\n"
        "SQL\n"
        "echo password-synced"
    )
    return _join(["docker", "exec", postgres, "sh", "-c", script])


def build_image(
    context: str,
    image_ref: str,
    args: Mapping[str, str],
    secret_files: Mapping[str, str],
    target: str | None,
) -> str:
    """`docker build` with BuildKit (DOCKER_BUILDKIT=1 comes from the command's environment).

    The full build log goes to a temporary file: on success only its tail and the image id are
    printed (the command's output is kept in state), on failure the last 80 lines go to
    stderr so `pulumi up` shows why. Secret files are BuildKit secrets, never layers.
    """
    argv = ["docker", "build", "--progress", "plain", "--tag", image_ref]
    for name in sorted(args):
        argv += ["--build-arg", f"{name}={args[name]}"]
    for secret_id in sorted(secret_files):
        argv += ["--secret", f"id={secret_id},src={secret_files[secret_id]}"]
    if target:
        argv += ["--target", target]
    argv.append(context)
    script = (
        'set -u; log=$(mktemp); trap \'rm -f "$log"\' EXIT; '
        f'if {_join(argv)} >"$log" 2>&1; then tail -n 3 "$log"; '
        f"docker image inspect --format 'image={{{{.Id}}}}' {shlex.quote(image_ref)}; "
        'else status=$?; tail -n 80 "$log" >&2; exit "$status"; fi'
    )
    return _join(["sh", "-c", script])


def run_migrations(
    container: str, network: str, image: str, env_names: Sequence[str], command: Sequence[str]
) -> str:
    """A one-off container of the new image runs the migrations once, before it serves.

    It has a fixed name, and a container of that name is removed first: a run killed
    mid-migration (SIGKILL of `pulumi up` leaves `docker run` and its container behind) must
    never go on migrating beside the next run's migration.
    """
    env_flags = [flag for name in sorted(env_names) for flag in ("-e", name)]
    remove = _join(["docker", "rm", "-f", container])
    run = _join(["docker", "run", "--rm", "--name", container, "--network", network, *env_flags, image, *command])
    return f"{remove} >/dev/null 2>&1 || true; exec {run}"


def prune_app_images(repository: str, release_ref: str, keep: int) -> str:
    """Removes old tags of the released image's repository; prints one line of counts.

    Kept: the released image (matched by ref and by id, so its other tags stay too), every
    image a container uses (the warm color's, another stack's), the `keep` newest of the
    other tags, and any image that is neither built by this program (`src-` tag) nor pulled
    from a registry: a hand-made or test image could not be had again if a rollback needs it.
    The idle color's image is not named here: it is in use when warm, and otherwise the newest
    of the rest, and naming it would make an idle-only config change touch this command.
    `docker image rm` is never forced, so a container created after the listing still keeps
    its image; that refusal and an image already gone count as skipped. Any other failure is
    printed and fails the command after the other removals (it runs again on the next
    release). Listing failures (engine unreachable) fail at once.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    fields = "{{.CreatedAt}}|{{.ID}}|{{.Repository}}|{{.Tag}}|{{.Digest}}"
    script = (
        f"set -uf; release={shlex.quote(release_ref)}\n"
        "containers=$(docker ps -aq --no-trunc) || exit 1\n"
        "protected=\" $release $({ docker image inspect --format '{{.Id}}' \"$release\"; "
        "[ -z \"$containers\" ] || docker inspect --format '{{.Image}}' $containers; } 2>/dev/null | tr '\\n' ' ') \"\n"
        # TZ=UTC: CreatedAt is printed in the CLI's zone; in UTC it sorts as text, newest first.
        f"listed=$(TZ=UTC docker image ls --no-trunc --digests --format '{fields}' "
        f"--filter reference={shlex.quote(repository)}) || exit 1\n"
        "old=$(printf '%s\\n' \"$listed\" | LC_ALL=C sort -r | while IFS='|' read -r created id repo tag digest; do\n"
        '  [ -n "$id" ] || continue\n'
        '  if [ "$tag" = "<none>" ]; then ref="$repo@$digest"; else ref="$repo:$tag"; fi\n'
        '  case "$protected" in *" $id "*|*" $ref "*) continue ;; esac\n'
        f'  case "$tag" in {BUILD_TAG_PREFIX}*) ;; *) [ "$digest" != "<none>" ] || continue ;; esac\n'
        '  echo "$ref"\n'
        f"done | tail -n +{keep + 1})\n"
        "removed=0; skipped=0; failed=0\n"
        "for ref in $old; do\n"
        '  if out=$(docker image rm "$ref" 2>&1); then removed=$((removed + 1))\n'
        '  else case "$out" in\n'
        '    *conflict*|*"No such image"*) skipped=$((skipped + 1)) ;;\n'
        '    *) failed=$((failed + 1)); echo "image-prune: could not remove $ref: $out" >&2 ;;\n'
        "  esac; fi\n"
        "done\n"
        "total=$(printf '%s\\n' \"$listed\" | grep -c .)\n"
        'echo "app images: kept=$((total - removed)) removed=$removed skipped=$skipped failed=$failed"\n'
        '[ "$failed" -eq 0 ]'
    )
    return _join(["sh", "-c", script])
