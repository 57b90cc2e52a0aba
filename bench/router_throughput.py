"""How much of an upstream's throughput survives the router: requests/s through the router's
live route against requests/s straight to the same upstream, and the router's CPU per request.

    .venv/bin/python bench/router_throughput.py [--seconds 5] [--rounds 3] [--connections 20]

One test upstream (tests/component/nginx_harness.Upstream, HTTP/1.1 keep-alive, TCP_NODELAY)
and the router's rendered config (core/router_config.py) on a fresh nginx, all on 127.0.0.1.
wrk (Debian's) drives a closed loop of keep-alive connections for --seconds per measurement;
rounds alternate direct / router so a noisy neighbour hits both. Two router configs are measured:
the product's (a pool of idle upstream connections per color) and the same text without its
`keepalive` lines, which is the config before the pool (a new upstream connection per request).
Printed: the median requests/s of each, the ratio router/direct, and the CPU milliseconds per
1000 requests of the router's workers and of its metrics exporter (nginx/bluegreen-metrics.pl,
which reads one log line per request), beside the figures measured before the pool.
Traffic goes only to 127.0.0.1; every measurement is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import switch_bench  # noqa: E402

from core.router_config import UPSTREAM_IDLE_CONNECTIONS  # noqa: E402
from tests.component.nginx_harness import (  # noqa: E402
    Router,
    Upstream,
    cpu_seconds,
    require_binary,
    wait_until,
    workers_cpu_seconds,
)

WRK = "/usr/bin/wrk"
# Issue 14's measurement of the config before the pool (kamal-proxy beside it: 0.27, 327 ms).
BEFORE = {"ratio": 0.07, "cpu_ms_per_1000": 144.0}
TARGET_RATIO = 0.5


@dataclass
class Round:
    requests_per_second: float
    cpu_ms_per_1000: float | None = None
    exporter_ms_per_1000: float | None = None


def render(router: Router, upstream: str, pooled: bool) -> str:
    """switch_bench's config (the product's render, per-client limits out of the way) with both
    colors on `upstream`; without the pool's `keepalive` lines when not `pooled`."""
    text = switch_bench.render(router, upstream, upstream)
    if not pooled:
        text, removed = re.subn(rf"^\s*keepalive {UPSTREAM_IDLE_CONNECTIONS};\n", "", text, flags=re.M)
        assert removed == 2, "the rendered config no longer has one keepalive line per color"
    return text


def wrk(port: int, seconds: float, connections: int) -> float:
    done = subprocess.run(
        [WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", done.stdout)
    if errors:
        raise RuntimeError(f"wrk saw failed requests:\n{done.stdout}")
    match = re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout)
    if not match:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{done.stdout}")
    return float(match.group(1))


def through_router(router: Router, seconds: float, connections: int) -> Round:
    exporter = router.exporter_pids()
    before, exporter_before = workers_cpu_seconds(router.master_pid), cpu_seconds(exporter)
    rate = wrk(router.ports.http, seconds, connections)
    cpu = workers_cpu_seconds(router.master_pid) - before
    exporter_cpu = cpu_seconds(exporter) - exporter_before
    per_1000 = 1000 * 1000 / (rate * seconds)
    return Round(rate, cpu * per_1000, exporter_cpu * per_1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    if not (0 < args.seconds <= 30 and 1 <= args.rounds <= 10 and 1 <= args.connections <= 200):
        parser.error("need 0 < --seconds <= 30, 1 <= --rounds <= 10, 1 <= --connections <= 200")
    require_binary(WRK)

    upstream = Upstream("blue")
    routers = {pooled: Router() for pooled in (True, False)}
    rounds: dict[str, list[Round]] = {"direct": [], "pooled": [], "unpooled": []}
    try:
        for pooled, router in routers.items():
            router.install(render(router, upstream.addr, pooled))
            router.boot()
            wait_until(lambda r=router: r.get("/").color == "blue", timeout=20, what="blue to answer")
        print(
            f"wrk: {args.connections} keep-alive connections, {args.seconds:g} s per measurement, "
            f"{args.rounds} rounds; upstream {upstream.addr}",
            flush=True,
        )
        for number in range(1, args.rounds + 1):
            rounds["direct"].append(Round(wrk(upstream.port, args.seconds, args.connections)))
            rounds["pooled"].append(through_router(routers[True], args.seconds, args.connections))
            rounds["unpooled"].append(through_router(routers[False], args.seconds, args.connections))
            print(
                f"round {number}: "
                + ", ".join(f"{name} {r[-1].requests_per_second:.0f} req/s" for name, r in rounds.items()),
                flush=True,
            )
    finally:
        for router in routers.values():
            router.stop()
            shutil.rmtree(router.root, ignore_errors=True)
        upstream.stop()

    direct = statistics.median(r.requests_per_second for r in rounds["direct"])
    print()
    print(
        f"{'path':<38}{'req/s':>9}{'router/direct':>15}{'router CPU ms/1000 req':>24}"
        f"{'exporter CPU':>14}{'before':>16}"
    )
    print(f"{'direct to the upstream':<38}{direct:>9.0f}")
    ratio = 0.0
    labels = {"pooled": "router, upstream pool (ours)", "unpooled": "router, no pool (the previous config)"}
    for name, label in labels.items():
        rate = statistics.median(r.requests_per_second for r in rounds[name])
        cpu = statistics.median(r.cpu_ms_per_1000 for r in rounds[name] if r.cpu_ms_per_1000 is not None)
        exporter = statistics.median(r.exporter_ms_per_1000 or 0.0 for r in rounds[name])
        before = f"{BEFORE['ratio']:.2f}, {BEFORE['cpu_ms_per_1000']:.0f} ms" if name == "pooled" else ""
        print(f"{label:<38}{rate:>9.0f}{rate / direct:>15.2f}{cpu:>24.0f}{exporter:>14.0f}{before:>16}")
        if name == "pooled":
            ratio = rate / direct
    print(f"\ntarget: router/direct >= {TARGET_RATIO} with the pool; measured {ratio:.2f}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
