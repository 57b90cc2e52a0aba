"""The bundled Postgres serves the app as an owner without superuser rights, the role sync puts
the password on no command line (docs/rules.md, rules 8, 8c, 10c).

Real engine, real dockerd:
- the role sync's exact command line (core/docker_cli.py) runs against a real Postgres while
  every process's argv, on the host and in the container, is sampled; psql is made slow by a
  wrapper first on the container's PATH, so the sampler sees it in flight;
- a stack created by the program before this change (OLD_PROGRAM, from this repository's
  history: app role = the image's bootstrap superuser) upgrades with one
  `pulumi up` that leaves the Postgres container, its volume and the colors' containers alone;
  afterwards the app role is no superuser, owns the database and the tables the old role made,
  cannot run a program through COPY, and a release (backup, migration, gate) still works.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import docker_cli, naming
from tests.e2e.conftest import measure
from tests.e2e.project import (
    PROJECT_FILES,
    REPO,
    PulumiStack,
    container_id,
    copy_program,
    destroy_with_data,
    docker,
    local_stack_config,
    program_at,
    remove_leftovers,
)

PREFIX = "e2epg"
POSTGRES_IMAGE = "medusa-bg/postgres:15"
# main before the app got its own role.
OLD_PROGRAM = "171c856"
CONFIG: dict[str, Any] = local_stack_config(
    PREFIX, 16080, 17080, hardened=False,  # made by OLD_PROGRAM, before services.hardened
    activeColor="blue",
    blueImage="medusa-bg/testapp:v1",
    healthGate={"deadlineSeconds": 30, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 3},
    medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5},
)
# Operations an upgrade of a data service must not need (rules 3 and 10c).
DESTRUCTIVE = {"replace", "create-replacement", "delete-replaced", "delete", "discard"}


# --- the role sync's command line ----------------------------------------------------------

# psql sleeps first while /slow/on exists, so the samplers see it (and its argv) in flight.
SLOW_PSQL = '#!/bin/sh\n[ ! -e /slow/on ] || sleep 1.5\nexec /usr/lib/postgresql/15/bin/psql "$@"\n'
SAMPLER = (
    "rm -f /tmp/sampler-stop; while [ ! -e /tmp/sampler-stop ]; do cat /proc/[0-9]*/cmdline 2>/dev/null; echo; done"
)


class HostSampler(threading.Thread):
    """Reads every process's argv on the host (the docker CLI, and the container's processes,
    which share this kernel's process list) until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.rounds = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            for proc in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    self.seen.add(proc.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            self.rounds += 1

    def stop(self) -> set[str]:
        self._halt.set()
        self.join(10)
        return self.seen


def _start_postgres(name: str, volume: str, password: str) -> None:
    docker("rm", "-f", name, check=False)
    path = "/slow:/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "-e", "POSTGRES_USER=medusa", "-e", "POSTGRES_DB=shop",
         "-e", "POSTGRES_PASSWORD", "-e", f"PATH={path}", "-v", f"{volume}:/var/lib/postgresql/data",
         POSTGRES_IMAGE],
        env={**_env(), "POSTGRES_PASSWORD": password}, capture_output=True, text=True, timeout=60, check=True,
    )
    deadline = time.monotonic() + 60
    while not _ready(name):
        assert time.monotonic() < deadline, docker("logs", name, check=False)
        time.sleep(0.3)
    docker("exec", name, "sh", "-c", f"mkdir -p /slow && printf '%s' {shlex.quote(SLOW_PSQL)} > /slow/psql "
           "&& chmod 755 /slow/psql")


