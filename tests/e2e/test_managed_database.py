"""The shape users come from (Railway + Supabase): Medusa against a managed-style Postgres that
requires TLS, reached through pgbouncer in transaction-pooling mode, and a Redis with a password.

The "provider" is built here, outside the stack: a Postgres that accepts only TLS connections
(pg_hba `hostssl`), a pgbouncer (Debian's) that pools by transaction and speaks TLS on both
sides, and a password-protected Redis, all on a network of their own. The stack reaches them
the way it would reach a provider: by address, through ports published on the harness bridge's
gateway (an address of the harness's own Docker network). The stack runs `database.mode
external` and `redis.mode external`: no Postgres or Redis container of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import measure
from tests.e2e.load import Load
from tests.e2e.project import (
    PulumiStack,
    container_id,
    copy_example_app,
    destroy_with_data,
    docker,
    gateway,
    local_stack_config,
    remove_leftovers,
)
from tests.e2e.test_medusa_release import GATE, HELLO, build_config, migrate_output

PREFIX = "e2eext"
PROVIDER = f"{PREFIX}-provider"  # the provider's containers, network and volume
HTTP_PORT = 12080
PUBLIC = f"http://127.0.0.1:{HTTP_PORT}"
POOLER_PORT, REDIS_PORT = 16432, 16379
DB_PASSWORD = "e2e-only-managed-db-password"
REDIS_PASSWORD = "e2e-only-managed-redis-password"
# What Supabase and Railway document for node-postgres: TLS without a CA to verify against.
DRIVER_OPTIONS = {"connection": {"ssl": {"rejectUnauthorized": False}}}



def pgbouncer_ini(listen: str, postgres: str) -> str:
    return f"""[databases]
medusa = host={postgres} port=5432 dbname=medusa

