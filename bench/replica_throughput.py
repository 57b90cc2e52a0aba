"""Requests/s of a CPU-bound route with 1 and with 2 server replicas per color (rule 7b).

    .venv/bin/python bench/replica_throughput.py        (make bench)

A real `pulumi up` on the harness dockerd, the test app as the color (harness/images/testapp):
its `/cpu?ms=N` keeps the one Node thread busy N ms per request, the way a store route that
renders or prices in JavaScript does. Node serves on one core, so one server container caps a
color at one core whatever the host has; `medusa.serverReplicas: 2` lets the router spread the
requests over two. Closed-loop load through the router's public port on loopback: CLIENTS
keep-alive clients, each sending its next request when the last one answered, for SECONDS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.project import (  # noqa: E402
    PulumiStack,
    destroy_with_data,
    engine_env,
    local_stack_config,
    remove_leftovers,
)

PREFIX = "benchrep"
HTTP_PORT, PREVIEW_PORT = 14080, 15080
ROUTE = f"http://127.0.0.1:{HTTP_PORT}/cpu"
CLIENTS = 8
SECONDS = 10.0


def closed_loop(busy_ms: int, seconds: float) -> tuple[int, int, Counter[str]]:
    """(answered, failed, answers per replica) of CLIENTS clients for `seconds`."""
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    answered, failed = [0], [0]
    replicas: Counter[str] = Counter()

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop:
                try:
                    response = session.get(ROUTE, params={"ms": busy_ms}, timeout=10)
                    ok = response.status_code == 200
                    replica = response.json()["replica"] if ok else None
                except (requests.RequestException, ValueError, KeyError):
                    ok, replica = False, None
                with lock:
                    if ok:
                        answered[0] += 1
                        replicas[str(replica)] += 1
                    else:
                        failed[0] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 15)
    return answered[0], failed[0], replicas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--busy-ms", type=int, default=20, help="CPU time per request (default 20)")
    parser.add_argument("--seconds", type=float, default=SECONDS,
                        help=f"load per replica count (default {SECONDS:.0f})")
    options = parser.parse_args()
    env = engine_env()  # the built engine and the harness dockerd (started if needed)
    os.environ.update({k: env[k] for k in ("DOCKER_HOST", "PATH", "PULUMI_HOME") if k in env})
    subprocess.run([str(REPO / "harness/images.sh")], env=env, check=True, capture_output=True, timeout=3600)
    remove_leftovers(PREFIX)
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="medusa-bg-replicas-") as scratch:
        stack = PulumiStack(Path(scratch), env, stack="bench")
        try:
            for replicas in (1, 2):
                stack.set_config({
                    **local_stack_config(PREFIX, HTTP_PORT, PREVIEW_PORT, activeColor="blue",
                                         blueImage="medusa-bg/testapp:v1"),
                    "dockerHost": env["DOCKER_HOST"],
                    "medusa": {"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5,
                               "serverReplicas": replicas},
                })
                stack.up()
                closed_loop(options.busy_ms, 2.0)  # warm: connections, Node's JIT
                answered, failed, spread = closed_loop(options.busy_ms, options.seconds)
                rates[replicas] = answered / options.seconds
                print(f"replicas: {replicas} server(s) per color: {rates[replicas]:.0f} req/s of /cpu?ms="
                      f"{options.busy_ms} ({failed} failed; answers per replica {sorted(spread.values())})",
                      flush=True)
        finally:
            destroy_with_data(stack, PREFIX)
    print(f"replicas: 2 servers / 1 server = {rates[2] / rates[1]:.2f}x on {os.cpu_count()} cores "
          f"({CLIENTS} closed-loop keep-alive clients through the router)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
