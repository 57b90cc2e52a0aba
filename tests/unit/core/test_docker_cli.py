"""The Postgres role sync's command line: no secret on it, the roles it names (docs/rules.md, rule 8).

What it does to a real Postgres is in tests/e2e/test_postgres_roles.py."""

import os
import shlex
import subprocess
from pathlib import Path

from core import naming
from core.docker_cli import hand_worker_back, sync_postgres_password


def test_role_sync_names_the_password_variable_and_never_expands_it_into_an_argv() -> None:
    argv = shlex.split(sync_postgres_password("shop-postgres"))
    assert argv[:5] == ["docker", "exec", "shop-postgres", "sh", "-c"] and len(argv) == 6
    script = argv[5]
    # psql reads it from its own environment; the shell only tests that it is set.
    assert "\\getenv password POSTGRES_PASSWORD" in script
    assert "PASSWORD :'password'" in script
    assert '"$POSTGRES_PASSWORD"' not in script and "password=" not in script
    assert "-v password" not in script


def test_role_sync_makes_the_app_role_an_owner_without_superuser() -> None:
    script = shlex.split(sync_postgres_password("p"))[5]
    assert f"-U {naming.POSTGRES_ADMIN_ROLE}" in script and "-1" in script.split()
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS" in script
    assert "WHERE oid = 10" in script and f"bootstrap={naming.POSTGRES_BOOTSTRAP_ROLE}" in script
    assert 'ALTER ROLE :"bootstrap" NOLOGIN PASSWORD NULL' in script
    assert "ALTER DATABASE %I OWNER TO %I" in script
    assert script.rstrip().endswith("echo password-synced")


# A stand-in docker: `inspect NAME` succeeds for the names in $FAKE/exists; every call is logged.
HAND_BACK_DOCKER = r"""#!/bin/sh
echo "$*" >> "$FAKE/calls"
case "$1" in
  inspect) grep -qx "$4" "$FAKE/exists" ;;
  *) exit 0 ;;
esac
"""


def hand_back(tmp_path: Path, existing: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(HAND_BACK_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "exists").write_text("".join(f"{name}\n" for name in existing))
    (tmp_path / "calls").write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE": str(tmp_path)}
    ran = subprocess.run(hand_worker_back("shop-green-worker", "shop-blue-worker", 10), env=env,
                         capture_output=True, text=True, check=False)
    return ran, (tmp_path / "calls").read_text().splitlines()


def test_the_worker_hand_back_stops_the_failed_worker_before_the_previous_one_starts(tmp_path: Path) -> None:
    ran, calls = hand_back(tmp_path, ["shop-blue-worker", "shop-green-worker"])
    assert ran.returncode == 0, ran.stderr
    moves = [call for call in calls if not call.startswith("inspect")]
    assert moves == ["stop --time 10 shop-green-worker", "start shop-blue-worker"]
    assert ran.stdout.split("\n")[:2] == ["stopped shop-green-worker", "started shop-blue-worker again"]


def test_without_a_previous_worker_the_hand_back_touches_nothing(tmp_path: Path) -> None:
    ran, calls = hand_back(tmp_path, ["shop-green-worker"])
    assert ran.returncode == 1
    assert "no shop-blue-worker to hand the queues back to" in ran.stderr
    assert all(call.startswith("inspect") for call in calls), calls
