"""Putting the bundled database back to a backup: the scripts `bluegreen restore` runs in the
Postgres container, kept apart from the verb that runs them (ops/restore.py).

A restore replaces the whole database, schema included: a migration applied after the backup
leaves tables and columns the dump does not drop, so every schema of the app is dropped first
and the dump is replayed into an empty database, all in one transaction (a restore that fails
half-way changes nothing). It runs as the admin role over the container's socket (no password)
and hands what it created to database.user, which owns the app's objects (rule 8b).
"""

from __future__ import annotations

import re
import shlex

from core.docker_cli import APP_SCHEMAS_SQL, BACKUP_NAME_PATTERN
from core.naming import POSTGRES_ADMIN_ROLE

# The pre-restore dump's name: `<UTC time>-restore-before.dump` (docker_cli.backup_database).
PRE_RESTORE_COLOR, PRE_RESTORE_IMAGE = "restore", "before"
BACKUPS_DIR = "/backups"


def valid_backup_name(name: str) -> bool:
    """What backup_script names a dump (its slug keeps these characters only), so a name is
    safe in a shell word and a path."""
    return re.fullmatch(r"[0-9]{8}T[0-9]{6}Z-[A-Za-z0-9_.-]+[.]dump", name) is not None


def list_backups_script() -> str:
    """`<name> <size in bytes>` per backup, newest first."""
    return (
        f"cd {BACKUPS_DIR} && ls -1 | grep -E {shlex.quote(BACKUP_NAME_PATTERN)} | sort -r "
        '| while read -r name; do printf "%s %s\\n" "$name" "$(wc -c < "$name")"; done'
    )


_RESTORE_SQL_BEFORE = f"""\
\\set VERBOSITY terse
SET LOCAL lock_timeout = '60s';
SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace WHERE oid IN ({APP_SCHEMAS_SQL})
\\gexec
CREATE SCHEMA public;
"""

# After the dump's own SET lines (lock_timeout 0, an empty search_path): the drops above took
# every lock under the 60 s limit already, and these name everything fully.
_RESTORE_SQL_AFTER = """\
REASSIGN OWNED BY :"admin" TO :"role";
SELECT 'restored=' || count(*) || ' tables' FROM pg_catalog.pg_tables WHERE schemaname = 'public';
"""


def restore_script(name: str) -> str:
    """The `sh` script, run in the Postgres container, that restores /backups/NAME."""
    if not valid_backup_name(name):
        raise ValueError(f"{name!r} is not a backup name")
    file = shlex.quote(f"{BACKUPS_DIR}/{name}")
    return (
        f"set -eu; file={file}; db=\"${{POSTGRES_DB:-$POSTGRES_USER}}\"\n"
        '[ -f "$file" ] || { echo "no backup named ' + name + ' on the backups volume" >&2; exit 3; }\n'
        'pg_restore --list "$file" >/dev/null || { echo "' + name + ' cannot be read (pg_restore\'s error is above);'
        ' the database is unchanged" >&2; exit 1; }\n'
        "{ cat <<'SQL'\n" + _RESTORE_SQL_BEFORE + "SQL\n"
        '  pg_restore --no-owner --exit-on-error -f - "$file"\n'
        "  cat <<'SQL'\n" + _RESTORE_SQL_AFTER + "SQL\n"
        f'}} | psql -X -1 -q -At -v ON_ERROR_STOP=1 -U {POSTGRES_ADMIN_ROLE} -d "$db" '
        f'-v admin={POSTGRES_ADMIN_ROLE} -v role="$POSTGRES_USER"\n'
    )
