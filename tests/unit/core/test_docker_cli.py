"""The Postgres role sync's command line: no secret on it, the roles it names (docs/rules.md, rule 8).

What it does to a real Postgres is in tests/e2e/test_postgres_roles.py."""

import shlex

from core import naming
from core.docker_cli import sync_postgres_password


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