def _ready(name: str) -> bool:
    done = subprocess.run(["docker", "exec", name, "pg_isready", "-h", "127.0.0.1"], env=_env(),
                          capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def _env() -> dict[str, str]:
    return {**os.environ}


def _sync_sampled(name: str, password: str) -> tuple[subprocess.CompletedProcess[str], str, set[str]]:
    """Runs the role sync as pulumi-command does (`sh -c CREATE`), sampling argv on both sides."""
    docker("exec", name, "touch", "/slow/on")
    inside = subprocess.Popen(["docker", "exec", name, "sh", "-c", SAMPLER], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    host = HostSampler()
    host.start()
    time.sleep(0.5)
    try:
        sync = subprocess.run(["/bin/sh", "-c", docker_cli.sync_postgres_password(name)], env=_env(),
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        time.sleep(0.3)
        seen = host.stop()
        docker("exec", name, "sh", "-c", "touch /tmp/sampler-stop; rm -f /slow/on")
        sampled = inside.communicate(timeout=30)[0].decode(errors="replace")
    assert password not in docker_cli.sync_postgres_password(name)
    return sync, sampled, seen


def _tcp_psql(container: str, user: str, sql: str, password_env: str = "POSTGRES_PASSWORD",
              db: str = "$POSTGRES_DB") -> subprocess.CompletedProcess[str]:
    """psql over TCP (scram, as the app connects), the password from the container's env."""
    script = f'PGPASSWORD="${password_env}" exec psql -X -h 127.0.0.1 -U {user} -d "{db}" -qAt -c "$SQL"'
    return subprocess.run(["docker", "exec", "-e", "SQL", container, "sh", "-c", script],
                          env={**_env(), "SQL": sql}, capture_output=True, text=True, timeout=60, check=False)


def _admin_sql(container: str, sql: str, db: str = "shop") -> str:
    return docker("exec", container, "psql", "-X", "-U", naming.POSTGRES_ADMIN_ROLE, "-d", db, "-qAt", "-c", sql)


@pytest.fixture(scope="module")
def cleanup(engine: dict[str, str]) -> Iterator[None]:
    remove_leftovers(PREFIX)
    yield
    remove_leftovers(PREFIX)


def test_role_sync_puts_the_password_on_no_command_line_and_makes_an_owner_without_superuser(cleanup: None) -> None:
    name, volume = f"{PREFIX}-argv-postgres", f"{PREFIX}-argv-pgdata"
    # Quotes, a dollar, a backslash and a space: psql must take it as one literal.
    password = f"pw{secrets.token_hex(10)}'\" $HOME\\x"
    needle = password[:22]
    _start_postgres(name, volume, password)
    docker("exec", name, "psql", "-U", "medusa", "-d", "shop", "-qc",
           "CREATE TABLE legacy (id serial PRIMARY KEY, note text); INSERT INTO legacy (note) VALUES ('old');")

    began = time.monotonic()
    sync, inside, host = _sync_sampled(name, password)
    seconds = time.monotonic() - began
    assert sync.returncode == 0, sync.stderr
    assert sync.stdout.strip() == "password-synced", sync.stdout
    # The sampler caught psql in flight (else the check below proves nothing).
    assert "/slow/psql" in inside and any("/slow/psql" in line for line in host), "psql was never sampled"
    # Plain booleans, so a failure does not print the sampled argv (with the password) itself.
    inside_leak = needle in inside
    assert not inside_leak, "the password was on a command line inside the container"
    host_leak = [line.split()[0] for line in host if needle in line]
    assert not host_leak, f"the password was on the command line of a host process: {host_leak}"
    output_leak = needle in sync.stdout + sync.stderr + _logs_stderr(name)
    assert not output_leak, "the password is in the sync's output or the Postgres log"
    measure(f"postgres roles: role sync under the argv sampler {seconds:.1f}s, "
            f"{len(host)} distinct host argv seen")

    _assert_app_role(name, "medusa", "shop", "legacy")
    # Again, as every new Postgres container does: only the password and attributes are re-applied.
    again = subprocess.run(["/bin/sh", "-c", docker_cli.sync_postgres_password(name)], env=_env(),
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0 and again.stdout.strip() == "password-synced", again.stderr
    _assert_app_role(name, "medusa", "shop", "legacy")

    # A kept volume under a new password (after `pulumi destroy` and a regenerated secret).
    docker("rm", "-f", name)
    rotated = f"rot{secrets.token_hex(8)}'\\"
    _start_postgres(name, volume, rotated)
    rerun = subprocess.run(["/bin/sh", "-c", docker_cli.sync_postgres_password(name)], env=_env(),
                           capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert _tcp_psql(name, "medusa", "SELECT note FROM legacy ORDER BY id LIMIT 1").stdout.strip() == "old"
    _assert_app_role(name, "medusa", "shop", "legacy")
    docker("rm", "-f", name)


def _logs_stderr(name: str) -> str:
    done = subprocess.run(["docker", "logs", name], env=_env(), capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def _assert_app_role(container: str, role: str, db: str, table: str) -> None:
    """The app role logs in with the container's password, is no superuser and owns its data."""
    who = _tcp_psql(container, role, "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                                     "WHERE rolname = current_user")
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() == f"{role}|f|f|f"
    owners = _tcp_psql(container, role, (
        f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'; "
        f"SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = '{table}'; "
        f"SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = '{table}_id_seq'"
    ))
    assert owners.stdout.split() == [role, role, role], owners.stdout + owners.stderr
    write = _tcp_psql(container, role, f"INSERT INTO {table} (note) VALUES ('new') RETURNING note")
    assert write.stdout.strip() == "new", write.stderr
    escape = _tcp_psql(container, role, "COPY (SELECT 1) TO PROGRAM 'id'")
    assert escape.returncode != 0 and "must be superuser" in escape.stderr, escape.stdout + escape.stderr
    promote = _tcp_psql(container, role, f"ALTER ROLE {role} SUPERUSER")
    assert promote.returncode != 0 and "must be superuser" in promote.stderr, promote.stderr
    # A trusted extension (what Medusa's search module creates) still installs as the owner.
    extension = _tcp_psql(container, role, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
    assert extension.returncode == 0, extension.stderr
    # Neither superuser can log in over TCP, whatever password is tried.
    for other in (naming.POSTGRES_ADMIN_ROLE, naming.POSTGRES_BOOTSTRAP_ROLE):
        login = _tcp_psql(container, other, "SELECT 1")
        assert login.returncode != 0 and "password authentication failed" in login.stderr, login.stderr
    assert _admin_sql(container, "SELECT rolname, rolsuper, rolcanlogin FROM pg_roles WHERE oid = 10", db) == (
        f"{naming.POSTGRES_BOOTSTRAP_ROLE}|t|f"
    )
    dump = subprocess.run(
        ["docker", "exec", container, "sh", "-c",
         'PGPASSWORD="$POSTGRES_PASSWORD" pg_dump -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -Fc '
         "-f /tmp/check.dump && pg_restore --file=/dev/null /tmp/check.dump && rm /tmp/check.dump"],
        env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert dump.returncode == 0, f"pg_dump as the app role: {dump.stderr}"


# --- an old stack upgrades in place ----------------------------------------------------------

@pytest.fixture(scope="module")
def old_stack(cleanup: None, engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulumiStack]:
    base = tmp_path_factory.mktemp("pgroles")
    workdir = base / "stack"
    workdir.mkdir()
    stack = PulumiStack(workdir, engine, stack="pgroles", source=program_at(OLD_PROGRAM, PROJECT_FILES, base / "old"))
    stack.set_config({**CONFIG, "dockerHost": engine["DOCKER_HOST"]})
    yield stack
    destroy_with_data(stack, PREFIX)


def test_an_old_stack_gets_an_app_role_without_superuser_in_one_up_that_replaces_no_postgres_or_app(
    old_stack: PulumiStack,
) -> None:
    postgres = f"{PREFIX}-postgres"
    created = old_stack.up()
    # What the old program left: the app's role is the bootstrap superuser.
    old_role = docker("exec", postgres, "psql", "-X", "-U", "medusa", "-d", "medusa", "-qAt", "-c",
                      "SELECT oid, rolsuper FROM pg_roles WHERE rolname = current_user")
    assert old_role == "10|t", old_role
    docker("exec", postgres, "psql", "-X", "-U", "medusa", "-d", "medusa", "-qc",
           "CREATE TABLE legacy (id serial PRIMARY KEY, note text); INSERT INTO legacy (note) VALUES ('old');")
    kept = {name: container_id(f"{PREFIX}-{name}")
            for name in ("postgres", "redis", "router", "blue-server", "blue-worker")}

    for name in PROJECT_FILES:
        target = old_stack.workdir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    copy_program(REPO, old_stack.workdir, PROJECT_FILES)
    preview = old_stack.run("preview", "--json", check=False)
    assert preview.returncode == 0, preview.output[-6000:]
    steps = json.loads(preview.stdout).get("steps", [])
    changed = {(step["op"], step["urn"].rsplit("::", 1)[-1]) for step in steps if step["op"] != "same"}
    destructive = {(op, name) for op, name in changed if op in DESTRUCTIVE}
    assert destructive == set(), f"the new code would replace or delete: {sorted(destructive)}"
    assert ("update", "postgres-password") in changed, sorted(changed)
    measure(f"postgres roles: the upgrade's preview: {sorted(changed)}")

    upgraded = old_stack.up()
    assert {name: container_id(f"{PREFIX}-{name}") for name in kept} == kept, "the upgrade recreated a container"
    app = _tcp_psql(postgres, "medusa", "SELECT note FROM legacy ORDER BY id", db="medusa")
    assert app.stdout.split() == ["old"], app.stderr
    _assert_app_role(postgres, "medusa", "medusa", "legacy")

    # A release after the upgrade: backup and migration as the app role, gate, flip.
    old_stack.set_config({**CONFIG, "dockerHost": old_stack.env["DOCKER_HOST"], "activeColor": "green",
                          "greenImage": "medusa-bg/testapp:v2"})
    released = old_stack.up()
    outputs = old_stack.outputs()
    assert outputs["liveColor"] == "green" and outputs["lastGateResult"]["healthy"] is True
    assert str(outputs.get("backup", "")).endswith(".dump"), outputs.get("backup")
    assert container_id(postgres) == kept["postgres"]

    again = old_stack.run("preview", "--expect-no-changes", "--diff", check=False)
    assert again.returncode == 0, f"the upgraded stack still changes:\n{again.output[-6000:]}"
    measure(
        f"postgres roles: old program's up {created.seconds:.1f}s, upgrade {upgraded.seconds:.1f}s, "
        f"release {released.seconds:.1f}s, preview {again.seconds:.1f}s"
    )
