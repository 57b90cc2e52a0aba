"""Real redis-server and PostgreSQL 15 processes on loopback, for the component tests.

Each server gets its own temporary directory and a free 127.0.0.1 port, runs in the
foreground as a child of the test process (so its pid is known and nothing is left behind),
and is stopped by `stop()`. A missing binary or a server that does not come up is a test
failure with a clear message, never a skip. `scripts/dev/install-test-deps.sh` installs the
binaries on a fresh machine.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
INSTALL_HINT = "run scripts/dev/install-test-deps.sh (as root) to install the component test dependencies"


def require_binary(path_or_name: str) -> str:
    found = shutil.which(path_or_name) if os.sep not in path_or_name else path_or_name
    if not found or not os.access(found, os.X_OK):
        pytest.fail(f"required binary {path_or_name!r} is missing; {INSTALL_HINT}", pytrace=False)
    return found


def free_port() -> int:
    """A port nothing listens on right now (bound then released on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"server exited with {process.returncode} before listening on {port}:\n{_tail(log)}", pytrace=False
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"server did not listen on 127.0.0.1:{port} within {timeout:.0f}s:\n{_tail(log)}", pytrace=False)


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass
class RunningServer:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path
    _stop_signal: int = signal.SIGTERM
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return _tail(self.log, 20000)

    def stop(self) -> None:
        stop_process(self.process, self._stop_signal)
        for cleanup in self._cleanups:
            cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------------------


def redis_conf_quote(value: str) -> str:
    """A redis.conf double-quoted string: backslash and double quote escaped with a backslash."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_redis(password: str | None = None) -> RunningServer:
    """redis-server from a config file in its own temp dir, listening on 127.0.0.1 only."""
    binary = require_binary("redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="bluegreen-redis-"))
    port = free_port()
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        "daemonize no",
        f"dir {workdir}",
        'save ""',
        "appendonly no",
        "loglevel notice",
    ]
    if password is not None:
        lines.append(f"requirepass {redis_conf_quote(password)}")
    conf = workdir / "redis.conf"
    conf.write_text("\n".join(lines) + "\n")
    conf.chmod(0o600)
    log = workdir / "redis.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, str(conf)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = RunningServer(port, process, workdir, log)
    try:
        wait_for_port(port, process, log)
    except BaseException:
        server.stop()
        raise
    return server


def start_shell_redis(script: str, env: Mapping[str, str], port: int, workdir: Path) -> RunningServer:
    """Runs a `sh -c` script that ends by exec'ing redis-server (so the child pid is the server)."""
    require_binary("redis-server")
    log = workdir / "redis.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["sh", "-c", script], env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = RunningServer(port, process, workdir, log)
    try:
        wait_for_port(port, process, log)
    except BaseException:
        server.stop()
        raise
    return server


# --- PostgreSQL 15 ----------------------------------------------------------------------------


def _pg_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            f"no 'postgres' system user to run PostgreSQL as (it refuses to run as root); {INSTALL_HINT}", pytrace=False
        )


def _run_as(account: pwd.struct_passwd, argv: Sequence[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home)},
        timeout=120,
    )


@dataclass
class PostgresServer(RunningServer):
    socket_dir: Path = Path("/nonexistent")

    def admin_conninfo(self) -> str:
        """Superuser over the Unix socket (trust auth), for setting the test up."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"


def start_postgres() -> PostgresServer:
    """A throwaway PostgreSQL 15 cluster owned by the `postgres` user, TCP on 127.0.0.1 only.

    Local (Unix socket) connections are trusted so the test can create roles; TCP connections
    need a scram-sha-256 password, which is what the URLs under test must get right.
    """
    for name in ("initdb", "postgres"):
        require_binary(str(PG_BIN / name))
    account = _pg_account()
    workdir = Path(tempfile.mkdtemp(prefix="bluegreen-pg-"))
    workdir.chmod(0o700)
    os.chown(workdir, account.pw_uid, account.pw_gid)
    data = workdir / "data"
    sockets = workdir / "sock"
    sockets.mkdir()
    os.chown(sockets, account.pw_uid, account.pw_gid)
    init = _run_as(
        account,
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        home=workdir,
    )
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}", pytrace=False)
    port = free_port()
    log = workdir / "postgres.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        process = subprocess.Popen(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={sockets}",
                "-c",
                "fsync=off",
                "-c",
                "ssl=off",
            ],
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            stdout=fd,
            stderr=fd,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(workdir)},
        )
    finally:
        os.close(fd)
    # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, stop at once.
    server = PostgresServer(port, process, workdir, log, signal.SIGINT, socket_dir=sockets)
    try:
        wait_for_port(port, process, log, timeout=30)
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: PostgresServer, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"postgres exited with {server.process.returncode}:\n{server.log_text()}", pytrace=False)
        try:
            with psycopg.connect(server.admin_conninfo(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as error:  # still starting up
            last = error
            time.sleep(0.1)
    pytest.fail(
        f"postgres did not accept connections within {timeout:.0f}s: {last}\n{server.log_text()}", pytrace=False
    )
