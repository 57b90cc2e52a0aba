"""The e2e harness keeps its promises: its own dockerd starts, the local images build, and each
image honours the contract the Pulumi program relies on (official postgres/redis/nginx image
behaviour, a Medusa-like test app), on a user-defined network this test creates.

If the harness cannot start a Docker engine the test FAILS (never skips): every e2e test
after it would be meaningless without one.

Run:  .venv/bin/pytest -v tests/e2e/test_harness.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from core.docker_cli import sync_postgres_password

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "harness"

# Every character a naive URL or config writer gets wrong: @ : / ? # % ' " and a space.
HOSTILE_PASSWORD = "p@ss:w/rd?x#1%2'q\" sp ace"

IMAGES = {
    "base": "medusa-bg/base:bookworm",
    "postgres": "medusa-bg/postgres:15",
    "redis": "medusa-bg/redis:7",
    "nginx": "medusa-bg/nginx:1.28",
    "node": "medusa-bg/node:22",
    "v1": "medusa-bg/testapp:v1",
    "v2": "medusa-bg/testapp:v2",
    "never-healthy": "medusa-bg/testapp:never-healthy",
    "crash": "medusa-bg/testapp:crash",
    "badmigrate": "medusa-bg/testapp:badmigrate",
    "errors-10pct": "medusa-bg/testapp:errors-10pct",
}


# --- harness lifecycle ------------------------------------------------------------------------


def _docker_host() -> str:
    out = subprocess.run([str(HARNESS / "dockerd.sh"), "env"], capture_output=True, text=True, check=True)
    # "export DOCKER_HOST=unix:///run/medusa-bg/docker.sock" (then a PATH line)
    line = next(line for line in out.stdout.splitlines() if line.startswith("export DOCKER_HOST="))
    return line.split("=", 1)[1]


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Docker:
    """The docker CLI against the harness's engine, recording what this test creates."""

    def __init__(self, host: str, prefix: str) -> None:
        self.env = {**os.environ, "DOCKER_HOST": host}
        self.prefix = prefix
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.volumes: list[str] = []
        self.net = self.network("net")

    def run(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, input=input, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args[:3])}... exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def network(self, what: str) -> str:
        name = self.name(what)
        self.run("network", "create", name)
        self.networks.append(name)
        return name

    def volume(self, what: str) -> str:
        name = self.name(what)
        self.run("volume", "create", name)
        self.volumes.append(name)
        return name

    def start(self, what: str, image: str, *args: str, opts: tuple[str, ...] = ()) -> str:
        """docker run -d; returns the container name (also its host name on the network)."""
        name = self.name(what)
        self.containers.append(name)
        # On the test's own network unless told otherwise; the alias makes `what` resolvable.
        net = () if "--network" in opts else ("--network", self.net)
        self.run("run", "-d", "--name", name, "--hostname", what, *net, "--network-alias", what, *opts, image, *args)
        return name

    def oneshot(
        self,
        image: str,
        *args: str,
        opts: tuple[str, ...] = (),
        check: bool = False,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """docker run --rm; the result of the command, not raising unless check."""
        interactive = ("-i",) if input is not None else ()
        return self.run("run", "--rm", *interactive, *opts, image, *args, check=check, input=input, timeout=timeout)

    def inspect(self, name: str) -> dict:
        return json.loads(self.run("inspect", name).stdout)[0]

    def host_port(self, name: str, port: int) -> int:
        out = self.run("port", name, f"{port}/tcp").stdout.split()[0]  # "127.0.0.1:49153"
        host, _, hport = out.rpartition(":")
        assert host == "127.0.0.1", f"port published on {host}, not loopback"
        return int(hport)

    def wait_exit(self, name: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.inspect(name)["State"]
            if not state["Running"] and state["Status"] in ("exited", "dead"):
                return state["ExitCode"]
            time.sleep(0.2)
        raise AssertionError(f"{name} still running after {timeout}s")

    def cleanup(self) -> list[str]:
        problems = []
        for c in reversed(self.containers):
            p = self.run("rm", "-f", "-v", c, check=False)
            if p.returncode and "No such container" not in p.stderr:
                problems.append(p.stderr)
        for n in self.networks:
            p = self.run("network", "rm", n, check=False)
            if p.returncode:
                problems.append(p.stderr)
        for v in self.volumes:
            p = self.run("volume", "rm", "-f", v, check=False)
            if p.returncode:
                problems.append(p.stderr)
        return problems


@pytest.fixture(scope="module")
def harness():
    """Start the harness's dockerd (stopped afterwards only if this test started it), build images."""
    status = subprocess.run([str(HARNESS / "dockerd.sh"), "status"], capture_output=True, text=True)
    started_here = status.returncode != 0
    t0 = time.monotonic()
    start = subprocess.run([str(HARNESS / "dockerd.sh"), "start"], capture_output=True, text=True, timeout=900)
    if start.returncode != 0:
        pytest.fail(
            "harness/dockerd.sh start failed, so no e2e test can run (not skipping: this is a broken "
            f"environment, not an optional feature):\n{_tail(start.stderr + start.stdout)}",
            pytrace=False,
        )
    print(f"\ndockerd ready in {time.monotonic() - t0:.1f}s: {_tail(start.stderr, 3)}")
    t0 = time.monotonic()
    images = subprocess.run([str(HARNESS / "images.sh")], capture_output=True, text=True, timeout=3600)
    if images.returncode != 0:
        pytest.fail(f"harness/images.sh failed:\n{_tail(images.stderr + images.stdout)}", pytrace=False)
    print(f"images ready in {time.monotonic() - t0:.1f}s: {images.stdout.strip()}")

    docker = Docker(_docker_host(), f"mbgtest-{uuid.uuid4().hex[:8]}")
    try:
        yield docker
    finally:
        problems = docker.cleanup()
        if started_here:
            subprocess.run([str(HARNESS / "dockerd.sh"), "stop"], capture_output=True, text=True, timeout=120)
        assert not problems, f"cleanup left resources behind: {problems}"


# --- helpers ----------------------------------------------------------------------------------


def http_get(port: int, path: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_http(port: int, path: str, want: int, timeout: float) -> list[int]:
    """Polls until `want`; returns every status seen (connection failures as 0)."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = http_get(port, path, timeout=2)
        except (OSError, urllib.error.URLError):
            status = 0
        seen.append(status)
        if status == want:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"GET {path} never answered {want} within {timeout}s; saw {sorted(set(seen))}")


def ws_echo(port: int, path: str, text: str, host: str = "localhost") -> str:
    """Minimal RFC 6455 client: handshake, one masked text frame, read one frame back."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, f"connection closed during handshake: {buf!r}"
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), lines[0]
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").encode()).digest()
        ).decode()
        assert hdrs.get("sec-websocket-accept") == accept
        payload = text.encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):
            chunk = s.recv(4096)
            assert chunk, "connection closed before the echo"
            rest += chunk
        assert rest[0] == 0x81, f"not a final text frame: {rest[:2]!r}"
        n = rest[1] & 0x7F
        return rest[2 : 2 + n].decode()


