"""An ACME CA on loopback for the TLS tests: Pebble (Let's Encrypt's test CA) and
pebble-challtestsrv (its DNS), plus `acme/renew.sh` driven against it and an HTTPS load that
reads the certificate of every new connection.

Standard library only (no pytest import), like tests/component/nginx_harness.py.

- `Pebble`: challtestsrv answers every A query with 127.0.0.1 (no AAAA), Pebble resolves
  names through it and validates HTTP-01 on `http_port` of 127.0.0.1, which is nginx's port-80
  stand-in. Its listener has a certificate made here with openssl (SAN IP:127.0.0.1), which
  lego trusts through LEGO_CA_CERTIFICATES; the root it signs with comes from its management
  API and is the only one a client context made by `client_context` trusts. Validation
  without sleeps (PEBBLE_VA_NOSLEEP), no bad-nonce injection (PEBBLE_WFE_NONCEREJECT=0), and
  no authorization reuse (PEBBLE_AUTHZREUSE=0), so every order is validated through nginx.
- `run_renew`: `acme/renew.sh VERB` with the ACME_* environment of an `AcmeSite`.
- `TlsLoad`: keep-alive connections at a fixed rate and streams of fresh connections, all to
  127.0.0.1 with SNI and name checks for the site; never retries; every sample of a new
  connection carries the serial of the certificate its handshake got.
- `renew_under_load`: `renew.sh now` during that load, with a watcher that notes when the new
  fullchain.pem is renamed in; returns the numbers (time to the first handshake with the new
  certificate, requests during the renewal, failures).

Ports are below 32768 (the kernel hands out ephemeral ports from 32768 up, and a listener
there can collide with an outgoing connection). Every wait is bounded; every process started
here is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RENEW_SCRIPT = REPO / "acme" / "renew.sh"
INSTALL_SCRIPT = REPO / "scripts" / "dev" / "install-acme-tools.sh"
OPENSSL = "/usr/bin/openssl"
INSTALL_HINT = f"run {INSTALL_SCRIPT.relative_to(REPO)} (builds Pebble and lego once, cached)"

# Listeners go here: below the ephemeral range, above the well-known and most service ports.
PORT_RANGE = (20000, 32767)


class AcmeError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# tools, ports, processes
# ---------------------------------------------------------------------------------------------


def tools_dir() -> Path:
    """Where scripts/dev/install-acme-tools.sh keeps pebble, pebble-challtestsrv and lego.

    The versions are read from the script, so the two never disagree; a missing binary is a
    failure that says how to build it, never a skip.
    """
    override = os.environ.get("MEDUSA_BG_ACME_TOOLS")
    if override:
        directory = Path(override)
    else:
        script = INSTALL_SCRIPT.read_text()
        versions = dict(re.findall(r"^(PEBBLE_VERSION|LEGO_VERSION)=(\S+)$", script, flags=re.MULTILINE))
        cache = Path(os.environ.get("MEDUSA_BG_CACHE") or Path.home() / ".cache" / "medusa-bluegreen")
        directory = cache / "tools" / f"acme-pebble-{versions['PEBBLE_VERSION']}-lego-{versions['LEGO_VERSION']}"
    for tool in ("pebble", "pebble-challtestsrv", "lego"):
        path = directory / tool
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AcmeError(f"required binary {path} is missing; {INSTALL_HINT}")
    return directory


def require_openssl() -> str:
    if not (os.path.isfile(OPENSSL) and os.access(OPENSSL, os.X_OK)):
        raise AcmeError(f"{OPENSSL} is missing; run scripts/dev/install-test-deps.sh (as root)")
    return OPENSSL


_taken: set[int] = set()
_taken_lock = threading.Lock()


def low_port(udp_too: bool = False) -> int:
    """A port in PORT_RANGE that nothing on 127.0.0.1 holds right now (TCP, and UDP if asked),
    and that this process has not handed out before."""
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(*PORT_RANGE)
        with _taken_lock:
            if port in _taken:
                continue
        kinds = [socket.SOCK_STREAM, socket.SOCK_DGRAM] if udp_too else [socket.SOCK_STREAM]
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        with _taken_lock:
            if port in _taken:
                continue
            _taken.add(port)
        return port
    raise AcmeError(f"no free port in {PORT_RANGE}")


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last!r})" if last else ""
            raise AcmeError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def make_listener_cert(directory: Path, name: str, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed EC certificate for a listener on `ip` (SAN IP:<ip>)."""
    openssl = require_openssl()
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
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
            f"/CN={name}",
            "-addext",
            # The management API is always on loopback; the directory may be on `ip`.
            "subjectAltName=" + ",".join(sorted({"IP:127.0.0.1", f"IP:{ip}"})),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def public_key_pem(pem_or_der: bytes, kind: str) -> str:
    """The public key of a certificate (`x509`, PEM or DER) or of a private key (`pkey`), as
    PEM, from openssl: the key itself never leaves the pipe."""
    openssl = require_openssl()
    if kind == "x509":
        inform = "PEM" if pem_or_der.lstrip().startswith(b"-----") else "DER"
        argv = [openssl, "x509", "-inform", inform, "-noout", "-pubkey"]
    else:
        argv = [openssl, "pkey", "-pubout"]
    result = subprocess.run(argv, input=pem_or_der, capture_output=True, check=True, timeout=30)
    return result.stdout.decode()


