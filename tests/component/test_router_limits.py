"""The router's limits for real: Debian's nginx with the rendered config, clients on several
loopback source addresses (any 127.0.0.0/8 address is a valid source on Linux; the router stays
on 127.0.0.1), so "one client" and "another client" are different addresses to nginx.

- per-client connection limit and client timeouts (one slow client cannot use up the router),
- the per-client rate limit on every public location, not on the router's own health,
- only Meilisearch's search endpoints reach Meilisearch,
- router.trustedProxies: X-Forwarded-For / -Proto believed from those peers only.

Counts are bounded, not exact where nginx's token bucket refills during the test (rate 1 r/s);
every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.component.nginx_harness import Router, Upstream, wait_until
from tests.component.test_router_nginx import NO_RATE_LIMIT, Tls, addresses, boot, render

ONE_CLIENT = "127.0.0.1"
OTHER_CLIENT = "127.0.0.2"


# ---------------------------------------------------------------------------------------------
# helpers (the router fixtures are in conftest.py): requests from a chosen source address, a fake
# Meilisearch that records what reached it
# ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def send(
    port: int,
    path: str,
    method: str = "GET",
    source: str = ONE_CLIENT,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request on a new connection from `source` to the router on 127.0.0.1."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, text)
    finally:
        conn.close()


def burst(port: int, path: str, count: int, method: str = "GET", **kwargs: Any) -> list[int]:
    body = b"{}" if method == "POST" else None
    return [send(port, path, method, body=body, **kwargs).status for _ in range(count)]


def slow_post(port: int, source: str = ONE_CLIENT, path: str = "/app/upload") -> socket.socket:
    """A POST whose headers are complete and whose body has only begun (it says 1 MB, sends 10 bytes)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 1000000\r\n\r\n".encode()
        + b"x" * 10
    )
    return sock


def answer_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the router sent on `sock` within `seconds` (b"" closed, None nothing yet)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return b""


def headers_of(reply: Reply) -> dict[str, str]:
    """The request headers that reached the color (the upstream's /_headers echo), lower-cased."""
    assert reply.status == 200, reply
    return {k.lower(): v for k, v in json.loads(reply.body).items()}


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.seen.append((self.command, self.path))
        data = b'{"hits":[]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._any()

    def do_POST(self) -> None:
        self._any()

    def do_PUT(self) -> None:
        self._any()

    def do_PATCH(self) -> None:
        self._any()

    def do_DELETE(self) -> None:
        self._any()

    def do_OPTIONS(self) -> None:
        self._any()


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []


@pytest.fixture
def meilisearch() -> Iterator[_RecordingServer]:
    """A stand-in for Meilisearch that answers every method and records (method, path)."""
    server = _RecordingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def meili_addr(server: _RecordingServer) -> str:
    return f"127.0.0.1:{server.server_address[1]}"


# ---------------------------------------------------------------------------------------------
# 1. connections per client and client timeouts
# ---------------------------------------------------------------------------------------------


def test_connections_beyond_the_per_client_limit_are_refused_at_once_and_other_clients_get_in(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """60 slow POST bodies from one address, limit 20: the first 20 are held (nginx waits for
    their bodies), the other 40 are answered 503 at once; the same client's next request is a 503
    too, while a request from another address is served. Once the slow ones go, the client is
    served again."""
    router = make_router()
    limit, opened = 20, 60
    boot(router, render(router, addresses(upstreams), max_connections_per_client=limit, client_timeout_seconds=60))

    held: list[socket.socket] = []
    try:
        for _ in range(opened):
            held.append(slow_post(router.ports.http))
        # Collect answers until the 40 refusals are in (bounded), instead of a fixed sleep window.
        answered: dict[int, bytes] = {}
        deadline = time.monotonic() + 10
        while len(answered) < opened - limit and time.monotonic() < deadline:
            for i, sock in enumerate(held):
                if i not in answered and (reply := answer_within(sock, 0.01)) is not None:
                    answered[i] = reply
        refused = [a for a in answered.values() if a.startswith(b"HTTP/1.1 503")]
        assert len(refused) == opened - limit, answered
        waiting = [sock for i, sock in enumerate(held) if i not in answered]
        assert len(waiting) == limit and all(answer_within(sock, 0.2) is None for sock in waiting), \
            "the connections within the limit must still be waiting for their body"

        started = time.monotonic()
        assert send(router.ports.http, "/app/x").status == 503
        assert time.monotonic() - started < 2.0, "a refused request must be refused at once"
        other = send(router.ports.http, "/app/x", source=OTHER_CLIENT)
        assert (other.status, other.headers.get("x-upstream-color")) == (200, "blue")
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: send(router.ports.http, "/app/x").status == 200, timeout=10, what="the client's slots back")


