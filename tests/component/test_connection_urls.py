"""The connection URLs the program builds authenticate against real servers (rules 4, 5, 8).

redis-server and PostgreSQL 15 run on loopback with a password made of every character that
breaks naive URL building. The URLs from core.urls must log in; the seed system's
`?password='...'` form must not (so this suite would have caught that bug); and the program's
own Redis boot script (components.base_services.REDIS_BOOT) must start a server that takes the
password from the environment, never from its command line.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from components.base_services import REDIS_BOOT
from core.urls import postgres_url, redis_url
from tests.component import servers

# Every character the brief names (@ : / ? # % ' ") plus a space and a backslash.
# "%2" followed by a quote also catches a client that decodes twice or not at all.
PASSWORD = "pa ss@w:o/r?d#1%2'3\"4\\5"
assert all(ch in PASSWORD for ch in "@:/?#%'\" \\")

# redis-py retries failed commands with backoff by default (seconds per refused AUTH); a test
# wants the first answer.
NO_RETRY = {"socket_timeout": 5, "retry": Retry(NoBackoff(), 0)}

ROLE = "medusa_app"
DATABASE = "medusa_store"


def _wait_tag(server: servers.RunningServer) -> str:
    return f"(server pid {server.pid}, port {server.port}); log:\n{server.log_text()[-2000:]}"


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[servers.RunningServer]:
    server = servers.start_redis(password=PASSWORD)
    try:
        yield server
    finally:
        server.stop()


def test_redis_conf_quoting_keeps_the_password_intact(redis_server: servers.RunningServer) -> None:
    # The config file really holds the escaped form, and the server really requires a password.
    conf = (redis_server.workdir / "redis.conf").read_text()
    assert 'requirepass "pa ss@w:o/r?d#1%2\'3\\"4\\\\5"' in conf
    bare = redis.Redis(host="127.0.0.1", port=redis_server.port, **NO_RETRY)
    with pytest.raises(redis.exceptions.AuthenticationError) as refused:
        bare.ping()
    assert "NOAUTH" in str(refused.value) or "Authentication required" in str(refused.value)
    bare.close()


def test_redis_url_from_the_program_authenticates(redis_server: servers.RunningServer) -> None:
    url = redis_url(PASSWORD, "127.0.0.1", port=redis_server.port)
    assert url.startswith(f"redis://default:{'pa%20ss%40w%3Ao%2Fr%3Fd%231%252%273%224%5C5'}@127.0.0.1:")
    # redis-py percent-decodes the user info, like ioredis (WHATWG URL + decodeURIComponent):
    parsed = redis.connection.parse_url(url)
    assert parsed["username"] == "default"
    assert parsed["password"] == PASSWORD
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("127.0.0.1", redis_server.port, 0)
    parts = urlsplit(url)  # the ioredis view of the same URL
    assert (unquote(parts.username or ""), unquote(parts.password or "")) == ("default", PASSWORD)

    client = redis.Redis.from_url(url, **NO_RETRY)  # sends AUTH default <password>
    try:
        assert client.ping() is True
        assert client.execute_command("PING") in (b"PONG", True)
        assert client.acl_whoami() in (b"default", "default")
        client.set("bluegreen:probe", "ok")
        assert client.get("bluegreen:probe") == b"ok"
    finally:
        client.close()


def test_seed_query_password_format_does_not_authenticate(redis_server: servers.RunningServer) -> None:
    """The seed built `redis://host:port/0?password='<password>'` (quote_value): it must fail here."""
    seed_url = f"redis://127.0.0.1:{redis_server.port}/0?password='{PASSWORD}'"
    client = redis.Redis.from_url(seed_url, **NO_RETRY)
    try:
        with pytest.raises(redis.exceptions.RedisError) as refused:
            client.ping()
    finally:
        client.close()
    message = str(refused.value)
    assert isinstance(refused.value, redis.exceptions.AuthenticationError) or "NOAUTH" in message, message
    assert any(word in message for word in ("WRONGPASS", "invalid username-password", "NOAUTH")), message


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[servers.PostgresServer]:
    server = servers.start_postgres()
    try:
        with psycopg.connect(server.admin_conninfo(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD))
            )
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ROLE)))
        yield server
    finally:
        server.stop()


def test_postgres_runs_as_non_root(postgres_server: servers.PostgresServer) -> None:
    status = Path(f"/proc/{postgres_server.pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1] != "0", uid_line


def test_postgres_url_from_the_program_authenticates(postgres_server: servers.PostgresServer) -> None:
    url = postgres_url(ROLE, PASSWORD, "127.0.0.1", DATABASE, port=postgres_server.port)
    assert url.endswith("?sslmode=disable")  # rule 5: the bundled Postgres is not "localhost"
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.info.get_parameters().get("sslmode") == "disable"
        row = conn.execute("SELECT current_user, current_database(), inet_server_addr()::text").fetchone()
        assert row is not None
        assert (row[0], row[1]) == (ROLE, DATABASE)
        assert row[2].startswith("127.0.0.1")  # TCP, so the password was really checked
        ssl = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert ssl == (False,)
    # Authentication is real: the same URL with a wrong password is refused.
    wrong = postgres_url(ROLE, PASSWORD + "x", "127.0.0.1", DATABASE, port=postgres_server.port)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5).close()


def test_unencoded_postgres_url_does_not_authenticate(postgres_server: servers.PostgresServer) -> None:
    raw = f"postgres://{ROLE}:{PASSWORD}@127.0.0.1:{postgres_server.port}/{DATABASE}?sslmode=disable"
    with pytest.raises(psycopg.Error):
        psycopg.connect(raw, connect_timeout=5).close()


# --- The program's Redis boot script ----------------------------------------------------------


@pytest.fixture()
def booted_redis() -> Iterator[tuple[servers.RunningServer, Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="bluegreen-redis-boot-"))
    data = workdir / "data"
    data.mkdir()
    auth_conf = workdir / "redis-auth.conf"
    port = servers.free_port()
    assert REDIS_BOOT.count("/tmp/redis-auth.conf") == 2 and REDIS_BOOT.count("--dir /data") == 1
    script = REDIS_BOOT.replace("/tmp/redis-auth.conf", str(auth_conf)).replace("--dir /data", f"--dir {data}")
    # The container listens on its private network; here, loopback only, on a free port.
    # `--set-proc-title no` keeps redis from overwriting its argv with a title, so
    # /proc/<pid>/cmdline shows the real command line the script exec'd.
    script += f" --port {port} --bind 127.0.0.1 --set-proc-title no"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDISCLI_AUTH": PASSWORD}
    server = servers.start_shell_redis(script, env, port, workdir)
    try:
        yield server, auth_conf
    finally:
        server.stop()


def test_redis_boot_script_authenticates_hostile_password(booted_redis: tuple[servers.RunningServer, Path]) -> None:
    server, auth_conf = booted_redis
    # umask 077 in the script: the file holding the password is private.
    assert auth_conf.stat().st_mode & 0o077 == 0, oct(auth_conf.stat().st_mode)

    client = redis.Redis.from_url(redis_url(PASSWORD, "127.0.0.1", port=server.port), **NO_RETRY)
    try:
        assert client.ping() is True, _wait_tag(server)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        client.close()

    cli = servers.require_binary("redis-cli")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDISCLI_AUTH": PASSWORD}
    done = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(server.port), "ping"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "PONG"), done.stderr
    # Without the password the server refuses: requirepass really took effect.
    env.pop("REDISCLI_AUTH")
    denied = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(server.port), "ping"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert "NOAUTH" in denied.stdout + denied.stderr


def test_redis_boot_script_keeps_the_password_off_the_command_line(
    booted_redis: tuple[servers.RunningServer, Path],
) -> None:
    server, auth_conf = booted_redis
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
    argv = cmdline.split(b"\0")
    # `exec` replaced the shell: the child pid is redis-server itself, and this is its real argv.
    assert argv[0].endswith(b"redis-server"), argv
    assert b"--dir" in argv and str(auth_conf).encode() in argv, argv
    assert PASSWORD.encode() not in cmdline
    for fragment in ("pa ss@w", "o/r?d#1", "%2'3"):
        assert fragment.encode() not in cmdline, cmdline
    assert b"requirepass" not in cmdline
