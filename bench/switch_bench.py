"""Three ways to switch a blue-green router, side by side under the same load.

    .venv/bin/python bench/switch_bench.py            (make bench)

(a) seed:   stop nginx (SIGQUIT, the router image's STOPSIGNAL, as `docker stop` does) and
            start a new one whose config points at the other color: what recreating the
            router container does, minus the container overhead (so a lower bound);
(b) reload: rewrite the config with the other upstream, then `nginx -s reload`;
(c) ours:   `bluegreen-router.sh switch live green`, a state-file rename read per request.

Each run: the same rendered router config shape (core/router_config.py) on a fresh
nginx, two colored upstreams on 127.0.0.1, and a load client that never retries (bench/loadgen,
in Go: a Python client's 20 threads share one lock, which added milliseconds to the tail): 20
keep-alive connections at a fixed 20 requests/s each (400 req/s) for 12 s, the switch at 5 s. A failed
request is a socket error or a non-2xx answer; the next scheduled request on that connection
opens a new connection (no retry, no catch-up burst). Latency percentiles cover the successful
requests that started within 1 s of the switch (from 1 s before it starts to 1 s after it ends).
Traffic goes only to 127.0.0.1; the whole run is bounded (about 45 s per round, --rounds 3; the
table shows each method's median-p99 round, every round's p99 and failures are printed).

Each method's run is also drawn (bench/flip_plot.py) into docs/bench/flip-<method>.png, or
--plots DIR: requests per 100 ms by the color that answered them, and latency over time.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import flip_plot  # noqa: E402
from go_load import GoLoadClient  # noqa: E402

from core.router_config import RouterConfigInput, render_router_config  # noqa: E402
from tests.component.nginx_harness import (  # noqa: E402
    Router,
    Sample,
    Upstream,
    loopback_only,
    percentile,
    summarize,
    wait_until,
)


@dataclass
class Result:
    method: str
    total: int
    failed: int
    errors: int
    non_2xx: int
    p50_ms: float | None
    p99_ms: float | None
    window_requests: int
    switch_ms: float
    first_target_ms: float | None
    error_kinds: Counter[str]


@dataclass(frozen=True)
class Trace:
    """One run's raw requests and its switch, kept for the picture."""

    samples: list[Sample]
    started_at: float
    switch_window: tuple[float, float]


def render(router: Router, blue: str, green: str) -> str:
    rendered = render_router_config(
        RouterConfigInput(
            domain="bench.local",
            upstreams={"blue": blue, "green": green},
            state_dir=str(router.state_dir),
            resolver=None,
            **router.listen(),
            # One client address sends all the load; the per-client limit is not under test.
            rate_limit_per_second=100_000,
            rate_limit_burst=100_000,
        )
    )
    return loopback_only(rendered)


def run_one(
    method: str,
    upstreams: dict[str, Upstream],
    connections: int,
    rate: float,
    duration: float,
    switch_at: float,
) -> tuple[Result, Trace]:
    router = Router()
    blue, green = upstreams["blue"].addr, upstreams["green"].addr
    switch: Callable[[], None]
    if method.startswith("(c)"):
        router.install(render(router, blue, green))

        def switch() -> None:
            router.switch("live", "green")
    elif method.startswith("(b)"):
        router.install(render(router, blue, blue))

        def switch() -> None:
            router.install(render(router, green, green))
            reloaded = router.reload()
            if reloaded.returncode != 0:
                raise RuntimeError(f"nginx -s reload failed: {reloaded.stderr}")
    else:
        router.install(render(router, blue, blue))

        def switch() -> None:
            router.stop(signal.SIGQUIT, timeout=30)  # docker stop with the image's STOPSIGNAL
            router.install(render(router, green, green))
            router.boot()  # returns once the new nginx listens again

    try:
        router.boot()
        wait_until(lambda: router.get("/").color == "blue", timeout=20, what="blue to answer")
        load = GoLoadClient(
            router.ports.http, connections=connections, per_connection_rate=rate, duration=duration
        ).start()
        delay = load.started_at + switch_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        switch_started = time.monotonic()
        switch()
        switch_done = time.monotonic()
        samples = load.join()
    finally:
        router.stop()
        shutil.rmtree(router.root, ignore_errors=True)
    trace = Trace(samples, load.started_at, (switch_started, switch_done))
    return analyse(method, samples, duration, switch_started, switch_done), trace