@pytest.mark.parametrize("stalls_in", ["headers", "body", "redirect-server-headers"])
def test_a_client_that_stops_sending_is_cut_off_after_the_client_timeout(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream], tls_files: Tls, stalls_in: str
) -> None:
    """client_timeout_seconds=2: a connection that stops mid-headers or mid-body is closed by the
    router within a bound of it (not at nginx's 60 s default), on the public server and on the
    HTTP->HTTPS redirect server."""
    router = make_router()
    timeout = 2
    tls = tls_files if stalls_in.startswith("redirect") else None
    boot(router, render(router, addresses(upstreams), tls, client_timeout_seconds=timeout))

    sock = socket.create_connection(("127.0.0.1", router.ports.http), timeout=10)
    try:
        started = time.monotonic()
        if stalls_in == "body":
            sock.sendall(b"POST /app/upload HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 100\r\n\r\nabc")
        else:
            sock.sendall(b"GET /app/x HTTP/1.1\r\nHost: shop.exa")
        data = answer_within(sock, 5 * timeout)
        while data:  # nginx may answer (408) before it closes; read to the close
            data = answer_within(sock, 5 * timeout)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert data is not None, f"still open after {5 * timeout} s"
    assert timeout * 0.5 <= elapsed <= timeout * 2 + 1.0, f"closed after {elapsed:.1f} s"


# ---------------------------------------------------------------------------------------------
# 2. the rate limit on every public location
# ---------------------------------------------------------------------------------------------

RATE, BURST, SENT = 1, 5, 20


def assert_limited(statuses: list[int], what: str) -> None:
    # rate 1 r/s: at most one more token comes back while the burst is sent.
    served = statuses.count(200)
    assert set(statuses) <= {200, 429}, (what, statuses)
    assert BURST + 1 <= served <= BURST + 2, (what, statuses)
    assert statuses[:BURST + 1] == [200] * (BURST + 1), (what, statuses)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/app/products"),
        ("GET", "/health"),
        ("GET", "/store/products"),
        ("POST", "/search/indexes/products/search"),
        ("POST", "/search/multi-search"),
    ],
)
def test_every_public_location_is_rate_limited_per_client(
    make_router: Callable[[], Router],
    upstreams: dict[str, Upstream],
    meilisearch: _RecordingServer,
    method: str,
    path: str,
) -> None:
    """A burst from one address gets 429s beyond rate + burst; another address is served."""
    router = make_router()
    boot(router, render(router, addresses(upstreams), meilisearch_upstream=meili_addr(meilisearch),
                        rate_limit_per_second=RATE, rate_limit_burst=BURST))
    assert_limited(burst(router.ports.http, path, SENT, method), path)
    assert burst(router.ports.http, path, 1, method, source=OTHER_CLIENT) == [200]


def test_the_router_health_and_the_acme_challenge_are_not_rate_limited(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream], tls_files: Tls
) -> None:
    router = make_router()
    webroot = router.root / "acme-webroot"
    challenge = webroot / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    for directory in (webroot, webroot / ".well-known", challenge):
        directory.chmod(0o755)  # the workers run as nobody
    (challenge / "token-1").write_text("token-1.thumbprint")
    boot(router, render(router, addresses(upstreams), tls_files, acme_webroot=str(webroot),
                        rate_limit_per_second=RATE, rate_limit_burst=BURST))
    assert burst(router.ports.http, "/.well-known/acme-challenge/token-1", SENT) == [200] * SENT
    assert burst(router.ports.http, "/_bluegreen/health", SENT) == [200] * SENT


# ---------------------------------------------------------------------------------------------
# 3. only the search endpoints reach Meilisearch
# ---------------------------------------------------------------------------------------------

REFUSED_SEARCH = [
    ("GET", "/search/keys"),
    ("POST", "/search/keys"),
    ("DELETE", "/search/indexes/products"),
    ("POST", "/search/indexes/products/documents"),
    ("DELETE", "/search/indexes/products/documents"),
    ("GET", "/search/indexes/products/documents"),
    ("POST", "/search/dumps"),
    ("GET", "/search/indexes/products/settings"),
    ("PATCH", "/search/indexes/products/settings"),
    ("GET", "/search/indexes"),
    ("GET", "/search/tasks"),
    ("POST", "/search/swap-indexes"),
    ("DELETE", "/search/indexes/products/similar"),
    ("GET", "/search/"),
    ("DELETE", "/search/indexes/products/search"),
    ("GET", "/search/multi-search"),
    ("OPTIONS", "/search/keys"),
    # The path nginx routes on is the decoded, normalized one: no smuggling another route through.
    ("POST", "/search/indexes/products%2Fdocuments/search"),
    ("GET", "/search/indexes/products/search/../../../keys"),
    ("POST", "/search/indexes/products/search/../documents"),
]
ALLOWED_SEARCH = [
    ("GET", "/search/indexes/products/search?q=shoe", "/indexes/products/search?q=shoe"),
    ("POST", "/search/indexes/products/search", "/indexes/products/search"),
    ("POST", "/search/indexes/Prod_2-eu/facet-search", "/indexes/Prod_2-eu/facet-search"),
    ("POST", "/search/multi-search", "/multi-search"),
    ("POST", "/search/indexes/products/similar", "/indexes/products/similar"),
    ("GET", "/search/indexes/products/similar?id=42", "/indexes/products/similar?id=42"),
]


