"""Docker CLI command lines run by pulumi-command, kept apart from the resources that run them.

The router's own command lines live with the parsing of their output in core/router_control.py.

They reach the engine through DOCKER_HOST, so the same lines work for a local socket and an
ssh:// host. No secret is ever part of a command line (rule 8): secrets travel on stdin or in
the environment of the docker CLI, named with `-e NAME` and no value.
"""

import re
import shlex
from collections.abc import Mapping, Sequence

from core.naming import BUILD_TAG_PREFIX, POSTGRES_ADMIN_ROLE, POSTGRES_BOOTSTRAP_ROLE


def _join(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def backup_database(postgres: str, color: str, image: str, keep: int | None) -> str:
    """pg_dump inside the Postgres container into its backups volume; prints `backup=<name>`."""
    return _join(["docker", "exec", postgres, "sh", "-c", backup_script(color, image, keep)])


def backup_script(color: str, image: str, keep: int | None) -> str:
    """The `sh` script of backup_database, run in the Postgres container.

    The dump is read back in full before it counts: pg_dump 15 exits 0 after writing an empty
    archive to a full disk (seen on this project's harness), so its exit code alone proves
    nothing. A dump that fails either way is removed and the error names it, with the space
    left on the volume: the release stops here, before its migration. Only a dump that counts
    lets older ones go (`keep` newest stay; None: none go), so a failing release never thins out
    the backups.
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", image).strip("-")[:80]
    return (
        "set -eu; name=$(date -u +%Y%m%dT%H%M%SZ)-" + color + "-" + slug + '.dump; file="/backups/$name"; '
        'if ! PGPASSWORD="$POSTGRES_PASSWORD" pg_dump -h 127.0.0.1 -U "$POSTGRES_USER" '
        '-d "${POSTGRES_DB:-$POSTGRES_USER}" -Fc -f "$file"; then why="pg_dump failed (its error is above)"; '
        'elif ! pg_restore --file=/dev/null "$file"; then '
        'why="the dump cannot be read back (pg_restore\'s error is above)"; '
        'else echo "backup=$name"; ' + (prune_backups("/backups", keep) + "; " if keep is not None else "")
        + 'exit 0; fi; '
        'rm -f "$file"; '
        'free=$(df -h /backups | awk \'NR == 2 {print $4}\'); '
        'echo "backup $name failed: $why; free space on the backups volume: $free;'
        ' the release stopped before its migration" >&2; exit 1'
    )


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
    """Makes the database role an owner without superuser rights, with the container's password.

    The official image makes POSTGRES_USER the bootstrap superuser, and an app connected as a
    superuser turns any SQL injection into a shell (`COPY ... TO PROGRAM`) in the container that
    holds the backups. So this, once per Postgres container (an old volume and a fresh one go
    the same way; a second run only re-applies the password and the attributes), over the
    container's Unix socket, which the image trusts:

    - as the bootstrap role, while it still has the name POSTGRES_USER: creates the superuser
      POSTGRES_ADMIN_ROLE, with no password, so it logs in over the socket only;
    - as that admin, in one transaction: renames the bootstrap role (OID 10, which must stay a
      superuser: trusted extensions such as pg_trgm install as it, and PostgreSQL 16 refuses to
      take it away) to POSTGRES_BOOTSTRAP_ROLE, without login or password; (re)creates
      POSTGRES_USER as a login role with no superuser, role, database, replication or RLS-bypass
      right and the password of the container's POSTGRES_PASSWORD; gives it the database and
      every schema and object in it the bootstrap role owned (extension members stay theirs).

    The role name and the URL in Medusa's DATABASE_URL stay the same, so no container changes.
    The official image applies POSTGRES_PASSWORD only when it initialises an empty data
    directory; a kept volume under a regenerated password gets it here too.

    No secret is on any command line (rule 8): the `sh -c` text names the variable only, and
    psql reads it from its environment (`\\getenv`, psql 15+) and quotes it as a literal; the
    session logs no failing statement and shows errors terse, so no statement text is echoed.
    """
    roles = {"admin": POSTGRES_ADMIN_ROLE, "bootstrap": POSTGRES_BOOTSTRAP_ROLE}
    script = (
        "set -eu; db=\"${POSTGRES_DB:-$POSTGRES_USER}\"\n"
        f'case "$POSTGRES_USER" in {POSTGRES_ADMIN_ROLE}|{POSTGRES_BOOTSTRAP_ROLE}) '
        'echo "database.user $POSTGRES_USER is a name this program keeps for itself; pick another" >&2; '
        "exit 1 ;; esac\n"
        '[ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is not set in the container" >&2; exit 1; }\n'
        f'psql -X -v ON_ERROR_STOP=1 -qAt -U "$POSTGRES_USER" -d "$db" -v admin={roles["admin"]} <<\'SQL\'\n'
        + _CREATE_ADMIN_SQL
        + "SQL\n"
        f'psql -X -1 -v ON_ERROR_STOP=1 -qAt -U {roles["admin"]} -d "$db" -v role="$POSTGRES_USER" -v db="$db" '
        f"-v admin={roles['admin']} -v bootstrap={roles['bootstrap']} <<'SQL'\n"
        + _OWNER_ROLE_SQL
        + "SQL\n"
        "echo password-synced"
    )
    return _join(["docker", "exec", postgres, "sh", "-c", script])


# Run as POSTGRES_USER: does something only while that is still the bootstrap superuser.
_CREATE_ADMIN_SQL = """\
SELECT format('CREATE ROLE %I SUPERUSER LOGIN', :'admin')
 WHERE current_setting('is_superuser') = 'on' AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'admin')
