"""The router for real: Debian's nginx with the rendered config, driven by the product's
control script (nginx/bluegreen-router.sh), proxying to two colored upstreams on 127.0.0.1.

Rules under test (docs/rules.md): 1 (a config change is `nginx -t`-checked, a refused one is
rolled back), 1b (a flip is a state-file switch: no reload, zero failed requests under load,
open connections keep going), 2 (nginx starts and serves with a color missing; a missing
color is a 502 on its route; a color appearing later needs no reload).

No assertion depends on timing: order is established causally (a request started after the
switch command returned must see the new color), waits are bounded, and the load runs until
the test stops it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import websocket

from core.router_config import RouterConfigInput, TlsFiles, render_router_config
from tests.component.nginx_harness import (
    FakeDns,
    HarnessError,
    LoadClient,
    Response,
    Router,
    Upstream,
    client_tls_context,
    free_port,
    free_udp_port,
    loopback_only,
    summarize,
    wait_until,
)

PREVIEW_TOKEN = "preview-Token_1.2~3"
TOKEN_HEADER = {"X-Bluegreen-Preview-Token": PREVIEW_TOKEN}
# The load comes from one client address (127.0.0.1); the product's per-client limit
# (50 r/s) would answer it with 429s, which is not what these tests are about.
NO_RATE_LIMIT = {"rate_limit_per_second": 100_000, "rate_limit_burst": 100_000}

Tls = tuple[Path, Path]


# ---------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------


def render(
    router: Router,
    upstreams: Mapping[str, str],
    tls: Tls | None = None,
    resolver: str | None = None,
    **overrides: Any,
) -> str:
    settings: dict[str, Any] = {"preview_token": PREVIEW_TOKEN, **NO_RATE_LIMIT, **overrides}
    rendered = render_router_config(
        RouterConfigInput(
            domain="shop.example.com",
            upstreams=dict(upstreams),  # type: ignore[arg-type]
            state_dir=str(router.state_dir),
            resolver=resolver,
            **router.listen(),
            public_https_port=router.ports.https,
            tls=TlsFiles(str(tls[0]), str(tls[1])) if tls else None,
            **settings,
        )
    )
    return loopback_only(rendered)


def addresses(upstreams: Mapping[str, Upstream]) -> dict[str, str]:
    return {color: upstream.addr for color, upstream in upstreams.items()}


def boot(router: Router, config: str) -> None:
    router.install(config)
    test = router.nginx_test()
    assert test.returncode == 0, f"nginx -t refused the rendered config:\n{test.stderr}"
    try:
        router.boot()
    except HarnessError as exc:
        pytest.fail(f"nginx did not start with the rendered config: {exc}", pytrace=False)


def public(router: Router, tls: Tls | None, path: str = "/", **kwargs: Any) -> Response:
    if tls:
        return router.get(path, port=router.ports.https, tls=client_tls_context(tls[0]), **kwargs)
    return router.get(path, port=router.ports.http, **kwargs)


def preview(router: Router, path: str = "/", headers: Mapping[str, str] | None = TOKEN_HEADER) -> Response:
    return router.get(path, port=router.ports.preview, headers=headers)


def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


TLS_IDS = {False: "tls-off", True: "tls-on"}


# ---------------------------------------------------------------------------------------------
# nginx accepts every rendered variant and serves it
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("live", ["blue", "green", "no-color"])
@pytest.mark.parametrize("with_tls", [False, True], ids=TLS_IDS.get)
def test_rendered_config_passes_nginx_t_and_serves(
    make_router: Callable[[], Router],
    upstreams: dict[str, Upstream],
    tls_files: Tls,
    with_tls: bool,
    live: str,
) -> None:
    """`nginx -t` accepts the config; nginx starts from it (via `router.sh boot`) and the live
    route answers from the live color. With no color at all (both host names unresolvable,
    the resolver silent) nginx still starts and the route is a 502, not a dead router."""
    router = make_router()
    tls = tls_files if with_tls else None
    if live == "no-color":
        names = {c: f"medusa-{c}-server.invalid:9000" for c in ("blue", "green")}
        config = render(router, names, tls, resolver=f"127.0.0.1:{free_udp_port()}")
    else:
        config = render(router, addresses(upstreams), tls)
        router.switch("live", live)
    boot(router, config)

    health = public(router, tls, "/_bluegreen/health")
    assert health.status == 200, router.logs()
    response = public(router, tls)
    if live == "no-color":
        assert response.status == 502
        assert router.running()
        assert preview(router).status == 502
    else:
        assert (response.status, response.color) == (200, live)
        assert response.headers["x-bluegreen-color"] == live
    if with_tls:
        redirect = router.get("/app/x?y=1", port=router.ports.http)
        assert redirect.status == 301
        assert redirect.headers["location"] == f"https://127.0.0.1:{router.ports.https}/app/x?y=1"


# ---------------------------------------------------------------------------------------------
# security headers, preview route, token guard
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_tls", [False, True], ids=TLS_IDS.get)
def test_security_headers_survive_in_locations(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream], tls_files: Tls, with_tls: bool
) -> None:
    """Locations that add their own headers keep the security headers (nginx drops inherited
    add_header otherwise): on `/`, `/health`, `/app`, on a 502; HSTS only with TLS."""
    router = make_router()
    tls = tls_files if with_tls else None
    closed = f"127.0.0.1:{free_port()}"
    boot(router, render(router, {"blue": upstreams["blue"].addr, "green": closed}, tls))

    responses = {path: public(router, tls, path) for path in ("/", "/health", "/app/products", "/store/x")}
    router.switch("live", "green")
    responses["502 on /"] = public(router, tls)
    assert responses["502 on /"].status == 502
    for name, response in responses.items():
        assert response.headers.get("x-content-type-options") == "nosniff", name
        assert response.headers.get("x-frame-options") == "SAMEORIGIN", name
        assert response.headers.get("referrer-policy") == "strict-origin-when-cross-origin", name
        hsts = response.headers.get("strict-transport-security")
        if with_tls:
            assert hsts == "max-age=63072000; includeSubDomains", name
        else:
            assert hsts is None, name


def test_preview_route_follows_switch_preview(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """`switch preview` moves only the preview route; `switch live` only the live route."""
    router = make_router()
    boot(router, render(router, addresses(upstreams)))

    def colors() -> tuple[str | None, str | None]:
        return public(router, None).color, preview(router).color

    assert colors() == ("blue", "blue")
    assert "previous=blue current=green" in router.switch("preview", "green").stdout
    assert colors() == ("blue", "green")
    assert preview(router).headers["x-bluegreen-color"] == "green"
    assert router.script("status").stdout.strip() == "live=blue preview=green maintenance=off canary=0"
    router.switch("live", "green")
    router.switch("preview", "blue")
    assert colors() == ("green", "blue")
    assert router.script("status").stdout.strip() == "live=green preview=blue maintenance=off canary=0"
    refused = router.script("switch", "preview", "purple")
    assert refused.returncode != 0
    assert colors() == ("green", "blue")


def test_preview_token_guard(make_router: Callable[[], Router], upstreams: dict[str, Upstream]) -> None:
    """Without (or with a wrong) X-Bluegreen-Preview-Token the preview route is a 404 and
    reaches no upstream; the router's own health location stays open for the container
    healthcheck, which sends no token."""
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    requests_before = upstreams["blue"].stats()["requests"]

    assert preview(router, headers=None).status == 404
    assert preview(router, "/app/anything", headers=None).status == 404
    assert preview(router, headers={"X-Bluegreen-Preview-Token": "wrong"}).status == 404
    assert upstreams["blue"].stats()["requests"] == requests_before, "a refused preview request reached a color"
    assert preview(router, "/_bluegreen/health", headers=None).status == 200
    allowed = preview(router)
    assert (allowed.status, allowed.color) == (200, "blue")


def test_the_preview_token_is_never_forwarded_to_a_color(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    reached = preview(router, "/_headers")
    assert reached.status == 200
    assert PREVIEW_TOKEN not in reached.body and "preview-token" not in reached.body.lower()


def test_the_probe_listener_serves_the_preview_route_without_a_token(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """The health gate's in-container probe sends no token: its listener is the container's
    loopback, which only `docker exec` reaches."""
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    router.switch("preview", "green")
    probed = router.get("/", port=router.ports.probe)
    assert (probed.status, probed.color) == (200, "green")
    assert preview(router, headers=None).status == 404  # the published one still wants the token


# ---------------------------------------------------------------------------------------------
# missing colors (rule 2)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["port-closed", "unresolvable"])
def test_missing_color_is_a_502_on_its_route_only(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream], missing: str
) -> None:
    """A color that does not exist (nothing listening, or a host name the resolver cannot
    resolve) is a 502 on the route pointing at it; nginx starts, keeps running, and the other
    route keeps serving."""
    router = make_router()
    if missing == "port-closed":
        config = render(router, {"blue": upstreams["blue"].addr, "green": f"127.0.0.1:{free_port()}"})
    else:
        config = render(
            router,
            {"blue": upstreams["blue"].addr, "green": "medusa-green-server.invalid:9000"},
            resolver=f"127.0.0.1:{free_udp_port()}",
        )
    router.switch("preview", "green")
    boot(router, config)
    assert preview(router).status == 502
    live = public(router, None)
    assert (live.status, live.color) == (200, "blue")
    router.switch("live", "green")
    assert public(router, None).status == 502
    router.switch("live", "blue")
    assert public(router, None).color == "blue"
    assert router.running()


def test_color_host_names_resolve_per_request_without_reload(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """The product's shape: colors are container names resolved by a DNS server at request
    time. A missing name (NXDOMAIN) is a 502; once the name exists, the route serves it
    with the same nginx workers (no reload, no restart)."""
    dns = FakeDns()
    try:
        dns.records["medusa-blue-server"] = "127.0.0.1"
        router = make_router()
        names = {
            "blue": f"medusa-blue-server:{upstreams['blue'].port}",
            "green": f"medusa-green-server:{upstreams['green'].port}",
        }
        boot(router, render(router, names, resolver=dns.address))
        workers = router.workers()
        assert public(router, None).color == "blue"
        router.switch("live", "green")
        assert public(router, None).status == 502
        assert "medusa-green-server" in dns.queries

        dns.records["medusa-green-server"] = "127.0.0.1"
        # nginx caches the negative answer for RESOLVER_VALID_SECONDS; bounded wait.
        try:
            wait_until(
                lambda: public(router, None).color == "green",
                timeout=30,
                interval=0.5,
                what="the new color to be served",
            )
        except HarnessError as exc:
            pytest.fail(f"{exc}\n{router.logs()}", pytrace=False)
        assert router.workers() == workers, "nginx reloaded or restarted"
    finally:
        dns.stop()


def test_requests_reuse_pooled_upstream_connections_per_color_across_a_flip(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """The product's shape (names re-resolved with `resolve`): many requests, each on its own
    client connection, reach a color over a handful of pooled upstream connections, and after a
    flip the other color's pool carries the traffic while the first one opens none (rule 2d)."""
    dns = FakeDns()
    try:
        dns.records["medusa-blue-server"] = dns.records["medusa-green-server"] = "127.0.0.1"
        router = make_router()
        names = {color: f"medusa-{color}-server:{upstreams[color].port}" for color in ("blue", "green")}
        boot(router, render(router, names, resolver=dns.address))
        requests = 120
        opened = {}
        for color in ("blue", "green"):
            router.switch("live", color)
            before = {c: upstreams[c].stats()["connections"] for c in upstreams}
            for _ in range(requests):
                response = public(router, None)
                assert (response.status, response.color) == (200, color), router.logs()
            # Less one: each stats() call is a direct connection of its own.
            opened[color] = {c: upstreams[c].stats()["connections"] - before[c] - 1 for c in upstreams}
        # At most one connection per worker is busy at a time with one client; a few spare for
        # a worker that picked a fresh one while its pooled one was being returned.
        bound = 2 * len(router.workers())
        assert 1 <= opened["blue"]["blue"] <= bound, opened
        assert opened["blue"]["green"] == 0 and opened["green"]["blue"] == 0, opened
        assert 1 <= opened["green"]["green"] <= bound, opened
    finally:
        dns.stop()


