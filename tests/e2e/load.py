"""A bounded, non-retrying HTTP(S) load on a loopback or harness-network URL, counting failures and colors.

requests' default adapter does not retry, like the clients docs/rules.md (rule 1b) measured. Keep-alive
sessions and fresh connections run side by side; every request is bounded by a timeout, the
whole load by a duration and a request cap.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests


@dataclass
class LoadReport:
    total: int = 0
    failed: int = 0
    colors: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # (time since start, color) of each success, to find when traffic moved
    timeline: list[tuple[float, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.failed} failed of {self.total} requests; colors {dict(self.colors)}"

    def first_seen(self, color: str) -> float | None:
        return next((at for at, seen in sorted(self.timeline) if seen == color), None)

    def settled_on(self, color: str) -> float | None:
        """When traffic moved to `color` for good: the first answer after the last other one."""
        timeline = sorted(self.timeline)
        last_other = max((i for i, (_, seen) in enumerate(timeline) if seen != color), default=-1)
        rest = timeline[last_other + 1:]
        return rest[0][0] if rest else None

    def flip_summary(self, color: str) -> str:
        first, settled = self.first_seen(color), self.settled_on(color)
        if first is None or settled is None:
            return f"traffic never settled on {color}"
        return f"first {color} answer at {first:.1f}s, all {color} from {settled:.1f}s"


class Load:
    def __init__(self, url: str, keepalive_clients: int = 3, fresh_clients: int = 1,
                 rate_per_client: float = 30.0, max_seconds: float = 600.0, max_requests: int = 200_000,
                 verify: str | bool = True):
        self.url = url
        self.verify = verify  # for https: the CA file the client trusts
        self.report = LoadReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._interval = 1.0 / rate_per_client
        self._deadline = time.monotonic() + max_seconds
        self._max = max_requests
        kinds = [True] * keepalive_clients + [False] * fresh_clients
        self._threads = [threading.Thread(target=self._run, args=(keepalive,), daemon=True) for keepalive in kinds]
        self._started = 0.0

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.report

    def _record(self, ok: bool, detail: str) -> None:
        with self._lock:
            self.report.total += 1
            if ok:
                self.report.colors[detail] += 1
                self.report.timeline.append((time.monotonic() - self._started, detail))
            else:
                self.report.failed += 1
                if len(self.report.failures) < 20:
                    self.report.failures.append(detail)

    def _run(self, keepalive: bool) -> None:
        session = requests.Session() if keepalive else None
        while not self._stop.is_set() and time.monotonic() < self._deadline and self.report.total < self._max:
            began = time.monotonic()
            try:
                if session is not None:
                    response = session.get(self.url, timeout=10, verify=self.verify)
                else:
                    response = requests.get(self.url, timeout=10, headers={"Connection": "close"}, verify=self.verify)
                ok = response.status_code == 200
                color = response.headers.get("X-Bluegreen-Color", "?")
                self._record(ok, color if ok else f"HTTP {response.status_code} from {color}: {response.text[:80]}")
            except requests.RequestException as error:
                self._record(False, f"{type(error).__name__}: {error}")
            time.sleep(max(0.0, self._interval - (time.monotonic() - began)))
