"""The schema check's script, run by a real `sh` against a stand-in `docker` that answers from files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.schema_check import PASSED, SchemaCheck, bluegreen_command

FAKE_DOCKER = r"""#!/bin/sh
# docker run ... find ...   -> the image's files; docker exec -i ... psql -> the applied rows;
# docker exec ... ls /backups -> the backups. Each answer is a file in $FAKE.
case "$1 $2" in
  "run --rm") [ -f "$FAKE/find-fails" ] && exit 125; cat "$FAKE/files"; [ ! -f "$FAKE/find-partial" ] || exit 1 ;;
  "exec -i") cat > "$FAKE/sql-seen"; [ -f "$FAKE/psql-fails" ] && exit 2; cat "$FAKE/applied" ;;
  exec*) cat "$FAKE/backups" ;;
esac
"""


def run(
    tmp_path: Path, check: SchemaCheck, files: str, applied: str, backups: str = ""
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    for name, text in {"files": files, "applied": applied, "backups": backups}.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE": str(tmp_path)}
    return subprocess.run(check.argv(), env=env, capture_output=True, text=True, check=False, timeout=30)


CHECK = SchemaCheck(color="blue", image="shop:v1", postgres_container="shop-postgres", stack="production")
V1_FILES = (
    "./node_modules/@medusajs/product/dist/migrations/Migration20240101000000.js\n"
    "./src/modules/audit/migrations/Migration20261201000000.js\n"
)
BACKUPS = (
    "20261203T100000Z-blue-shop-v1.dump\n"
    "20261203T104001Z-green-shop-v2.dump\n"
    "20261203T110000Z-blue-shop-v1.dump\n"
    "notes.txt\n"
)


def test_passes_when_every_applied_migration_is_known(tmp_path: Path) -> None:
    done = run(tmp_path, CHECK, V1_FILES, "Migration20240101000000 20260101T000000Z\n"
                                          "Migration20261201000000 20261201T000000Z\n")
    assert (done.returncode, done.stdout.strip()) == (0, f"{PASSED} color=blue"), done.stderr


def test_an_unreadable_directory_in_the_image_only_hides_what_is_in_it(tmp_path: Path) -> None:
    (tmp_path / "find-partial").write_text("")
    done = run(tmp_path, CHECK, V1_FILES, "Migration20261201000000 20261201T000000Z\n")
    assert done.returncode == 0, done.stderr


def test_passes_on_a_database_that_has_no_migrations_table(tmp_path: Path) -> None:
    done = run(tmp_path, CHECK, V1_FILES, "")
    assert done.returncode == 0, done.stderr
    assert "to_regclass('public.mikro_orm_migrations')" in (tmp_path / "sql-seen").read_text()


def test_refuses_with_the_names_the_backup_before_them_and_both_ways_out(tmp_path: Path) -> None:
    done = run(tmp_path, CHECK, V1_FILES,
               "Migration20261201000000 20261201T000000Z\n"
               "Migration20261203000000 20261203T104005Z\n"
               "Migration20261203000001 20261203T104006Z\n", BACKUPS)
    assert done.returncode == 1
    message = done.stderr
    assert "refusing to send traffic to blue" in message
    assert "2 migration(s)" in message and "shop:v1" in message
    assert "Migration20261203000000 (applied 20261203T104005Z), Migration20261203000001" in message
    assert "Migration20261201000000 (" not in message
    # The newest backup taken at or before the first unknown migration, not the newest overall.
    assert f"{bluegreen_command('production', 'restore')} 20261203T104001Z-green-shop-v2.dump" in message
    assert ("bin/bluegreen --stack production pulumi config set --path "
            "'database.acknowledgedMigrations[0]' Migration20261203000000") in message
    assert "'database.acknowledgedMigrations[1]' Migration20261203000001" in message


def test_acknowledged_migrations_pass_and_new_acknowledgements_append(tmp_path: Path) -> None:
    applied = "Migration20261203000000 20261203T104005Z\nMigration20261203000001 20261203T104006Z\n"
    acknowledged = SchemaCheck(**{**CHECK.__dict__, "acknowledged": ("Migration20261203000000",)})
    done = run(tmp_path, acknowledged, V1_FILES, applied, BACKUPS)
    assert done.returncode == 1
    assert "1 migration(s)" in done.stderr and "Migration20261203000000 (" not in done.stderr
    assert "'database.acknowledgedMigrations[1]' Migration20261203000001" in done.stderr
    both = SchemaCheck(**{**CHECK.__dict__, "acknowledged": ("Migration20261203000000", "Migration20261203000001")})
    assert run(tmp_path, both, V1_FILES, applied, BACKUPS).returncode == 0


def test_says_so_when_no_backup_is_old_enough(tmp_path: Path) -> None:
    done = run(tmp_path, CHECK, V1_FILES, "Migration20261203000000 20261203T090000Z\n", BACKUPS)
    assert done.returncode == 1
    assert "no backup on the volume is that old" in done.stderr
    assert "bin/bluegreen --stack production restore" not in done.stderr


@pytest.mark.parametrize("failure, says", [
    ("find-fails", "could not list the migrations shop:v1 knows"),
    ("psql-fails", "could not read mikro_orm_migrations in shop-postgres"),
])
def test_a_check_that_cannot_run_refuses_and_says_which_part(tmp_path: Path, failure: str, says: str) -> None:
    (tmp_path / failure).write_text("")
    done = run(tmp_path, CHECK, V1_FILES, "")
    assert done.returncode == 1 and says in done.stderr, done.stderr


def test_the_local_stack_prints_commands_without_a_stack_flag() -> None:
    assert bluegreen_command("local", "restore", "x.dump") == "bin/bluegreen restore x.dump"
    assert bluegreen_command("prod", "restore") == "bin/bluegreen --stack prod restore"