[pgbouncer]
listen_addr = {listen}
listen_port = {POOLER_PORT}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = /certs/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
client_tls_sslmode = require
client_tls_key_file = /certs/server.key
client_tls_cert_file = /certs/server.crt
server_tls_sslmode = require
ignore_startup_parameters = extra_float_digits,options
"""


# The certificate and configs, made inside a container so the files belong to its postgres user.
PROVIDER_SETUP = (
    "set -eu; cd /certs; "
    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=managed-db -keyout server.key -out server.crt "
    "2>/dev/null; "
    "printf 'local all all trust\\nhostssl all all 0.0.0.0/0 scram-sha-256\\nhost all all 0.0.0.0/0 reject\\n' "
    "> pg_hba.conf; "
    'printf \'"medusa" "%s"\\n\' "$DB_PASSWORD" > userlist.txt; '
    "chown postgres:postgres *; chmod 600 server.key userlist.txt"
)
REDIS_BOOT = (
    "set -eu; umask 077; printf 'requirepass \"%s\"\\n' \"$REDISCLI_AUTH\" > /tmp/auth.conf; "
    "chown redis /tmp/auth.conf; exec setpriv --reuid=redis --regid=redis --init-groups "
    "redis-server /tmp/auth.conf --bind \"$BIND\" --port \"$PORT\" --protected-mode no --save ''"
)


def provider_sql(query: str) -> str:
    return docker("exec", f"{PROVIDER}-postgres", "psql", "-U", "postgres", "-d", "medusa", "-XtAc", query)


def start_provider() -> None:
    """Postgres on a network of its own; pgbouncer and Redis in the host's network namespace,
    listening on the harness bridge's gateway only, which every container reaches as a host
    address (Docker isolates one bridge network from another, published ports included)."""
    where = gateway()
    docker("network", "create", f"{PROVIDER}-net")
    docker("volume", "create", f"{PROVIDER}-certs")
    docker("run", "--rm", "-v", f"{PROVIDER}-certs:/certs", "-e", "DB_PASSWORD",
           "medusa-bg/postgres:15", "sh", "-c", PROVIDER_SETUP, env_extra={"DB_PASSWORD": DB_PASSWORD})
    docker("run", "-d", "--name", f"{PROVIDER}-postgres", "--network", f"{PROVIDER}-net",
           "-v", f"{PROVIDER}-certs:/certs", "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_DB=medusa",
           "medusa-bg/postgres:15", "postgres", "-c", "ssl=on", "-c", "ssl_cert_file=/certs/server.crt",
           "-c", "ssl_key_file=/certs/server.key", "-c", "hba_file=/certs/pg_hba.conf",
           env_extra={"POSTGRES_PASSWORD": "e2e-only-provider-superuser-password"})
    deadline = time.monotonic() + 60
    while "accepting" not in docker("exec", f"{PROVIDER}-postgres", "pg_isready", "-h", "127.0.0.1", check=False):
        assert time.monotonic() < deadline, docker("logs", "--tail", "30", f"{PROVIDER}-postgres")
        time.sleep(0.5)
    # What a managed provider hands out: a login that owns its database, not a superuser.
    docker("exec", "-i", "-e", "DB_PASSWORD", f"{PROVIDER}-postgres", "psql", "-U", "postgres", "-d", "medusa",
           "-Xqv", "ON_ERROR_STOP=1", env_extra={"DB_PASSWORD": DB_PASSWORD},
           stdin="\\getenv password DB_PASSWORD\ncreate role medusa login password :'password';\n"
                 "alter database medusa owner to medusa;\nalter schema public owner to medusa;\n")
    postgres = docker("inspect", "--format", f"{{{{(index .NetworkSettings.Networks \"{PROVIDER}-net\").IPAddress}}}}",
                      f"{PROVIDER}-postgres")
    docker("run", "--rm", "-i", "-v", f"{PROVIDER}-certs:/certs", "medusa-bg/postgres:15", "sh", "-c",
           "cat > /certs/pgbouncer.ini && chown postgres /certs/pgbouncer.ini", stdin=pgbouncer_ini(where, postgres))
    docker("run", "-d", "--name", f"{PROVIDER}-pgbouncer", "--network", "host", "--user", "postgres",
           "-v", f"{PROVIDER}-certs:/certs:ro", "--entrypoint", "pgbouncer", "medusa-bg/postgres:15",
           "/certs/pgbouncer.ini")
    docker("run", "-d", "--name", f"{PROVIDER}-redis", "--network", "host", "-e", "REDISCLI_AUTH",
           "-e", f"BIND={where}", "-e", f"PORT={REDIS_PORT}", "--entrypoint", "sh", "medusa-bg/redis:7",
           "-c", REDIS_BOOT, env_extra={"REDISCLI_AUTH": REDIS_PASSWORD})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example_app(tmp_path_factory.mktemp("medusa-app"))


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], workdir: Path) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    start_provider()
    stack = PulumiStack(workdir, engine, stack="managed")
    yield stack
    destroy_with_data(stack, PREFIX)


def configure(stack: PulumiStack, **changes: Any) -> None:
    stack.set_config({
        **local_stack_config(PREFIX, HTTP_PORT, 13080, healthGate=GATE,
                             medusa={"serverMemoryMb": 1024, "workerMemoryMb": 1024, "stopTimeoutSeconds": 10}),
        "dockerHost": stack.env["DOCKER_HOST"],
        "database": {"mode": "external", "driverOptions": DRIVER_OPTIONS},
        "redis": {"mode": "external"},
        **changes,
    })
    where = gateway()
    # Read from stdin, as users set them (never on a command line).
    for key, value in (("databaseUrl", f"postgres://medusa:{DB_PASSWORD}@{where}:{POOLER_PORT}/medusa"),
                       ("redisUrl", f"redis://default:{REDIS_PASSWORD}@{where}:{REDIS_PORT}/0")):
        stack.run("config", "set", "--secret", key, stdin=value)


def test_release_and_flip_through_a_tls_pooler_to_a_managed_style_postgres_and_redis(
    stack: PulumiStack, app: Path
) -> None:
    configure(stack, activeColor="blue", blueBuild=build_config(app))
    first = stack.up()
    assert container_id(f"{PREFIX}-postgres") is None and container_id(f"{PREFIX}-redis") is None
    assert requests.get(f"{PUBLIC}/ready", timeout=10).json() == {"ready": True, "color": "blue"}
    # Migrations went through the pooler: the tables are in the provider's database, owned by its login.
    assert provider_sql("select tableowner from pg_tables where tablename = 'product'") == "medusa"
    assert provider_sql("select count(*) > 0 from mikro_orm_migrations") == "t"
    # Every connection of the app's login reaches Postgres over TLS (pgbouncer's server side).
    assert provider_sql("select bool_and(s.ssl) and count(*) > 0 from pg_stat_ssl s "
                        "join pg_stat_activity a using (pid) where a.usename = 'medusa'") == "t"
    # And the pooler answers a client over TLS only.
    def through_pooler(sslmode: str) -> str:
        return docker("exec", "-e", "PGPASSWORD", f"{PROVIDER}-postgres", "psql",
                      f"postgres://medusa@{gateway()}:{POOLER_PORT}/medusa?sslmode={sslmode}", "-XtAc",
                      "select 1", check=False, env_extra={"PGPASSWORD": DB_PASSWORD})

    assert (through_pooler("require"), through_pooler("disable")) == ("1", "")

    blue_ref = stack.outputs()["imageRefs"]["blue"]
    hello = app / HELLO
    hello.write_text(hello.read_text().replace('"Hello from Medusa"', '"Hello from a pooled Medusa"'))
    configure(stack, activeColor="green", blueImage=blue_ref, greenBuild=build_config(app))
    with Load(f"{PUBLIC}/health") as load:
        run = stack.up()
        time.sleep(1)
    report = load.stop()
    measure(f"managed db 1. first deploy through pgbouncer (transaction pooling, TLS both sides): pulumi up "
            f"{first.seconds:.1f}s; code-only release under load: pulumi up {run.seconds:.1f}s, "
            f"{report.flip_summary('green')}: {report.summary()}")
    assert report.total > 0 and report.failed == 0, report.failures
    assert requests.get(f"{PUBLIC}/hello", timeout=10).json()["message"] == "Hello from a pooled Medusa"
    # The migrate wrapper read the last fingerprint through the pooler (TLS, transaction pooling).
    assert "bluegreen: nothing to migrate" in migrate_output(stack, "green")
    assert stack.outputs()["workerCheck"]["healthy"] is True
    assert json.loads(docker("inspect", "--format", "{{json .State.Running}}", f"{PREFIX}-green-worker")) is True
