"""Docker CLI command lines run by pulumi-command, kept apart from the resources that run them.

They reach the engine through DOCKER_HOST, so the same lines work for a local socket and an
ssh:// host. No secret is ever part of a command line (rule 8): secrets travel on stdin or in
the environment of the docker CLI, named with `-e NAME` and no value.
"""

import re
import shlex
from collections.abc import Mapping, Sequence

from components.router_config import SCRIPT_PATH


def _join(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def router_switch_argv(router: str, route: str, color: str) -> list[str]:
    return ["docker", "exec", router, "sh", SCRIPT_PATH, "switch", route, color]


def router_switch(router: str, route: str, color: str) -> str:
    return _join(router_switch_argv(router, route, color))


def router_apply(router: str) -> str:
    # The rendered config arrives on stdin.
    return _join(["docker", "exec", "-i", router, "sh", SCRIPT_PATH, "apply"])


def router_install_script(router: str) -> str:
    # The control script arrives on stdin; it is renamed into place so a half-written copy
    # is never run.
    folder = SCRIPT_PATH.rsplit("/", 1)[0]
    install = f"mkdir -p {folder} && cat > {SCRIPT_PATH}.new && mv -f {SCRIPT_PATH}.new {SCRIPT_PATH}"
    return _join(["docker", "exec", "-i", router, "sh", "-c", install])


def backup_database(postgres: str, color: str, image: str) -> str:
    """pg_dump inside the Postgres container into its backups volume; prints `backup=<name>`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", image).strip("-")[:80]
    script = (
        "set -eu; name=$(date -u +%Y%m%dT%H%M%SZ)-" + color + "-" + slug + ".dump; "
        'PGPASSWORD="$POSTGRES_PASSWORD" pg_dump -h 127.0.0.1 -U "$POSTGRES_USER" '
        '-d "${POSTGRES_DB:-$POSTGRES_USER}" -Fc -f "/backups/$name"; echo "backup=$name"'
    )
    return _join(["docker", "exec", postgres, "sh", "-c", script])


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


def run_migrations(network: str, image: str, env_names: Sequence[str], command: Sequence[str]) -> str:
    """A one-off container of the new image runs the migrations once, before it serves."""
    env_flags = [flag for name in sorted(env_names) for flag in ("-e", name)]
    return _join(["docker", "run", "--rm", "--network", network, *env_flags, image, *command])
