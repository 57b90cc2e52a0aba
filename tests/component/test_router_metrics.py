"""The router's per-color traffic figures for real: nginx with the rendered config logs each
request to the exporter (nginx/bluegreen-metrics.pl) started by `router.sh metrics`, and
/_bluegreen/metrics answers Prometheus text that core/traffic_metrics reads (rule 2f).

The exporter gets its lines over UDP, after the response: every count is awaited with a bound,
never assumed to be there when the response arrives.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from core.router_config import LATENCY_BUCKETS_SECONDS, METRICS_PATH
from core.traffic_metrics import Scrape, parse
from tests.component.nginx_harness import LoadClient, Router, Upstream, summarize, wait_until
from tests.component.test_router_limits import OTHER_CLIENT, send
from tests.component.test_router_nginx import PREVIEW_TOKEN, addresses, boot, render


def scrape(router: Router) -> Scrape:
    reply = router.get(METRICS_PATH, port=router.ports.probe)
    assert reply.status == 200, f"{reply.status}: {reply.body}\n{router.logs()}"
    return parse(reply.body)


def counted(router: Router, want: dict[tuple[str, str, str], int]) -> Scrape:
    """Wait until the exporter has counted at least `want` (route, color, class) -> requests."""
    last: list[Scrape] = []

    def reached() -> bool:
        last[:] = [scrape(router)]
        return all(last[0].of(route, color).by_class.get(cls, 0) >= n for (route, color, cls), n in want.items())

    try:
        wait_until(reached, timeout=10, what=f"the exporter to count {want}")
    except Exception as exc:
        raise AssertionError(f"{exc}; last scrape: {last[0].series if last else None}") from None
    return last[0]


def test_each_request_is_counted_for_its_route_color_and_status_class(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    for _ in range(30):
        assert router.get("/").color == "blue"
    for _ in range(6):
        assert router.get("/status/503").status == 503
    router.switch("live", "green")
    for _ in range(20):
        assert router.get("/").color == "green"
    for _ in range(4):
        assert router.get("/status/404").status == 404
    for _ in range(5):
        headers = {"X-Bluegreen-Preview-Token": PREVIEW_TOKEN}
        assert router.get("/", port=router.ports.preview, headers=headers).color == "blue"

    figures = counted(
        router,
        {("live", "blue", "2xx"): 30, ("live", "blue", "5xx"): 6, ("live", "green", "2xx"): 20,
         ("live", "green", "4xx"): 4, ("preview", "blue", "2xx"): 5},
    )
    assert figures.of("live", "blue").by_class == {"2xx": 30, "5xx": 6}
    assert figures.of("live", "green").by_class == {"2xx": 20, "4xx": 4}
    assert figures.of("preview", "blue").by_class == {"2xx": 5}
    assert figures.of("live", "blue").error_ratio() == 6 / 36
    # The histogram: every bound the product names, +Inf counting every request, never shrinking.
    histogram = figures.of("live", "green").buckets
    assert sorted(histogram) == [*LATENCY_BUCKETS_SECONDS, float("inf")]
    assert histogram[float("inf")] == 24
    counts = [histogram[bound] for bound in sorted(histogram)]
    assert counts == sorted(counts)
    assert figures.dropped == 0


def test_a_slow_color_shows_in_its_latency_histogram(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """/hold?max=0.3 answers after 0.3 s: those requests land above the 0.25 s bound, the fast
    ones below 0.1 s, and the p95 of the mix is read in the slow requests' bucket."""
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    for _ in range(10):
        assert router.get("/").status == 200
    for _ in range(10):
        assert router.get("/hold?id=slow&max=0.3").status == 200
    blue = counted(router, {("live", "blue", "2xx"): 20}).of("live", "blue")
    assert blue.buckets[0.1] == 10 and blue.buckets[0.25] == 10 and blue.buckets[0.5] == 20
    p95 = blue.quantile(0.95)
    assert p95 is not None and 0.25 < p95 <= 0.5


def test_what_the_router_answers_itself_is_counted_apart_from_the_colors(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    """A maintenance page never reached a color: it must not count as that color's 503 (a
    release's analysis would flip back a healthy color)."""
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    router.script("maintenance", "on")
    for _ in range(7):
        assert send(router.ports.http, "/", source=OTHER_CLIENT).status == 503
    figures = counted(router, {("live", "none", "5xx"): 7})
    assert figures.of("live", "blue").total == 0


def test_the_published_preview_port_serves_the_figures_only_with_the_bearer_token(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    port = router.ports.preview
    assert router.get(METRICS_PATH, port=port).status == 404
    assert router.get(METRICS_PATH, port=port, headers={"Authorization": "Bearer wrong"}).status == 404
    reply = router.get(METRICS_PATH, port=port, headers={"Authorization": f"Bearer {PREVIEW_TOKEN}"})
    assert reply.status == 200 and "bluegreen_requests_total" in reply.body
    # The public server has no such route: it is the storefront's path space, proxied to the color.
    assert router.get(METRICS_PATH).color == "blue"


def test_a_dead_exporter_costs_no_request_and_comes_back_on_its_own(
    make_router: Callable[[], Router], upstreams: dict[str, Upstream]
) -> None:
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    load = LoadClient(router.ports.http, connections=4, per_connection_rate=50, duration=4).start()
    (pid,) = router.exporter_pids()
    os.kill(pid, signal.SIGKILL)
    samples = load.join()
    summary = summarize(samples, 4)
    assert summary.failed == 0, f"{summary.failed} of {summary.total} failed while the exporter was down"
    wait_until(lambda: router.exporter_pids() not in ([], [pid]), timeout=10, what="the supervisor to restart it")
    # Counting again: requests after the restart are counted from zero.
    for _ in range(3):
        router.get("/")
    counted(router, {("live", "blue", "2xx"): 3})


def test_the_exporter_stops_with_nginx(make_router: Callable[[], Router], upstreams: dict[str, Upstream]) -> None:
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    assert len(router.exporter_pids()) == 1
    router.stop()
    wait_until(lambda: router.exporter_pids() == [], timeout=10, what="the exporter to exit with nginx")