def analyse(method: str, samples: list[Sample], duration: float, started: float, done: float) -> Result:
    summary = summarize(samples, duration)
    window = [s for s in samples if started - 1.0 <= s.start <= done + 1.0]
    latencies = [1000 * (s.end - s.start) for s in window if s.ok]
    first_target = [s.end for s in samples if s.ok and s.color == "green" and s.start >= started]
    return Result(
        method=method,
        total=summary.total,
        failed=summary.failed,
        errors=summary.errors,
        non_2xx=summary.non_2xx,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        window_requests=len(window),
        switch_ms=1000 * (done - started),
        first_target_ms=1000 * (min(first_target) - started) if first_target else None,
        error_kinds=Counter((s.error or f"HTTP {s.status}").split(":")[0] for s in samples if not s.ok),
    )


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(results: list[Result]) -> None:
    head = ("switch method", "failed/total", "sock err", "non-2xx", "p50 ms", "p99 ms", "switch ms", "1st green ms")
    rows = [
        (
            r.method,
            f"{r.failed}/{r.total}",
            str(r.errors),
            str(r.non_2xx),
            fmt(r.p50_ms, 2),
            fmt(r.p99_ms, 2),
            fmt(r.switch_ms),
            fmt(r.first_target_ms),
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in (head, *rows)) for i in range(len(head))]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths, strict=True)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    print()
    for r in results:
        kinds = ", ".join(f"{kind} x{n}" for kind, n in r.error_kinds.most_common()) or "none"
        print(f"{r.method}: failures by kind: {kinds}; {r.window_requests} requests in the switch window")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s per keep-alive connection")
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--switch-at", type=float, default=5.0)
    parser.add_argument("--plots", type=Path, default=REPO / "docs/bench", help="where the PNGs go")
    parser.add_argument("--rounds", type=int, default=3, help="runs per method; the table shows the median p99 one")
    args = parser.parse_args()
    if not 0 < args.switch_at < args.duration <= 30:
        parser.error("need 0 < --switch-at < --duration <= 30")
    if not 1 <= args.rounds <= 10:
        parser.error("need 1 <= --rounds <= 10")

    methods = {
        "(a) stop + start nginx (seed)": "flip-stop-start.png",
        "(b) nginx -s reload": "flip-reload.png",
        "(c) state-file switch (ours)": "flip-state-file.png",
    }
    print(
        f"load: {args.connections} keep-alive connections x {args.rate:g} req/s = "
        f"{args.connections * args.rate:g} req/s for {args.duration:g} s, switch blue->green at "
        f"{args.switch_at:g} s; the client never retries; p50/p99 over successful requests "
        f"started within 1 s of the switch",
        flush=True,
    )
    upstreams = {color: Upstream(color) for color in ("blue", "green")}
    results = []
    failed_in_any_round = 0
    try:
        for method, picture in methods.items():
            print(f"running {method} x{args.rounds} ...", flush=True)
            runs = [
                run_one(method, upstreams, args.connections, args.rate, args.duration, args.switch_at)
                for _ in range(args.rounds)
            ]
            # A p99 over the ~800 requests of one switch window is its 8th slowest request: one
            # run is noise-prone on a shared 2-core machine, the median of a few is not.
            runs.sort(key=lambda run: run[0].p99_ms if run[0].p99_ms is not None else float("inf"))
            result, trace = runs[len(runs) // 2]
            print(f"  p99 ms per round: {', '.join(fmt(run[0].p99_ms, 2) for run in runs)}", flush=True)
            print(f"  failed per round: {', '.join(str(run[0].failed) for run in runs)}", flush=True)
            results.append(result)
            failed_in_any_round = sum(run[0].failed for run in runs)
            title = f"{method}: {result.failed} failed of {result.total}, blue -> green at {args.switch_at:g} s"
            drawn = flip_plot.draw(
                trace.samples, trace.started_at, args.duration, trace.switch_window, title, args.plots / picture
            )
            print(f"  drew {drawn.relative_to(REPO) if drawn.is_relative_to(REPO) else drawn}", flush=True)
    finally:
        for upstream in upstreams.values():
            upstream.stop()
    print()
    print_table(results)
    return 0 if failed_in_any_round == 0 else 1  # the last method is ours


if __name__ == "__main__":
    sys.exit(main())
