"""Real nginx, two colored upstreams and a non-retrying load client, all on 127.0.0.1.

Shared by tests/component/test_router_nginx.py and bench/switch_bench.py. Standard library
only (no pytest import), so the benchmark runs as a plain script.

- `Upstream`: a threaded `http.server` child process (HTTP/1.1 keep-alive) that says which
  color it is (`X-Upstream-Color` header and body) and serves `/hold` (a long request held
  until released or a cap), `/ws` (a websocket echo) and, only when called directly,
  `/_stats` and `/_release`; `/status/NNN` answers with status NNN.
- `Router`: the router image's nginx (scripts/dev/install-nginx.sh) run as root with its own
  prefix, pid, error log and temp paths in a temporary directory, a minimal top-level
  nginx.conf that includes the rendered file inside `http {}` (the layout of the product's
  container: `conf.d/bluegreen.conf`, `conf.d/bluegreen/state/`), workers as `nobody` like the
  image's unprivileged workers, and the product's control script (`nginx/bluegreen-router.sh`)
  driven with BLUEGREEN_CONF_DIR / BLUEGREEN_NGINX; `boot` also starts the per-color metrics
  exporter (`nginx/bluegreen-metrics.pl`) as `pulumi up` does, on this router's own ports.
- `LoadClient`: N keep-alive connections at a fixed per-connection rate plus a stream of
  fresh connections; it never retries a request (a failed request is recorded as failed and
  the next scheduled request opens a new connection), and records every request's start,
  end, status, color and error so callers can reason per request.

Every wait is bounded; every process started here is stopped by its own pid.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[2]
CONTROL_SCRIPT = REPO / "nginx" / "bluegreen-router.sh"
INSTALL_NGINX = REPO / "scripts" / "dev" / "install-nginx.sh"
INSTALL_HINT = "run scripts/dev/install-test-deps.sh (as root) to install nginx, wrk and openssl"
WORKER_PROCESSES = 2
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HarnessError(RuntimeError):
    pass


@functools.cache
def nginx_binary() -> str:
    """The nginx the router image runs (built once from source and cached: the router needs
    nginx >= 1.27.3, Debian bookworm ships 1.22); the script prints its path."""
    done = subprocess.run([str(INSTALL_NGINX)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(f"{INSTALL_NGINX} failed:\n{done.stderr}")
    return require_binary(done.stdout.strip().splitlines()[-1])


def require_binary(path: str) -> str:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise HarnessError(f"required binary {path} is missing; {INSTALL_HINT}")
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now (bound then released on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port nothing listens on right now: a DNS resolver there never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; HarnessError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def _stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, ..., starttime at 19)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
    return stat.rsplit(")", 1)[1].split()


def children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid` (nginx workers of a master)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(int(entry))
            if fields and int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def workers_cpu_seconds(master: int) -> float:
    """CPU time (user + system) the children of `master` (nginx workers) have used so far."""
    return cpu_seconds(children_of(master))


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) these processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Upstream: a colored HTTP/1.1 server with a long request and a websocket echo
# ---------------------------------------------------------------------------------------------


class _UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True
    # Fresh connections (direct clients, a router whose pool is still filling) arrive in bursts;
    # the default backlog of 5 would drop SYNs under load and add 1 s retransmits.
    request_queue_size = 1024

    def __init__(self, color: str, address: tuple[str, int]) -> None:
        super().__init__(address, _UpstreamHandler)
        self.color = color
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.holding = 0
        self.websockets = 0
        self.releases: dict[str, threading.Event] = {}

    def release_event(self, key: str) -> threading.Event:
        with self.lock:
            return self.releases.setdefault(key, threading.Event())


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bg-upstream"
    server: _UpstreamServer
    # http.server sends the headers and the body in two writes. On a reused connection Nagle
    # then holds the body until the client's delayed ACK (~40 ms): a cost of this test server,
    # not of the router, so it is turned off as any production HTTP server does.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.lock:  # one handler per accepted connection
            self.server.connections += 1

    def _reply(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Upstream-Color", self.server.color)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if not url.path.startswith("/_"):  # direct control calls are not traffic
            with self.server.lock:
                self.server.requests += 1
        if url.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
        elif url.path == "/hold":
            self._hold(query.get("id", "default"), float(query.get("max", "60")))
        elif url.path == "/_release":
            self.server.release_event(query.get("id", "default")).set()
            self._reply(200, "released\n")
        elif re.fullmatch(r"/status/[1-5][0-9][0-9]", url.path):  # an answer with that status
            self._reply(int(url.path.rsplit("/", 1)[1]), f"{self.server.color}\n")
        elif url.path == "/_headers":  # what reached the color, to check what the router strips
            self._reply(200, json.dumps(dict(self.headers.items())), "application/json")
        elif url.path == "/_stats":
            with self.server.lock:
                stats = {
                    "color": self.server.color,
                    "requests": self.server.requests,
                    "connections": self.server.connections,
                    "holding": self.server.holding,
                    "websockets": self.server.websockets,
                }
            self._reply(200, json.dumps(stats), "application/json")
        else:
            self._reply(200, f"{self.server.color}\n")

    def _hold(self, key: str, cap: float) -> None:
        event = self.server.release_event(key)
        with self.server.lock:
            self.server.holding += 1
        try:
            released = event.wait(timeout=cap)
        finally:
            with self.server.lock:
                self.server.holding -= 1
        self._reply(200, f"{self.server.color} {'released' if released else 'cap'}\n")

    # -- websocket (RFC 6455, enough for an echo) --------------------------------------------

    def _websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Upstream-Color", self.server.color)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with self.server.lock:
            self.server.websockets += 1
        try:
            while True:
                frame = self._recv_frame()
                if frame is None:
                    return
                opcode, payload = frame
                if opcode == 0x1:
                    self._send_frame(0x1, f"{self.server.color}:{payload.decode()}".encode())
                elif opcode == 0x2:
                    self._send_frame(0x2, payload)
                elif opcode == 0x9:
                    self._send_frame(0xA, payload)
                elif opcode == 0x8:
                    self._send_frame(0x8, payload[:2])
                    return
        except OSError:
            return
        finally:
            with self.server.lock:
                self.server.websockets -= 1

    def _read_exact(self, n: int) -> bytes | None:
        data = self.rfile.read(n)
        return data if len(data) == n else None

    def _recv_frame(self) -> tuple[int, bytes] | None:
        head = self._read_exact(2)
        if head is None:
            return None
        opcode, masked, length = head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
        if length == 126:
            ext = self._read_exact(2)
            if ext is None:
                return None
            length = struct.unpack(">H", ext)[0]
        elif length == 127:
            ext = self._read_exact(8)
            if ext is None:
                return None
            length = struct.unpack(">Q", ext)[0]
        mask = self._read_exact(4) if masked else b""
        payload = self._read_exact(length) if length else b""
        if mask is None or payload is None:
            return None
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return opcode, payload

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        self.wfile.write(head + payload)
        self.wfile.flush()


def serve_upstream(color: str, port: int = 0) -> None:
    """Entry point of the upstream child process: prints `LISTENING <port>` then serves."""
    server = _UpstreamServer(color, ("127.0.0.1", port))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"LISTENING {server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.2)


class Upstream:
    """A colored upstream in its own process (its own GIL, like a real separate server)."""

    def __init__(self, color: str) -> None:
        self.color = color
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "upstream", color],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout=20)
        if not line or not line[0].startswith("LISTENING "):
            self.stop()
            raise HarnessError(f"{color} upstream did not start (got {line!r})")
        self.port = int(line[0].split()[1])
        self.addr = f"127.0.0.1:{self.port}"

    def direct(self, path: str, timeout: float = 10.0) -> dict[str, Any] | str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        return json.loads(body) if path.startswith("/_stats") else body

    def stats(self) -> dict[str, Any]:
        result = self.direct("/_stats")
        assert isinstance(result, dict)
        return result

    def release(self, key: str) -> None:
        self.direct(f"/_release?id={key}")

    def stop(self) -> None:
        _stop_process(self.process)
        if self.process.stdout:
            self.process.stdout.close()


# ---------------------------------------------------------------------------------------------
# A tiny DNS server: answers A records it knows, NXDOMAIN for the rest (like Docker's DNS
# for a container that does not exist)
# ---------------------------------------------------------------------------------------------


class FakeDns:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self.records: dict[str, str] = {}
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet, peer = self.sock.recvfrom(512)
            except (TimeoutError, OSError):
                continue
            with contextlib.suppress(Exception):
                self.sock.sendto(self._answer(packet), peer)

    def _answer(self, packet: bytes) -> bytes:
        qid, flags = struct.unpack(">HH", packet[:4])
        labels, i = [], 12
        while packet[i]:
            labels.append(packet[i + 1 : i + 1 + packet[i]].decode().lower())
            i += 1 + packet[i]
        qtype = struct.unpack(">H", packet[i + 1 : i + 3])[0]
        question = packet[12 : i + 5]
        name = ".".join(labels)
        self.queries.append(name)
        address = self.records.get(name)
        rcode = 0 if address else 3  # NXDOMAIN
        answers = b""
        if address and qtype == 1:
            answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(address)
        header = struct.pack(">HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, 1 if answers else 0, 0, 0)
        return header + question + answers

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# TLS material
# ---------------------------------------------------------------------------------------------


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1/localhost, made with openssl."""
    openssl = require_binary("/usr/bin/openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def client_tls_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.set_alpn_protocols(["http/1.1"])
    return context


# ---------------------------------------------------------------------------------------------
# nginx router
# ---------------------------------------------------------------------------------------------


@dataclass
class Ports:
    http: int = field(default_factory=free_port)
    https: int = field(default_factory=free_port)
    preview: int = field(default_factory=free_port)
    probe: int = field(default_factory=free_port)
    metrics_log: int = field(default_factory=free_udp_port)
    metrics: int = field(default_factory=free_port)


MAIN_CONF = """\
{user}
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    # As in the nginx image: an access log at the http level, beside the router's metrics log
    # (`access_log off` here would switch that one off too).
    access_log {root}/access.log;
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    # As in the nginx image: the router's volume is mounted at conf.d and holds bluegreen.conf.
    include {root}/conf.d/*.conf;
}}
"""


def loopback_only(config: str) -> str:
    """The rendered config with every `listen PORT` bound to 127.0.0.1 only.

    In the product nginx listens on all interfaces inside its container and Docker publishes
    the ports on the configured host address; on a test machine that would expose the ports
    on every interface. Only the listen address changes; the rest stays byte for byte.
    """
    bound, count = re.subn(r"^(\s*listen )(\d+)(?=[\s;])", r"\g<1>127.0.0.1:\2", config, flags=re.MULTILINE)
    if count == 0 or re.search(r"^\s*listen \d+[\s;]", bound, flags=re.MULTILINE):
        raise HarnessError("unexpected listen directives in the rendered config")
    return bound


class Router:
    """One nginx instance with its own prefix in a fresh temporary directory.

    The directory is world-searchable so the unprivileged workers can stat the state files,
    as the nginx image's workers do in the router's volume.
    """

    def __init__(self, root: Path | None = None, ports: Ports | None = None) -> None:
        nginx_binary()
        self.root = Path(root or tempfile.mkdtemp(prefix="bg-nginx-"))
        self.ports = ports or Ports()
        self.conf_dir = self.root / "conf.d"
        self.own_dir = self.conf_dir / "bluegreen"
        self.state_dir = self.own_dir / "state"
        self.config = self.conf_dir / "bluegreen.conf"
        self.error_log = self.root / "error.log"
        self.pid_file = self.root / "nginx.pid"
        for directory in (self.root, self.root / "temp", self.conf_dir, self.own_dir, self.state_dir):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o755)
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        (self.root / "nginx.conf").write_text(MAIN_CONF.format(user=user, root=self.root, workers=WORKER_PROCESSES))
        self.process: subprocess.Popen[bytes] | None = None

    # -- commands ------------------------------------------------------------------------------

    @property
    def nginx_argv(self) -> list[str]:
        return [nginx_binary(), "-p", f"{self.root}/", "-c", str(self.root / "nginx.conf")]

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BLUEGREEN_METRICS_LOG": str(self.root / "metrics.log"),
            "BLUEGREEN_CONF_DIR": str(self.conf_dir),
            "BLUEGREEN_NGINX": " ".join(self.nginx_argv),  # word-split by the script on purpose
        }

    def listen(self) -> dict[str, int]:
        """This router's own ports, as RouterConfigInput takes them."""
        return {
            "listen_http": self.ports.http,
            "listen_https": self.ports.https,
            "listen_preview": self.ports.preview,
            "listen_probe": self.ports.probe,
            "metrics_log_port": self.ports.metrics_log,
            "metrics_exporter_port": self.ports.metrics,
        }

    def install(self, config_text: str) -> None:
        """Write the rendered config where the product's apply puts it (before first boot)."""
        self.config.write_text(config_text)

    def nginx_test(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.nginx_argv, "-t"], capture_output=True, text=True, timeout=60)

    def script(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(CONTROL_SCRIPT), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def switch(self, route: str, color: str) -> subprocess.CompletedProcess[str]:
        result = self.script("switch", route, color)
        if result.returncode != 0:
            raise HarnessError(f"switch {route} {color} failed: {result.stderr}")
        return result

    def boot(self, timeout: float = 30.0) -> None:
        """Start nginx the way the router container does: `router.sh boot` (exec nginx), then its
        metrics exporter the way `pulumi up` does (`router.sh metrics`)."""
        self.start(["sh", str(CONTROL_SCRIPT), "boot"], timeout)
        self.start_metrics()

    def start_metrics(self) -> None:
        # Imported here: this file also runs as a plain script (the upstream's child process),
        # where the repository's packages are not on the path.
        from core.router_config import METRICS_EXPORTER
        from core.router_control import metrics_arguments

        shutil.copyfile(METRICS_EXPORTER, self.own_dir / "metrics.pl")
        started = subprocess.run(
            ["sh", str(CONTROL_SCRIPT), "metrics", *metrics_arguments(self.ports.metrics_log, self.ports.metrics)],
            env={**self.env, "BLUEGREEN_MASTER_PID": str(self.master_pid)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        if started.returncode != 0:
            raise HarnessError(f"router.sh metrics failed: {started.stderr}")
        wait_until(lambda: self._exporter_listening(), timeout=10, what="the metrics exporter to listen")

    def exporter_pids(self) -> list[int]:
        """The metrics exporter's perl process (not its supervisor), by this router's own path."""
        needle = str(self.own_dir / "metrics.pl").encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(argv) > 1 and argv[0].endswith(b"perl") and argv[1] == needle:
                found.append(int(entry))
        return found

    def _exporter_listening(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex(("127.0.0.1", self.ports.metrics)) == 0

    def start_plain(self, timeout: float = 30.0) -> None:
        """Start nginx directly in the foreground (the seed's container command)."""
        self.start([*self.nginx_argv, "-g", "daemon off;"], timeout)

    def start(self, argv: Sequence[str], timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            raise HarnessError("nginx already running")
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        log = open(self.root / "stdio.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.wait_ready(timeout)

    def listening_ports(self) -> list[int]:
        text = self.config.read_text() if self.config.exists() else ""
        ports = (self.ports.http, self.ports.https, self.ports.preview, self.ports.probe)
        return [p for p in ports if re.search(rf"^\s*listen (127\.0\.0\.1:)?{p}\b", text, flags=re.MULTILINE)]

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.process is not None

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise HarnessError(f"nginx exited with {self.process.returncode}:\n{self.logs()}")
            # `nginx -t` (run by `router.sh boot` first) also creates the pid file, empty, and
            # listens briefly: only the master's own pid in it means the real listeners are up.
            if not self.pid_file.exists() or self.pid_file.read_text().strip() != str(self.master_pid):
                return False
            if len(children_of(self.master_pid)) < WORKER_PROCESSES:
                return False
            for port in self.listening_ports():
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
            return True

        try:
            wait_until(ready, timeout, what="nginx to listen")
        except HarnessError as exc:
            raise HarnessError(f"{exc}\n{self.logs()}") from None

    @property
    def master_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        return children_of(self.master_pid) if self.running() else []

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reload(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.nginx_argv, "-s", "reload"], capture_output=True, text=True, timeout=60)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Stop this nginx by its master pid (SIGTERM fast, SIGQUIT graceful); workers too."""
        if self.process is None:
            return
        workers = {pid: _proc_stat(pid) for pid in self.workers()}
        _stop_process(self.process, sig, timeout)
        for pid, fields in workers.items():
            # Workers normally exit with the master; one left behind (same pid *and* start time,
            # so never a recycled pid) is killed so that nothing keeps listening.
            now = _proc_stat(pid)
            if fields and now and now[19] == fields[19]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def logs(self, chars: int = 4000) -> str:
        out = []
        for name in ("error.log", "stdio.log"):
            path = self.root / name
            if path.exists():
                out.append(f"--- {name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    # -- requests ------------------------------------------------------------------------------

    def get(
        self,
        path: str = "/",
        port: int | None = None,
        headers: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> Response:
        return fetch("127.0.0.1", port or self.ports.http, path, headers=headers, tls=tls, timeout=timeout)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def color(self) -> str | None:
        return self.headers.get("x-upstream-color")


def fetch(
    host: str,
    port: int,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    timeout: float = 30.0,
) -> Response:
    """One request on a new connection (`Connection: close`)."""
    conn: http.client.HTTPConnection
    if tls is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Load client: fixed rate, keep-alive, never retries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    stream: str  # "ka<N>" for keep-alive connection N, "new" for the fresh-connection stream
    start: float
    end: float
    status: int | None
    color: str | None
    error: str | None
    new_connection: bool

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


class LoadClient:
    """`connections` keep-alive connections, each sending `per_connection_rate` requests/s on
    a fixed schedule (no catch-up bursts), plus `new_connection_rate` requests/s each on a new
    connection, for `duration` seconds. A failed request is never retried."""

    def __init__(
        self,
        port: int,
        path: str = "/",
        connections: int = 20,
        per_connection_rate: float = 15.0,
        new_connection_rate: float = 0.0,
        duration: float = 11.0,
        tls: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        source: str = "127.0.0.1",  # another loopback address is another client to the router
    ) -> None:
        self.port, self.path, self.tls, self.timeout = port, path, tls, timeout
        self.source = (source, 0)
        self.connections, self.per_connection_rate = connections, per_connection_rate
        self.new_connection_rate, self.duration = new_connection_rate, duration
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0

    def _connection(self) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=self.timeout, context=self.tls, source_address=self.source
            )
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout, source_address=self.source)

    def start(self) -> LoadClient:
        self.started_at = time.monotonic()
        for i in range(self.connections):
            phase = i / max(self.connections, 1) / self.per_connection_rate
            thread = threading.Thread(target=self._keepalive_loop, args=(f"ka{i}", phase), daemon=True)
            self._threads.append(thread)
        if self.new_connection_rate > 0:
            self._threads.append(threading.Thread(target=self._fresh_loop, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """End the load before `duration` (which is then only a cap)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> list[Sample]:
        deadline = (
            self.started_at + self.duration + self.timeout + 10 if timeout is None else time.monotonic() + timeout
        )
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            raise HarnessError("load client threads did not finish in time")
        with self._lock:
            return sorted(self.samples, key=lambda s: s.start)

    def _schedule(self, interval: float, phase: float) -> Iterable[None]:
        end = self.started_at + self.duration
        next_at = self.started_at + phase
        while True:
            now = time.monotonic()
            if next_at >= end:
                return
            if next_at > now and self._stop.wait(next_at - now):
                return
            if self._stop.is_set():
                return
            yield None
            # Fixed rate; when behind, go on from now rather than bursting to catch up.
            next_at = max(next_at + interval, time.monotonic())

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def _one(self, conn: http.client.HTTPConnection, stream: str, fresh: bool, headers: dict[str, str]) -> bool:
        """One request; returns whether the connection can be reused."""
        start = time.monotonic()
        try:
            conn.request("GET", self.path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            self._record(
                Sample(stream, start, time.monotonic(), resp.status, resp.getheader("X-Upstream-Color"), None, fresh)
            )
            return not resp.will_close
        except Exception as exc:
            self._record(Sample(stream, start, time.monotonic(), None, None, f"{type(exc).__name__}: {exc}", fresh))
            return False

    def _keepalive_loop(self, stream: str, phase: float) -> None:
        conn: http.client.HTTPConnection | None = None
        for _ in self._schedule(1.0 / self.per_connection_rate, phase):
            fresh = conn is None
            if conn is None:
                conn = self._connection()
            if not self._one(conn, stream, fresh, {}):
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _fresh_loop(self) -> None:
        for _ in self._schedule(1.0 / self.new_connection_rate, 0.0):
            conn = self._connection()
            try:
                self._one(conn, "new", True, {"Connection": "close"})
            finally:
                conn.close()


@dataclass
class LoadSummary:
    total: int
    failed: int
    errors: int
    non_2xx: int
    colors: dict[str, int]
    connections_opened: int
    duration: float

    @property
    def rate(self) -> float:
        return self.total / self.duration if self.duration else 0.0


def summarize(samples: Sequence[Sample], duration: float) -> LoadSummary:
    colors: dict[str, int] = {}
    for s in samples:
        if s.color:
            colors[s.color] = colors.get(s.color, 0) + 1
    errors = sum(1 for s in samples if s.error is not None)
    non_2xx = sum(1 for s in samples if s.error is None and not s.ok)
    return LoadSummary(
        total=len(samples),
        failed=errors + non_2xx,
        errors=errors,
        non_2xx=non_2xx,
        colors=colors,
        connections_opened=sum(1 for s in samples if s.new_connection),
        duration=duration,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "upstream":
        serve_upstream(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        sys.exit("usage: nginx_harness.py upstream COLOR [PORT]")
