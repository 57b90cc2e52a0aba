"""The schema check (rule 9e): traffic never flips to code older than the database's schema.

A warm rollback is only a flip, so nothing stops it from sending requests to an image that
predates the migrations a newer release applied (a dropped column, a renamed table). Before
the live route moves to a color, and before the post-switch check flips back, this compares:

- the migrations the color's image knows: the file names under any `migrations/` directory of
  its working tree (Medusa's modules ship them compiled as `dist/migrations/<Name>.js`, an app's
  own as `src/modules/<module>/migrations/<Name>.js`), listed by a one-off container of the
  image with no network;
- the migrations applied: `mikro_orm_migrations`, the table every Medusa module's migrator
  records names in, read over the bundled Postgres container's socket by the program's admin
  role (no password anywhere). A database without the table has applied none.

Applied but unknown, and not acknowledged in database.acknowledgedMigrations, refuses the flip
with their names and the two ways out: restore the newest backup taken before the first of them
(backup names start with their UTC time, the table records when each migration ran), or
acknowledge them when they were written expand/contract (README: "Migrations that keep a warm
rollback safe").
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from core.naming import LOCAL_STACK, POSTGRES_ADMIN_ROLE, Color

MIGRATIONS_TABLE = "mikro_orm_migrations"
ACKNOWLEDGE_KEY = "database.acknowledgedMigrations"
# What the check prints when the flip may go ahead; the graph keeps it as its output.
PASSED = "schema-check=passed"

# Reads the applied migrations with their UTC time in the form backup names start with. psql's
# \if keeps a database without the table (never migrated, or not a Medusa app) from failing.
_APPLIED_SQL = f"""\
SELECT to_regclass('public.{MIGRATIONS_TABLE}') IS NOT NULL AS has_table \\gset
\\if :has_table
SELECT name, to_char(executed_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"')
  FROM public.{MIGRATIONS_TABLE} ORDER BY executed_at, id;
\\endif
"""


def bluegreen_command(stack: str, *args: str) -> str:
    """`bin/bluegreen [--stack S] ARGS` as the program prints it (run from the repo root)."""
    words = ["bin/bluegreen", *(["--stack", stack] if stack != LOCAL_STACK else []), *args]
    return shlex.join(words)


@dataclass(frozen=True)
class SchemaCheck:
    color: Color
    image: str  # the ref the color runs
    postgres_container: str
    stack: str
    acknowledged: tuple[str, ...] = ()

    def script(self) -> str:
        """The check as one `sh` script for a host whose DOCKER_HOST reaches the engine."""
        image = shlex.quote(self.image)
        postgres = shlex.quote(self.postgres_container)
        acknowledged = " ".join(self.acknowledged)
        next_index = len(self.acknowledged)
        restore = bluegreen_command(self.stack, "restore")
        acknowledge = bluegreen_command(self.stack, "pulumi", "config", "set", "--path")
        return f"""set -eu
# find's exit 1 is an unreadable directory in the tree (it only hides what is in it); a missing
# image or find(1) is docker's 125-127.
files=$(docker run --rm --network none --entrypoint find {image} . -xdev -type f -path '*/migrations/*.js') \
  || [ "$?" -eq 1 ] || {{
  echo "schema check: could not list the migrations {self.image} knows (the image needs find(1) on its PATH)" >&2
  exit 1; }}
known=" $(printf '%s\\n' "$files" | sed 's|.*/||; s|[.]js$||' | tr '\\n' ' ') {acknowledged} "
applied=$(docker exec -i {postgres} sh -c 'psql -X -q -At -F " " -v ON_ERROR_STOP=1 -U {POSTGRES_ADMIN_ROLE} \
  -d "${{POSTGRES_DB:-$POSTGRES_USER}}"' <<'SQL'
{_APPLIED_SQL}SQL
) || {{ echo "schema check: could not read {MIGRATIONS_TABLE} in {self.postgres_container} (its error is above)" >&2
  exit 1; }}
ahead=""; names=""; first=""; count=0
while read -r name at; do
  [ -n "$name" ] || continue
  case "$known" in *" $name "*) continue ;; esac
  ahead="$ahead $name (applied $at),"; names="$names $name"; count=$((count + 1))
  [ -n "$first" ] || first="$at"
done <<EOF
$applied
EOF
if [ "$count" -eq 0 ]; then echo "{PASSED} color={self.color}"; exit 0; fi
backup=$(docker exec {postgres} ls -1 /backups 2>/dev/null | grep -E '^[0-9]{{8}}T[0-9]{{6}}Z-.+[.]dump$' \
  | awk -v first="$first" 'substr($0, 1, 16) <= first' | sort | tail -n 1) || backup=""
{{
  echo "schema check: refusing to send traffic to {self.color}: the database has $count migration(s) its image"
  echo "{self.image} does not know:${{ahead%,}}. That code predates the schema a newer release made, so"
  echo "it could fail requests or write data the newer code cannot read. Two ways out:"
  if [ -n "$backup" ]; then
    echo "  1. put the database back as it was before them (what was written since is lost; a backup of"
    echo "     the database as it is now is taken first), then flip again: {restore} $backup"
  else
    echo "  1. restore a copy of the database from before $first: no backup on the volume is that old"
  fi
  echo "  2. if they were written expand/contract (README: Migrations that keep a warm rollback safe),"
  echo "     acknowledge them in {ACKNOWLEDGE_KEY} and run the same command again:"
  i={next_index}
  for name in $names; do echo "     {acknowledge} '{ACKNOWLEDGE_KEY}[$i]' $name"; i=$((i + 1)); done
}} >&2
exit 1
"""

    def argv(self) -> list[str]:
        return ["sh", "-c", self.script()]