\\gexec
"""

# The schemas of the app's database this program hands to the app role: all but the system's.
APP_SCHEMAS_SQL = (
    "SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)

# Objects of an extension stay the extension's (their owner is the role that created it).
def _not_in_extension(catalog: str, column: str) -> str:
    return (
        f"NOT EXISTS (SELECT FROM pg_depend dep WHERE dep.classid = '{catalog}'::regclass "
        f"AND dep.objid = {column} AND dep.deptype = 'e')"
    )


# Run as the admin in one transaction (psql -1). Owned by OID 10 = still the bootstrap role's;
# a second run finds nothing left and alters nothing but the two roles.
_OWNER_ROLE_SQL = f"""\
\\set VERBOSITY terse
\\set SHOW_CONTEXT never
SET LOCAL log_min_error_statement = panic;
SET LOCAL log_statement = none;
SET LOCAL client_min_messages = warning;
SET LOCAL lock_timeout = '10s';
\\getenv password POSTGRES_PASSWORD
SELECT format('ALTER ROLE %I RENAME TO %I', rolname, :'bootstrap') FROM pg_roles
 WHERE oid = 10 AND rolname <> :'bootstrap'
\\gexec
ALTER ROLE :"bootstrap" NOLOGIN PASSWORD NULL;
ALTER ROLE :"admin" SUPERUSER LOGIN PASSWORD NULL;
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\\gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
 PASSWORD :'password';
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') FROM pg_database WHERE datname = :'db' AND datdba = 10
\\gexec
SELECT format('ALTER SCHEMA %I OWNER TO %I', nspname, :'role') FROM pg_namespace
 WHERE nspowner = 10 AND oid IN ({APP_SCHEMAS_SQL})
\\gexec
SELECT format('ALTER %s %s OWNER TO %I',
       CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
       ELSE 'TABLE' END,
       c.oid::regclass, :'role')
  FROM pg_class c WHERE c.relowner = 10 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND c.relnamespace IN ({APP_SCHEMAS_SQL}) AND {_not_in_extension("pg_class", "c.oid")}
\\gexec
SELECT format('ALTER SEQUENCE %s OWNER TO %I', c.oid::regclass, :'role')
  FROM pg_class c WHERE c.relowner = 10 AND c.relkind = 'S'
   AND c.relnamespace IN ({APP_SCHEMAS_SQL}) AND {_not_in_extension("pg_class", "c.oid")}
\\gexec
SELECT format('ALTER %s %s OWNER TO %I',
       CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
       p.oid::regprocedure, :'role')
  FROM pg_proc p WHERE p.proowner = 10
   AND p.pronamespace IN ({APP_SCHEMAS_SQL}) AND {_not_in_extension("pg_proc", "p.oid")}
\\gexec
SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, :'role')
  FROM pg_type t WHERE t.typowner = 10 AND t.typtype IN ('b', 'c', 'd', 'e', 'm', 'r')
   AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
   AND NOT EXISTS (SELECT FROM pg_type e WHERE e.typarray = t.oid)
   AND t.typnamespace IN ({APP_SCHEMAS_SQL}) AND {_not_in_extension("pg_type", "t.oid")}
\\gexec
SELECT format('ALTER TEXT SEARCH CONFIGURATION %s OWNER TO %I', c.oid::regconfig, :'role')
  FROM pg_ts_config c WHERE c.cfgowner = 10
   AND c.cfgnamespace IN ({APP_SCHEMAS_SQL}) AND {_not_in_extension("pg_ts_config", "c.oid")}