def test_only_the_search_endpoints_reach_meilisearch(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream], meilisearch: _RecordingServer
) -> None:
    router = make_router()
    origin = "https://shop.example.com"
    boot(router, render(router, addresses(upstreams), meilisearch_upstream=meili_addr(meilisearch),
                        search_cors_origins=(origin,)))

    for method, path in REFUSED_SEARCH:
        reply = send(router.ports.http, path, method, body=b"{}" if method in ("POST", "PATCH") else None)
        assert reply.status == 404, (method, path, reply.status)
        assert reply.headers.get("x-content-type-options") == "nosniff", (method, path)
    assert meilisearch.seen == [], "a refused route reached Meilisearch"

    for method, path, _ in ALLOWED_SEARCH:
        reply = send(router.ports.http, path, method, headers={"Origin": origin},
                     body=b'{"q":"shoe"}' if method == "POST" else None)
        assert reply.status == 200, (method, path, reply.status)
        assert reply.headers.get("access-control-allow-origin") == origin, (method, path)
    assert meilisearch.seen == [(method, upstream_path) for method, _, upstream_path in ALLOWED_SEARCH]

    preflight = send(router.ports.http, "/search/multi-search", "OPTIONS",
                     headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204
    assert preflight.headers.get("access-control-allow-origin") == origin
    assert len(meilisearch.seen) == len(ALLOWED_SEARCH), "the preflight is the router's, not Meilisearch's"


# ---------------------------------------------------------------------------------------------
# 4. router.trustedProxies
# ---------------------------------------------------------------------------------------------

FORWARDED_HTTPS = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def test_a_trusted_proxy_gives_the_client_address_and_scheme(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """From a trusted peer: Medusa is told the proxy's scheme and the client; the rate limit
    counts each forwarded client on its own. From an untrusted peer the same headers are not
    believed: scheme http, the peer is the client, one bucket whatever X-Forwarded-For says."""
    router = make_router()
    boot(router, render(router, addresses(upstreams), trusted_proxies=(f"{ONE_CLIENT}/32",),
                        rate_limit_per_second=RATE, rate_limit_burst=BURST))
    port = router.ports.http

    trusted = headers_of(send(port, "/_headers", headers=FORWARDED_HTTPS))
    assert trusted["x-forwarded-proto"] == "https"
    assert trusted["x-real-ip"] == "203.0.113.9"
    assert trusted["x-forwarded-for"] == f"203.0.113.9, {ONE_CLIENT}"
    junk = headers_of(send(port, "/_headers", headers={"X-Forwarded-For": "203.0.113.10",
                                                       "X-Forwarded-Proto": "javascript"}))
    assert junk["x-forwarded-proto"] == "http", "only http or https is believed, even from a trusted proxy"

    for client in ("198.51.100.1", "198.51.100.2"):
        assert_limited(burst(port, "/app/x", SENT, headers={"X-Forwarded-For": client}), client)

    untrusted = headers_of(send(port, "/_headers", source=OTHER_CLIENT, headers=FORWARDED_HTTPS))
    assert untrusted["x-forwarded-proto"] == "http"
    assert untrusted["x-real-ip"] == OTHER_CLIENT
    assert untrusted["x-forwarded-for"] == f"203.0.113.9, {OTHER_CLIENT}"
    statuses = [
        send(port, "/app/x", source=OTHER_CLIENT, headers={"X-Forwarded-For": f"198.51.100.{10 + i}"}).status
        for i in range(SENT)
    ]
    # One bucket (it already spent one token on /_headers above).
    assert set(statuses) <= {200, 429} and BURST <= statuses.count(200) <= BURST + 1, statuses


def test_without_trusted_proxies_forwarded_headers_change_nothing(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """The default (no trusted proxy): what a client says in X-Forwarded-* does not change the
    scheme or the client address, as before router.trustedProxies existed."""
    router = make_router()
    boot(router, render(router, addresses(upstreams), **NO_RATE_LIMIT))
    seen = headers_of(send(router.ports.http, "/_headers", headers=FORWARDED_HTTPS))
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-real-ip"] == ONE_CLIENT
    assert seen["x-forwarded-for"] == f"203.0.113.9, {ONE_CLIENT}"

