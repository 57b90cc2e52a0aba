"""Maintenance mode in a real nginx: the storefront answers 503 with Retry-After and a page,
operators keep /health and the admin, the router's own loopback is never held back, and on and
off under load is a state-file rename with no reload and no failed request."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from core.router_config import MAINTENANCE_PAGE
from tests.component.nginx_harness import LoadClient, Router, Upstream
from tests.component.test_router_limits import OTHER_CLIENT, send
from tests.component.test_router_nginx import addresses, boot, render

CUSTOMER = OTHER_CLIENT  # the router's own loopback (127.0.0.1) is exempt by design
STOREFRONT = ("/", "/store/products", "/store/carts/cart_1")
OPERATOR = ("/health", "/app", "/app/login", "/admin/products", "/auth/user/emailpass")


def test_maintenance_holds_back_the_storefront_and_keeps_the_operator_routes(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    router = make_router()
    boot(router, render(router, addresses(upstreams), maintenance_retry_after_seconds=120))
    port = router.ports.http
    assert all(send(port, path, source=CUSTOMER).status == 200 for path in STOREFRONT)

    switched = router.script("maintenance", "on")
    assert switched.stdout.strip() == "maintenance=on previous=off", switched.stderr
    assert router.script("status").stdout.strip() == "live=blue preview=blue maintenance=on canary=0"
    for path in STOREFRONT:
        reply = send(port, path, source=CUSTOMER)
        assert (reply.status, reply.headers.get("retry-after")) == (503, "120"), path
        assert reply.body == MAINTENANCE_PAGE and reply.headers["content-type"].startswith("text/html"), path
        assert reply.headers.get("cache-control") == "no-store", path
    for path in OPERATOR:
        reply = send(port, path, source=CUSTOMER)
        assert (reply.status, reply.headers.get("x-upstream-color")) == (200, "blue"), path
    # What the post-switch check sends (from inside the router container) still reaches the color.
    assert send(port, "/store/products", source="127.0.0.1").status == 200
    # Preview and probe routes are for releases: untouched.
    assert router.get("/", port=router.ports.probe).status == 200

    assert router.script("maintenance", "off").stdout.strip() == "maintenance=off previous=on"
    assert all(send(port, path, source=CUSTOMER).status == 200 for path in STOREFRONT)
    assert router.script("maintenance", "sideways").returncode == 2


def test_maintenance_on_and_off_under_load_without_a_reload(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream], router_report: Callable[[str], None]
) -> None:
    """300 requests/s from one customer address on 15 keep-alive connections for 9 s, maintenance
    on at 3 s and off at 6 s: every answer is the color's 200 or the maintenance 503, never a
    socket error; the 503s come only while maintenance is on (with a bound for requests in
    flight at each switch); the same nginx workers serve throughout."""
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    workers = router.workers()
    load = LoadClient(router.ports.http, connections=15, per_connection_rate=20.0, duration=9.0,
                      source=CUSTOMER).start()
    time.sleep(max(0.0, load.started_at + 3.0 - time.monotonic()))
    on_at = time.monotonic()
    assert router.script("maintenance", "on").returncode == 0
    on_done = time.monotonic()
    time.sleep(max(0.0, load.started_at + 6.0 - time.monotonic()))
    off_at = time.monotonic()
    assert router.script("maintenance", "off").returncode == 0
    off_done = time.monotonic()
    samples = load.join()

    errors = [s for s in samples if s.error]
    assert not errors, Counter(s.error for s in errors)
    assert {s.status for s in samples} <= {200, 503}
    # A request decided before the file changed may answer the old way: allow its own latency.
    slack = 0.5
    for s in samples:
        if s.status == 503:
            assert on_at - slack <= s.start <= off_done + slack, s
        elif on_done + slack <= s.start and s.end <= off_at - slack:
            raise AssertionError(f"a storefront request reached the color during maintenance: {s}")
    held = sum(1 for s in samples if s.status == 503)
    served = sum(1 for s in samples if s.status == 200)
    assert held > 0 and served > 0
    assert router.workers() == workers, "nginx reloaded or restarted"
    router_report(
        f"maintenance on/off under load: {len(samples)} requests, {served} served by the color, "
        f"{held} answered 503 + page, 0 socket errors; switches took {1000 * (on_done - on_at):.0f} ms "
        f"and {1000 * (off_done - off_at):.0f} ms"
    )