\\gexec
SELECT format('ALTER TEXT SEARCH DICTIONARY %s OWNER TO %I', d.oid::regdictionary, :'role')
  FROM pg_ts_dict d WHERE d.dictowner = 10
   AND d.dictnamespace IN ({APP_SCHEMAS_SQL}) AND {_not_in_extension("pg_ts_dict", "d.oid")}
\\gexec
SELECT format('ALTER COLLATION %I.%I OWNER TO %I', n.nspname, c.collname, :'role')
  FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE c.collowner = 10
   AND c.collnamespace IN ({APP_SCHEMAS_SQL}) AND {_not_in_extension("pg_collation", "c.oid")}
\\gexec
SELECT format('ALTER STATISTICS %I.%I OWNER TO %I', n.nspname, s.stxname, :'role')
  FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxowner = 10
   AND s.stxnamespace IN ({APP_SCHEMAS_SQL})
\\gexec
SELECT format('ALTER LARGE OBJECT %s OWNER TO %I', oid, :'role') FROM pg_largeobject_metadata WHERE lomowner = 10
\\gexec
"""


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
    container: str, network: str, image: str, env_names: Sequence[str], command: Sequence[str],
    data_network: str | None = None,
) -> str:
    """A one-off container of the new image runs the migrations once, before it serves.

    It has a fixed name, and a container of that name is removed first: a run killed
    mid-migration (SIGKILL of `pulumi up` leaves `docker run` and its container behind) must
    never go on migrating beside the next run's migration.

    With a data network (services.hardened) it joins both networks, as the app's containers do:
    create, connect, then `start -a`, which returns the migration's exit code (`docker run`
    takes more than one network only from Docker 25; Debian's docker.io is 20.10).
    """
    env_flags = [flag for name in sorted(env_names) for flag in ("-e", name)]
    remove = _join(["docker", "rm", "-f", container])
    if data_network is None:
        run = _join(["docker", "run", "--rm", "--name", container, "--network", network, *env_flags, image, *command])
        return f"{remove} >/dev/null 2>&1 || true; exec {run}"
    create = _join(["docker", "create", "--rm", "--name", container, "--network", data_network, *env_flags, image,
                    *command])
    connect = _join(["docker", "network", "connect", network, container])
    start = _join(["docker", "start", "--attach", container])
    # A cancel (SIGTERM to the step's process group) between create and start would leave a
    # created container behind; once started, `docker start --attach` passes the signal on.
    cleanup = shlex.quote(f"{remove} >/dev/null 2>&1; exit 143")
    return (f"{remove} >/dev/null 2>&1 || true; trap {cleanup} INT TERM; "
            f"{create} >/dev/null && {connect} && exec {start}")


def stop_container(container: str, timeout_seconds: int) -> str:
    """Stops `container` if it exists (SIGTERM, SIGKILL after `timeout_seconds`), and says which
    it was; a missing container is nothing to do. The container stays, stopped, for Pulumi's own
    delete at the end of the run (a stop does not set off an `unless-stopped` restart)."""
    name = shlex.quote(container)
    stop = _join(["docker", "stop", "--time", str(timeout_seconds), container])
    return (
        f"if docker inspect --format '{{{{.Id}}}}' {name} >/dev/null 2>&1; then "
        f"{stop} >/dev/null && echo 'stopped {container}'; else echo 'no {container} to stop'; fi"
    )


def hand_worker_back(stop: str, start: str, timeout_seconds: int) -> list[str]:
    """The worker handover undone (rule 7d): `stop` (the worker that failed its check) stops
    first, so two versions never consume the queues at once, then `start` (the previous worker,
    stopped by the handover and kept until the end of a successful run) runs again."""
    stopped = _join(["docker", "stop", "--time", str(timeout_seconds), stop])
    started = _join(["docker", "start", start])
    name = shlex.quote(start)
    # Without a previous worker to go back to nothing is touched: flipping back would leave the
    # previous server's events to no worker at all.
    script = (
        f"if ! docker inspect --format '{{{{.Id}}}}' {name} >/dev/null 2>&1; then "
        f"echo 'no {start} to hand the queues back to' >&2; exit 1; fi; "
        f"{stopped} >/dev/null && echo 'stopped {stop}' && {started} >/dev/null && echo 'started {start} again'"
    )
    return ["sh", "-c", script]


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