def pg_url(user: str, password: str, host: str, db: str, query: str = "sslmode=disable") -> str:
    q = urllib.parse.quote
    return f"postgres://{q(user, safe='')}:{q(password, safe='')}@{host}:5432/{q(db, safe='')}" + (
        f"?{query}" if query else ""
    )


# --- tests ------------------------------------------------------------------------------------


def test_images_present_and_labelled(harness):
    for image in IMAGES.values():
        labels = harness.inspect(image)["Config"]["Labels"] or {}
        assert labels.get("medusa-bg.recipe"), f"{image} has no recipe label"


def test_node_image(harness):
    out = harness.oneshot(
        IMAGES["node"], "sh", "-c", "node --version; npm --version; npx --version; id -u node", check=True
    ).stdout.split()
    assert out[0].startswith("v22."), out
    assert out[3] == "1000", out


@pytest.fixture(scope="module")
def postgres(harness):
    name = harness.start(
        "postgres",
        IMAGES["postgres"],
        opts=(
            "--network",
            harness.net,
            "-e",
            f"POSTGRES_PASSWORD={HOSTILE_PASSWORD}",
            "-e",
            "POSTGRES_USER=medusa",
            "-e",
            "POSTGRES_DB=medusa_db",
            "-v",
            f"{harness.volume('pgdata')}:/var/lib/postgresql/data",
        ),
    )
    deadline = time.monotonic() + 60
    while harness.run("exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "medusa", check=False).returncode != 0:
        assert time.monotonic() < deadline, f"postgres never ready:\n{harness.run('logs', name).stderr}"
        time.sleep(0.3)
    return name


def test_postgres_refuses_to_start_without_password(harness):
    p = harness.oneshot(IMAGES["postgres"], timeout=60)
    assert p.returncode != 0
    assert "POSTGRES_PASSWORD" in p.stderr


def test_postgres_password_auth_over_the_network(harness, postgres):
    psql = (
        "psql",
        "-h",
        "postgres",
        "-U",
        "medusa",
        "-d",
        "medusa_db",
        "-tAc",
        "select current_user || ' ' || current_database()",
    )
    ok = harness.oneshot(
        IMAGES["postgres"], *psql, opts=("--network", harness.net, "-e", f"PGPASSWORD={HOSTILE_PASSWORD}")
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "medusa medusa_db"
    bad = harness.oneshot(IMAGES["postgres"], *psql, opts=("--network", harness.net, "-e", "PGPASSWORD=wrong"))
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr
    # pg_dump, the backup tool, is on PATH and works over the network too.
    dump = harness.oneshot(
        IMAGES["postgres"],
        "pg_dump",
        "-h",
        "postgres",
        "-U",
        "medusa",
        "-d",
        "medusa_db",
        "--schema-only",
        opts=("--network", harness.net, "-e", f"PGPASSWORD={HOSTILE_PASSWORD}"),
    )
    assert dump.returncode == 0 and "PostgreSQL database dump" in dump.stdout, dump.stderr


def test_postgres_runs_as_postgres_without_the_password_in_its_environment(harness, postgres):
    ps = harness.run("exec", postgres, "ps", "-o", "user=,args=", "-p", "1").stdout
    assert ps.split()[0] == "postgres" and "postgres" in ps.split()[1], ps
    environ = harness.run("exec", "-u", "postgres", postgres, "cat", "/proc/1/environ").stdout
    assert HOSTILE_PASSWORD not in environ


def _wait_pg_ready(harness, name: str) -> None:
    deadline = time.monotonic() + 60
    while harness.run("exec", name, "pg_isready", "-h", "127.0.0.1", check=False).returncode != 0:
        assert time.monotonic() < deadline, harness.run("logs", name).stderr
        time.sleep(0.3)


def test_kept_volume_takes_the_new_password_after_sync(harness):
    """`pulumi destroy` keeps pgdata but forgets a generated password; the next container's
    password must win, or the app is locked out of its own data (docker_cli.sync_postgres_password)."""
    volume = harness.volume("pgkept")
    env = ("-e", "POSTGRES_USER=medusa", "-e", "POSTGRES_DB=medusa_db", "-v", f"{volume}:/var/lib/postgresql/data")
    first = harness.start("pgold", IMAGES["postgres"], opts=("-e", "POSTGRES_PASSWORD=old-password", *env))
    _wait_pg_ready(harness, first)
    harness.run("rm", "-f", first)
    second = harness.start("pgnew", IMAGES["postgres"], opts=("-e", f"POSTGRES_PASSWORD={HOSTILE_PASSWORD}", *env))
    _wait_pg_ready(harness, second)

    def login(password: str) -> subprocess.CompletedProcess:
        return harness.run(
            "exec", "-e", f"PGPASSWORD={password}", second,
            "psql", "-h", "127.0.0.1", "-U", "medusa", "-d", "medusa_db", "-tAc", "select 1", check=False,
        )

    assert login(HOSTILE_PASSWORD).returncode != 0, "the image itself never re-applies the password"
    sync = subprocess.run(
        ["sh", "-c", sync_postgres_password(second)], env=harness.env, capture_output=True, text=True, timeout=60
    )
    assert sync.returncode == 0, sync.stderr
    assert sync.stdout.strip() == "password-synced"
    assert HOSTILE_PASSWORD not in sync_postgres_password(second)
    assert login(HOSTILE_PASSWORD).stdout.strip() == "1"
    assert "password authentication failed" in login("old-password").stderr


def test_postgres_stops_clean_on_sigterm(harness, postgres):
    # Its own container so the shared one stays up for the other tests. Ready over TCP: during
    # init the image runs a socket-only temporary server that a plain pg_isready would accept.
    name = harness.start("pgstop", IMAGES["postgres"], opts=("-e", "POSTGRES_PASSWORD=x"))
    _wait_pg_ready(harness, name)
    harness.run("stop", "-t", "20", name)
    # Exit code 0 means postgres shut down on SIGTERM; a SIGKILL after the timeout gives 137.
    assert harness.inspect(name)["State"]["ExitCode"] == 0
    assert "database system is shut down" in harness.run("logs", name).stderr


REDIS_CMD = (
    # The password goes from the environment into a 0600 file, never onto a command line; the
    # config parser takes a double-quoted string, so \ and " are escaped.
    "umask 077; "
    'printf \'requirepass "%s"\\n\' "$(printf \'%s\' "$REDIS_PASSWORD" | sed \'s/[\\\\"]/\\\\&/g\')" > /tmp/auth.conf; '
    "exec redis-server /tmp/auth.conf --appendonly yes"
)


def test_redis_password_from_env_never_on_a_command_line(harness):
    name = harness.start(
        "redis",
        IMAGES["redis"],
        "sh",
        "-c",
        REDIS_CMD,
        opts=(
            "--network",
            harness.net,
            "-e",
            f"REDIS_PASSWORD={HOSTILE_PASSWORD}",
            "-v",
            f"{harness.volume('redisdata')}:/data",
        ),
    )
    cli = ("redis-cli", "-h", "redis", "--no-auth-warning")
    auth = ("--network", harness.net, "-e", f"REDISCLI_AUTH={HOSTILE_PASSWORD}")
    deadline = time.monotonic() + 30
    while (p := harness.oneshot(IMAGES["redis"], *cli, "ping", opts=auth)).stdout.strip() != "PONG":
        assert time.monotonic() < deadline, f"redis never answered PONG: {p.stdout}{p.stderr}"
        time.sleep(0.3)
    assert harness.oneshot(IMAGES["redis"], *cli, "set", "k", "v", opts=auth).stdout.strip() == "OK"
    assert harness.oneshot(IMAGES["redis"], *cli, "get", "k", opts=auth).stdout.strip() == "v"
    noauth = harness.oneshot(IMAGES["redis"], *cli, "get", "k", opts=("--network", harness.net))
    assert "NOAUTH" in noauth.stdout + noauth.stderr
    wrong = harness.oneshot(IMAGES["redis"], *cli, "ping", opts=("--network", harness.net, "-e", "REDISCLI_AUTH=nope"))
    assert "PONG" not in wrong.stdout

    info = harness.inspect(name)
    visible = json.dumps([info["Args"], info["Path"], info["Config"]["Cmd"], info["Config"]["Entrypoint"]])
    assert HOSTILE_PASSWORD not in visible and "sp ace" not in visible
    ps = harness.run("exec", name, "ps", "-eo", "args").stdout
    assert "sp ace" not in ps and "redis-server" in ps
    mode = harness.run("exec", name, "stat", "-c", "%a", "/tmp/auth.conf").stdout.strip()
    assert mode == "600"
    assert harness.run("exec", name, "sh", "-c", "cd /data && pwd && command -v redis-cli").stdout.split() == [
        "/data",
        "/usr/bin/redis-cli",
    ]


def test_redis_default_command(harness):
    name = harness.start("redis-plain", IMAGES["redis"], opts=("--network", harness.net))
    deadline = time.monotonic() + 30
    while (
        harness.oneshot(
            IMAGES["redis"], "redis-cli", "-h", "redis-plain", "ping", opts=("--network", harness.net)
        ).stdout.strip()
        != "PONG"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    user = harness.run("exec", name, "ps", "-o", "user=", "-p", "1").stdout.strip()
    assert user == "redis"


@pytest.fixture(scope="module")
def app_v1(harness):
    name = harness.start(
        "app-blue",
        IMAGES["v1"],
        opts=(
            "--network",
            harness.net,
            "-p",
            "127.0.0.1::9000",
            "-e",
            "DEPLOY_COLOR=blue",
            "-e",
            "MEDUSA_WORKER_MODE=server",
            "-e",
            "BOOT_DELAY_MS=3000",
        ),
    )
    return name, harness.host_port(name, 9000)


def test_testapp_health_goes_503_then_200(harness, app_v1):
    name, port = app_v1
    seen = wait_http(port, "/health", 200, timeout=30)
    assert 503 in seen, f"never saw 503 before 200: {seen[:5]}..."
    assert http_get(port, "/health") == (200, "OK")
    status, body = http_get(port, "/")
    assert status == 200 and json.loads(body) == {"color": "blue", "version": "v1", "mode": "server"}
    status, body = http_get(port, "/store/products")
    assert status == 400 and json.loads(body)["type"] == "not_allowed"
    assert http_get(port, "/store/products", {"x-publishable-api-key": "pk_x"})[0] == 200
    assert http_get(port, "/slow?ms=300")[0] == 200
    assert ws_echo(port, "/ws", "hello") == "blue v1: hello"
    assert harness.run("exec", name, "id", "-u").stdout.strip() == "1000"
    assert harness.run("exec", name, "ps", "-o", "args=", "-p", "1").stdout.strip().startswith("/usr/bin/tini")
    # The health check the program uses: node's fetch, no curl needed.
    probe = harness.run(
        "exec",
        name,
        "node",
        "-e",
        "fetch('http://127.0.0.1:9000/health').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))",
        check=False,
    )
    assert probe.returncode == 0, probe.stderr


def test_testapp_worker_mode_and_versions(harness):
    name = harness.start(
        "app-green-worker",
        IMAGES["v2"],
        opts=(
            "-p",
            "127.0.0.1::9000",
            "-e",
            "DEPLOY_COLOR=green",
            "-e",
            "MEDUSA_WORKER_MODE=worker",
            "-e",
            "BOOT_DELAY_MS=200",
        ),
    )
    port = harness.host_port(name, 9000)
    wait_http(port, "/health", 200, timeout=20)
    assert json.loads(http_get(port, "/")[1]) == {"color": "green", "version": "v2", "mode": "worker"}
    assert http_get(port, "/app")[0] == 404


def test_testapp_graceful_shutdown_finishes_in_flight(harness):
    name = harness.start("app-drain", IMAGES["v1"], opts=("-p", "127.0.0.1::9000", "-e", "BOOT_DELAY_MS=0"))
    port = harness.host_port(name, 9000)
    wait_http(port, "/health", 200, timeout=20)
    result: dict = {}
    slow = threading.Thread(target=lambda: result.update(r=http_get(port, "/slow?ms=2500", timeout=30)))
    slow.start()
    time.sleep(0.5)
    harness.run("stop", "-t", "20", name)
    slow.join(30)
    assert result.get("r", (0,))[0] == 200, result
    assert harness.inspect(name)["State"]["ExitCode"] == 0
    assert "draining" in harness.run("logs", name).stdout


def test_testapp_never_healthy_and_crash(harness):
    nh = harness.start("app-nh", IMAGES["never-healthy"], opts=("-p", "127.0.0.1::9000", "-e", "BOOT_DELAY_MS=200"))
    crash = harness.start("app-crash", IMAGES["crash"], opts=("-e", "BOOT_DELAY_MS=500"))
    port = harness.host_port(nh, 9000)
    wait_http(port, "/", 200, timeout=20)
    time.sleep(1.5)
    assert http_get(port, "/health")[0] == 503
    assert harness.wait_exit(crash, timeout=20) == 1


def test_migrate_cli_reaches_postgres_by_name(harness, postgres):
    def migrate(image: str, url: str) -> subprocess.CompletedProcess:
        return harness.oneshot(
            image,
            "npx",
            "medusa",
            "db:migrate",
            opts=("--network", harness.net, "-e", f"DATABASE_URL={url}"),
            timeout=60,
        )

    good = pg_url("medusa", HOSTILE_PASSWORD, "postgres", "medusa_db")
    ok = migrate(IMAGES["v2"], good)
    assert ok.returncode == 0, ok.stderr
    assert "migrations applied (testapp v2)" in ok.stdout
    assert HOSTILE_PASSWORD not in ok.stdout + ok.stderr
    # Like Medusa: without sslmode=disable a non-local Postgres without TLS is an error...
    nossl = migrate(IMAGES["v2"], pg_url("medusa", HOSTILE_PASSWORD, "postgres", "medusa_db", query=""))
    assert nossl.returncode == 1 and "SSL" in nossl.stderr
    # ...and so are a wrong password and a password that was not percent-encoded.
    wrong = migrate(IMAGES["v2"], pg_url("medusa", "wrong", "postgres", "medusa_db"))
    assert wrong.returncode == 1 and "password authentication failed" in wrong.stderr
    raw = migrate(IMAGES["v2"], f"postgres://medusa:{HOSTILE_PASSWORD}@postgres:5432/medusa_db?sslmode=disable")
    assert raw.returncode == 1
    bad = migrate(IMAGES["badmigrate"], good)
    assert bad.returncode == 1 and "migration" in bad.stderr and "migrations applied" not in bad.stdout


NGINX_CONF = r"""
map $http_upgrade $connection_upgrade { default upgrade; '' close; }
server {
    listen 80 default_server;
    resolver 127.0.0.11 valid=5s ipv6=off;
    location / {
        set $upstream http://app-blue:9000;
        proxy_pass $upstream;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
    }
    location = /missing {
        set $gone http://no-such-color:9000;
        proxy_pass $gone;
    }
}
"""


def test_nginx_serves_conf_d_and_proxies_by_name(harness, app_v1):
    _, app_port = app_v1
    wait_http(app_port, "/health", 200, timeout=30)

    plain = harness.start(
        "nginx-default",
        IMAGES["nginx"],
        opts=(
            "-p",
            "127.0.0.1::80",
        ),
    )
    port = harness.host_port(plain, 80)
    wait_http(port, "/", 200, timeout=20)
    assert "Welcome to nginx" in http_get(port, "/")[1]
    assert "GET / HTTP/1.1" in harness.run("logs", plain).stdout, "access log is not on stdout"

    conf = harness.volume("nginx-conf")
    harness.oneshot(
        IMAGES["base"],
        "sh",
        "-c",
        "cat > /conf/default.conf",
        opts=("-v", f"{conf}:/conf"),
        input=NGINX_CONF,
        check=True,
    )
    router = harness.start(
        "router",
        IMAGES["nginx"],
        opts=("--network", harness.net, "-p", "127.0.0.1::80", "-v", f"{conf}:/etc/nginx/conf.d:ro"),
    )
    port = harness.host_port(router, 80)
    wait_http(port, "/health", 200, timeout=20)
    assert json.loads(http_get(port, "/")[1])["color"] == "blue"
    assert ws_echo(port, "/ws", "through nginx") == "blue v1: through nginx"
    # A host name that does not resolve is a 502 on its route, not a dead router.
    assert http_get(port, "/missing")[0] == 502
    assert harness.inspect(router)["State"]["Running"]
    assert harness.run("exec", router, "nginx", "-t", check=False).returncode == 0


def test_nginx_modules(harness):
    out = harness.oneshot(IMAGES["nginx"], "nginx", "-V", check=True).stderr
    print(out)
    for module in ("http_ssl_module", "http_v2_module", "http_realip_module"):
        assert f"--with-{module}" in out, module
    for absent in ("--without-http_map_module", "--without-http_limit_req_module", "--without-http_proxy_module"):
        assert absent not in out, absent