# ---------------------------------------------------------------------------------------------
# Pebble and challtestsrv
# ---------------------------------------------------------------------------------------------


@dataclass
class Pebble:
    """Pebble + pebble-challtestsrv; HTTP-01 is validated on `http_port` of `validation_ipv4`.

    The ACME directory listens on `host` (127.0.0.1, or the gateway of a harness network when
    the ACME client runs on the simulated VPS); DNS and the management API stay on loopback."""

    http_port: int
    host: str = "127.0.0.1"
    validation_ipv4: str = "127.0.0.1"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bg-pebble-")))
    tools: Path = field(default_factory=tools_dir)
    listen_port: int = field(default_factory=low_port)
    management_port: int = field(default_factory=low_port)
    dns_port: int = field(default_factory=lambda: low_port(udp_too=True))
    dns_management_port: int = field(default_factory=low_port)
    tls_alpn_port: int = field(default_factory=low_port)  # configured, never used: HTTP-01 only
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def directory_url(self) -> str:
        return f"https://{self.host}:{self.listen_port}/dir"

    @property
    def listener_cert(self) -> Path:
        return self.root / "listener.crt"

    @property
    def root_cert(self) -> Path:
        """Pebble's signing root, fetched from its management API by `start`."""
        return self.root / "pebble-root.pem"

    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.processes.append(
                subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
            )
        finally:
            log.close()

    def start(self, timeout: float = 30.0) -> Pebble:
        try:
            self._start(timeout)
        except AcmeError as exc:
            self.stop()
            raise AcmeError(f"{exc}\n{self.logs()}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        cert, key = make_listener_cert(self.root, "listener", self.host)
        self._spawn(
            "challtestsrv",
            [
                str(self.tools / "pebble-challtestsrv"),
                "-dnsserver",
                f"127.0.0.1:{self.dns_port}",
                "-management",
                f"127.0.0.1:{self.dns_management_port}",
                "-defaultIPv4",
                self.validation_ipv4,
                "-defaultIPv6",
                "",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-doh",
                "",
            ],
        )
        config = {
            "pebble": {
                "listenAddress": f"{self.host}:{self.listen_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": self.http_port,
                "tlsPort": self.tls_alpn_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                "retryAfter": {"authz": 1, "order": 1},
                "keyAlgorithm": "ecdsa",
                # Let's Encrypt's current default lifetime: a new certificate is never due for
                # ACME_RENEW_DAYS=30, nor inside its renewal-info window.
                "profiles": {"default": {"description": "90 days", "validityPeriod": 7776000}},
            }
        }
        config_file = self.root / "pebble-config.json"
        config_file.write_text(json.dumps(config, indent=2))
        self._spawn(
            "pebble",
            [str(self.tools / "pebble"), "-config", str(config_file), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"},
        )
        listener = ssl.create_default_context(cafile=str(cert))

        def up() -> bool:
            for name, process in zip(("challtestsrv", "pebble"), self.processes, strict=False):
                if process.poll() is not None:
                    raise AcmeError(f"{name} exited with {process.returncode}")
            with socket.create_connection(("127.0.0.1", self.dns_management_port), timeout=1):
                pass
            return https_get(self.listen_port, "/dir", listener, timeout=2, host=self.host)[0] == 200

        wait_for(up, timeout, "Pebble and challtestsrv to listen")
        status, body = https_get(self.management_port, "/roots/0", listener, timeout=10)
        if status != 200 or b"BEGIN CERTIFICATE" not in body:
            raise AcmeError(f"Pebble's management API gave no root ({status}): {body[:200]!r}")
        self.root_cert.write_bytes(body)

    def client_context(self) -> ssl.SSLContext:
        """Trusts Pebble's root and nothing else (no system store); checks host names."""
        context = ssl.create_default_context(cafile=str(self.root_cert))
        context.set_alpn_protocols(["http/1.1"])
        return context

    def logs(self, chars: int = 3000) -> str:
        out = []
        for name in ("pebble.log", "challtestsrv.log"):
            path = self.root / name
            if path.exists():
                out.append(f"--- {name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)
        self.processes.clear()


def https_get(
    port: int, path: str, context: ssl.SSLContext, timeout: float, host: str = "127.0.0.1"
) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        # Pebble, like Let's Encrypt, refuses requests without a User-Agent.
        conn.request("GET", path, headers={"User-Agent": "medusa-bluegreen-tests"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# the site and renew.sh
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcmeSite:
    """The directories and names one `acme/renew.sh` works with."""

    domain: str
    webroot: Path  # nginx: location ^~ /.well-known/acme-challenge/ { root <webroot>; }
    state_dir: Path
    tls_dir: Path
    email: str = "ops@shop.example.com"

    @property
    def fullchain(self) -> Path:
        return self.tls_dir / "fullchain.pem"

    @property
    def privkey(self) -> Path:
        return self.tls_dir / "privkey.pem"

    @property
    def lego_log(self) -> Path:
        return self.state_dir / "lego-last-run.log"


def renew_env(site: AcmeSite, pebble: Pebble, tls_group: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ACME_DOMAIN": site.domain,
        "ACME_EMAIL": site.email,
        "ACME_DIRECTORY_URL": pebble.directory_url,
        "ACME_WEBROOT": str(site.webroot),
        "ACME_STATE_DIR": str(site.state_dir),
        "ACME_TLS_DIR": str(site.tls_dir),
        "ACME_LEGO": str(pebble.tools / "lego"),
        "LEGO_CA_CERTIFICATES": str(pebble.listener_cert),
        **extra,
    }
    if tls_group:
        env["ACME_TLS_GROUP"] = tls_group
    return env


def run_renew(verb: str, env: Mapping[str, str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """`sh acme/renew.sh VERB` (dash on Debian, as busybox ash would run it in the image)."""
    return subprocess.run(
        ["sh", str(RENEW_SCRIPT), verb], env=dict(env), capture_output=True, text=True, timeout=timeout
    )


# ---------------------------------------------------------------------------------------------
# HTTPS load: keep-alive and fresh connections, never retried
# ---------------------------------------------------------------------------------------------


class SiteConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port whatever the name resolves to, with SNI, Host and the
    certificate's name check all for `server_name`."""

    def __init__(self, server_name: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(server_name, port, timeout=timeout, context=context)
        self.tls_context = context
        self.handshake_done = 0.0

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.handshake_done = time.monotonic()

    def serial(self) -> str | None:
        if not isinstance(self.sock, ssl.SSLSocket):
            return None
        cert = self.sock.getpeercert()
        value = cert.get("serialNumber") if cert else None
        return str(value) if value else None


def fresh_handshake(server_name: str, port: int, context: ssl.SSLContext, timeout: float = 10.0) -> tuple[str, bytes]:
    """The serial and DER of the certificate a new connection gets (a full handshake: no
    session is offered for resumption)."""
    conn = SiteConnection(server_name, port, context, timeout)
    try:
        conn.connect()
        assert isinstance(conn.sock, ssl.SSLSocket)
        der = conn.sock.getpeercert(binary_form=True)
        serial = conn.serial()
        if not der or not serial:
            raise AcmeError("the server sent no certificate")
        return serial, der
    finally:
        conn.close()


@dataclass(frozen=True)
class TlsSample:
    stream: str  # "ka<N>" keep-alive connection N, "new<N>" fresh-connection stream N
    start: float
    end: float
    status: int | None
    error: str | None
    new_connection: bool
    serial: str | None  # the certificate's serial, on the request that opened the connection
    handshake_done: float | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


class TlsLoad:
    """`keepalive` connections at `keepalive_rate` requests/s each and `fresh` streams at
    `fresh_rate` new connections/s each (one request per connection), for at most `duration`
    seconds. A failed request is recorded, never retried; a keep-alive stream then reconnects
    on its next scheduled request."""

    def __init__(
        self,
        server_name: str,
        port: int,
        context: ssl.SSLContext,
        keepalive: int = 4,
        keepalive_rate: float = 40.0,
        fresh: int = 4,
        fresh_rate: float = 25.0,
        duration: float = 20.0,
        path: str = "/",
        timeout: float = 10.0,
    ) -> None:
        self.server_name, self.port, self.context = server_name, port, context
        self.keepalive, self.keepalive_rate = keepalive, keepalive_rate
        self.fresh, self.fresh_rate = fresh, fresh_rate
        self.duration, self.path, self.timeout = duration, path, timeout
        self.samples: list[TlsSample] = []
        self.started_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> TlsLoad:
        self.started_at = time.monotonic()
        for i in range(self.keepalive):
            phase = i / max(self.keepalive, 1) / self.keepalive_rate
            self._threads.append(threading.Thread(target=self._keepalive_loop, args=(f"ka{i}", phase), daemon=True))
        for i in range(self.fresh):
            phase = i / max(self.fresh, 1) / self.fresh_rate
            self._threads.append(threading.Thread(target=self._fresh_loop, args=(f"new{i}", phase), daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> list[TlsSample]:
        deadline = self.started_at + self.duration + self.timeout + 10
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            raise AcmeError("load threads did not finish in time")
        with self._lock:
            return sorted(self.samples, key=lambda s: s.start)

    def _schedule(self, interval: float, phase: float) -> Iterator[None]:
        end = self.started_at + self.duration
        next_at = self.started_at + phase
        while next_at < end and not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            yield None
            # Fixed rate; when behind, go on from now rather than bursting to catch up.
            next_at = max(next_at + interval, time.monotonic())

    def _connection(self) -> SiteConnection:
        return SiteConnection(self.server_name, self.port, self.context, self.timeout)

    def _one(self, conn: SiteConnection, stream: str, fresh: bool, headers: dict[str, str]) -> bool:
        """One request (opening the connection if it is new); whether it can be reused."""
        start = time.monotonic()
        serial: str | None = None
        handshake: float | None = None
        try:
            if fresh:
                conn.connect()
                serial, handshake = conn.serial(), conn.handshake_done
            conn.request("GET", self.path, headers=headers)
            response = conn.getresponse()
            response.read()
            sample = TlsSample(stream, start, time.monotonic(), response.status, None, fresh, serial, handshake)
            reusable = not response.will_close
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            sample = TlsSample(stream, start, time.monotonic(), None, error, fresh, serial, handshake)
            reusable = False
        with self._lock:
            self.samples.append(sample)
        return reusable

    def _keepalive_loop(self, stream: str, phase: float) -> None:
        conn: SiteConnection | None = None
        for _ in self._schedule(1.0 / self.keepalive_rate, phase):
            fresh = conn is None
            if conn is None:
                conn = self._connection()
            if not self._one(conn, stream, fresh, {}):
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _fresh_loop(self, stream: str, phase: float) -> None:
        for _ in self._schedule(1.0 / self.fresh_rate, phase):
            conn = self._connection()
            try:
                self._one(conn, stream, True, {"Connection": "close"})
            finally:
                conn.close()


# ---------------------------------------------------------------------------------------------
# renewal under load
# ---------------------------------------------------------------------------------------------


class RenameWatcher:
    """Notes (monotonic time) when `path` becomes a different file (a rename over it), polling
    its inode every `interval` seconds: the time seen is at most `interval` after the rename."""

    def __init__(self, path: Path, interval: float = 0.001) -> None:
        self.path, self.interval = path, interval
        self.initial = path.stat().st_ino
        self.renamed_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> RenameWatcher:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                if self.path.stat().st_ino != self.initial:
                    self.renamed_at = time.monotonic()
                    return
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class RenewalMeasurement:
    result: subprocess.CompletedProcess[str]
    samples: list[TlsSample]
    renew_started: float
    renew_ended: float
    renamed_at: float | None
    old_serial: str
    first_new_handshake: float | None  # when the first handshake with the new certificate ended
    load_seconds: float

    @property
    def failures(self) -> list[TlsSample]:
        return [s for s in self.samples if not s.ok]

    @property
    def during_renewal(self) -> list[TlsSample]:
        return [s for s in self.samples if s.end >= self.renew_started and s.start <= self.renew_ended]

    @property
    def rename_to_first_handshake_ms(self) -> float | None:
        if self.renamed_at is None or self.first_new_handshake is None:
            return None
        return 1000 * (self.first_new_handshake - self.renamed_at)

    def summary(self) -> str:
        fresh = [s for s in self.samples if s.new_connection]
        latency = self.rename_to_first_handshake_ms
        latency_text = "n/a" if latency is None else f"{latency:.1f} ms"
        return (
            f"renewal under load: {len(self.failures)} failed of {len(self.samples)} requests "
            f"({len(fresh)} new connections) in {self.load_seconds:.1f} s; "
            f"{len(self.during_renewal)} requests during the {self.renew_ended - self.renew_started:.2f} s "
            f"of `renew.sh now`; new fullchain.pem renamed in -> first handshake serving it: {latency_text} "
            f"(rename seen by a 1 ms inode poll)"
        )


def renew_under_load(
    env: Mapping[str, str],
    site: AcmeSite,
    port: int,
    context: ssl.SSLContext,
    before: float = 1.5,
    after: float = 1.5,
    **load: Any,
) -> RenewalMeasurement:
    """`renew.sh now` while a TlsLoad runs: `before` s of load, the renewal, `after` s more."""
    old_serial, _ = fresh_handshake(site.domain, port, context)
    watcher = RenameWatcher(site.fullchain).start()
    runner = TlsLoad(site.domain, port, context, duration=before + after + 120, **load).start()
    try:
        time.sleep(before)
        renew_started = time.monotonic()
        result = run_renew("now", env)
        renew_ended = time.monotonic()
        time.sleep(after)
    finally:
        runner.stop()
        watcher.stop()
    samples = runner.join()
    new = [s for s in samples if s.serial is not None and s.serial != old_serial and s.handshake_done]
    first_new = min((s.handshake_done for s in new if s.handshake_done is not None), default=None)
    load_seconds = max((s.end for s in samples), default=runner.started_at) - runner.started_at
    return RenewalMeasurement(
        result, samples, renew_started, renew_ended, watcher.renamed_at, old_serial, first_new, load_seconds
    )
