"""A canary in a real nginx: `router.sh canary PERCENT` sends that share of clients on the live
route to the preview color, each client always to the same color, with no reload (rule 1d).

Clients are told apart by address and user agent; here one address and CLIENTS user agents.
Which bucket a client falls in is a hash, so the share of CLIENTS is binomial around PERCENT:
with 400 clients its standard deviation is at most 2.5 points (at 50 %), and the bound below
(SHARE_TOLERANCE, 8 points) is more than three of them. The hash is deterministic, so a given
config and client list always give the same share: the bound cannot flake.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from tests.component.nginx_harness import LoadClient, Router, Upstream, summarize
from tests.component.test_router_limits import OTHER_CLIENT, send
from tests.component.test_router_nginx import addresses, boot, render

CLIENTS = [f"shopper-{n}" for n in range(400)]
SHARE_TOLERANCE = 0.08


def colors_by_client(router: Router) -> dict[str, str]:
    seen = {}
    for agent in CLIENTS:
        reply = send(router.ports.http, "/", source=OTHER_CLIENT, headers={"User-Agent": agent})
        assert reply.status == 200, reply
        seen[agent] = reply.headers["x-upstream-color"]
    return seen


def canary(router: Router, percent: int) -> str:
    done = router.script("canary", str(percent))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def canary_router(make_router: Callable[[], Router], upstreams: dict[str, Upstream]) -> Router:
    router = make_router()
    boot(router, render(router, addresses(upstreams)))
    router.switch("preview", "green")  # the release being tried; live stays blue
    return router


def test_a_canary_sends_its_share_of_clients_to_the_preview_color_and_keeps_each_client_there(
    canary_router: Router,
) -> None:
    router = canary_router
    assert set(colors_by_client(router).values()) == {"blue"}
    assert canary(router, 10) == "canary=10 previous=0"
    ten = colors_by_client(router)
    share = Counter(ten.values())["green"] / len(CLIENTS)
    assert abs(share - 0.10) <= SHARE_TOLERANCE, f"{share:.1%} of clients on the canary at 10 %"
    assert colors_by_client(router) == ten, "a client changed color with the weight unchanged"

    assert canary(router, 50) == "canary=50 previous=10"
    fifty = colors_by_client(router)
    share = Counter(fifty.values())["green"] / len(CLIENTS)
    assert abs(share - 0.50) <= SHARE_TOLERANCE, f"{share:.1%} of clients on the canary at 50 %"
    # Raising the weight only adds buckets: nobody on the canary is sent back.
    assert all(fifty[agent] == "green" for agent, color in ten.items() if color == "green")

    assert canary(router, 0) == "canary=0 previous=50"
    assert set(colors_by_client(router).values()) == {"blue"}
    assert router.script("status").stdout.split()[-1] == "canary=0"


def test_the_routers_own_loopback_always_meets_the_live_color(canary_router: Router) -> None:
    """What the post-switch check sends (from inside the router container) proves the live
    color, whatever share the canary has."""
    router = canary_router
    canary(router, 100)
    assert set(colors_by_client(router).values()) == {"green"}
    for agent in CLIENTS[:50]:
        assert router.get("/", headers={"User-Agent": agent}).color == "blue"


def test_weights_change_under_load_without_a_failed_request_or_a_reload(canary_router: Router) -> None:
    router = canary_router
    workers = set(router.workers())
    load = LoadClient(router.ports.http, connections=8, per_connection_rate=40, duration=6, source=OTHER_CLIENT)
    load.start()
    for percent in (10, 50, 100, 0):
        canary(router, percent)
    samples = load.join()
    summary = summarize(samples, 6)
    assert summary.failed == 0, f"{summary.failed} of {summary.total} failed while the canary moved"
    assert set(router.workers()) == workers, "nginx started new workers: something reloaded"


@pytest.mark.parametrize("bad", ["-1", "101", "ten", "", "5%"])
def test_a_bad_percentage_is_refused_and_changes_nothing(canary_router: Router, bad: str) -> None:
    router = canary_router
    canary(router, 20)
    done = router.script("canary", bad)
    assert done.returncode == 2 and "percentage from 0 to 100" in done.stderr
    assert router.script("status").stdout.split()[-1] == "canary=20"