# ---------------------------------------------------------------------------------------------
# config changes through `bluegreen-router.sh apply` (rule 1)
# ---------------------------------------------------------------------------------------------


def test_apply_refuses_a_broken_config_and_traffic_stays(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream], router_report: Callable[[str], None]
) -> None:
    """A valid change is applied (nginx -t, reload). A syntax error is refused with exit 1:
    the previous config stays on disk byte for byte, nginx is not reloaded, and traffic keeps
    flowing to the same color without a single failed request."""
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    router.switch("live", "green")

    good = render(router, addresses(upstreams), max_body_size="10m")
    workers = router.workers()
    applied = router.script("apply", stdin=good)
    assert applied.returncode == 0, applied.stderr
    assert router.config.read_text() == good
    assert (router.own_dir / "last-good.conf").read_text() == good
    wait_until(
        lambda: router.workers() and not set(router.workers()) & set(workers),
        timeout=30,
        what="the reload to replace the workers",
    )

    workers = router.workers()
    load = LoadClient(
        router.ports.http, connections=5, per_connection_rate=10, new_connection_rate=5, duration=60
    ).start()
    time.sleep(1.0)
    broken = good + "\nserver {\n    listen 127.0.0.1:1;\n"  # syntax error: unbalanced brace
    refused = router.script("apply", stdin=broken)
    time.sleep(1.0)
    load.stop()
    samples = load.join()

    summary = summarize(samples, duration=max(s.end for s in samples) - samples[0].start)
    router_report(
        f"broken config apply under load: {summary.failed} failed of {summary.total} requests "
        f"(apply exit {refused.returncode})"
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused" in refused.stderr
    assert router.config.read_text() == good
    assert (router.own_dir / "last-good.conf").read_text() == good
    assert not list(router.own_dir.glob(".incoming.*")), "apply left a temporary file behind"
    assert router.running()
    assert router.workers() == workers, "a refused config must not reload nginx"
    failures = [s for s in samples if not s.ok]
    assert not failures, failures[:5]
    assert summary.colors == {"green": summary.total}
    assert public(router, None).color == "green"
    assert router.nginx_test().returncode == 0


# ---------------------------------------------------------------------------------------------
# the flip under load (rule 1b)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "source", "target"),
    [("http", "blue", "green"), ("https", "green", "blue")],
    ids=["http-blue-to-green", "https-green-to-blue"],
)
def test_flip_under_load(
    make_router: Callable[[], Router],
    upstreams: dict[str, Upstream],
    tls_files: Tls,
    router_report: Callable[[str], None],
    scheme: str,
    source: str,
    target: str,
) -> None:
    """`router.sh switch live <target>` while a non-retrying client sends 400 requests/s on 20
    keep-alive connections plus 20 requests/s on new connections for 11+ s, with a long request
    and a websocket open across the flip. Zero failed requests; the long request and the
    websocket finish on the old color; every request started after the switch returned (on a
    kept-alive or a new connection) reaches the target; no connection had to be reopened."""
    router = make_router()
    tls = tls_files if scheme == "https" else None
    context = client_tls_context(tls[0]) if tls else None
    port = router.ports.https if tls else router.ports.http
    if source == "green":
        router.switch("live", "green")
    boot(router, render(router, addresses(upstreams), tls))
    assert public(router, tls).color == source

    connections, per_connection_rate, new_connection_rate = 20, 20.0, 20.0
    load = LoadClient(
        port,
        connections=connections,
        per_connection_rate=per_connection_rate,
        new_connection_rate=new_connection_rate,
        duration=90,
        tls=context,
    ).start()
    try:
        # A long request, held by the source upstream until released after the flip.
        hold_id = uuid.uuid4().hex
        long_result: dict[str, Any] = {}

        def long_request() -> None:
            try:
                long_result["response"] = public(router, tls, f"/hold?id={hold_id}&max=60", timeout=90)
            except Exception as exc:
                long_result["error"] = exc

        long_thread = threading.Thread(target=long_request, daemon=True)
        long_thread.start()
        wait_until(
            lambda: upstreams[source].stats()["holding"] >= 1,
            timeout=20,
            what="the long request to reach the source color",
        )

        ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/ws"
        sslopt = {"ca_certs": str(tls[0])} if tls else None
        ws = websocket.create_connection(ws_url, timeout=30, sslopt=sslopt)
        ws.send("before")
        assert ws.recv() == f"{source}:before"

        sleep_until(load.started_at + 5.0)
        switch_started = time.monotonic()
        switched = router.switch("live", target)
        switch_done = time.monotonic()
        assert f"previous={source} current={target}" in switched.stdout

        sleep_until(switch_done + 3.0)
        ws.send("after")
        websocket_after = ws.recv()
        ws.close()
        ws_new = websocket.create_connection(ws_url, timeout=30, sslopt=sslopt)
        ws_new.send("new")
        websocket_new = ws_new.recv()
        ws_new.close()

        sleep_until(switch_done + 4.0)
        upstreams[source].release(hold_id)
        long_thread.join(timeout=60)
        # Keep the load going after the flip; at least 11 s of load in total.
        sleep_until(max(switch_done + 6.0, load.started_at + 11.0))
    finally:
        load.stop()
    samples = load.join()

    load_seconds = max(s.end for s in samples) - load.started_at
    summary = summarize(samples, duration=load_seconds)
    failures = [s for s in samples if not s.ok]
    router_report(
        f"flip under load ({scheme}, {source}->{target}): {summary.failed} failed of {summary.total} requests "
        f"({summary.errors} socket errors, {summary.non_2xx} non-2xx; {summary.rate:.0f} req/s for "
        f"{load_seconds:.1f} s; colors {summary.colors}; switch took {1000 * (switch_done - switch_started):.0f} ms)"
    )

    assert not failures, f"{len(failures)} failed requests, first: {failures[:5]}"
    assert "error" not in long_result, f"long request failed: {long_result.get('error')!r}"
    long_response = long_result["response"]
    assert (long_response.status, long_response.body) == (200, f"{source} released\n")
    assert websocket_after == f"{source}:after", "the open websocket did not stay on its color"
    assert websocket_new == f"{target}:new"

    late_wrong = [s for s in samples if s.start > switch_done and s.color != target]
    early_wrong = [s for s in samples if s.end < switch_started and s.color != source]
    assert not late_wrong, f"requests after the switch missed {target}: {late_wrong[:5]}"
    assert not early_wrong, early_wrong[:5]
    streams = {f"ka{i}" for i in range(connections)}
    for stream in streams:
        mine = [s for s in samples if s.stream == stream]
        assert any(s.end < switch_started for s in mine) and any(s.start > switch_done for s in mine), stream
    reopened = [s for s in samples if s.stream in streams and s.new_connection]
    assert len(reopened) == connections, "a keep-alive connection was closed by the router"
    fresh_after = [s for s in samples if s.stream == "new" and s.start > switch_done]
    assert fresh_after and all(s.color == target for s in fresh_after)
    assert load_seconds >= 10.0
    assert summary.total >= 1000, f"load too thin to mean anything ({summary.total} requests)"
