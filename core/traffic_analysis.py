"""Real-traffic analysis after the live flip: watch the new color's live requests for a window
and judge them against the thresholds (settings.analysis, rule 9d).

Pure apart from the scrape and the clock, both injected: `judge` is the verdict on one window's
figures, `watch` the loop that scrapes the router (core.traffic_metrics) until the window ends or
the figures cross a threshold, whichever comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from core.naming import Color
from core.traffic_metrics import MetricsFormatError, Scrape, Series

ROUTE = "live"
# Scrapes tried after the window's end when none in it succeeded.
LATE_TRIES = 3


@dataclass(frozen=True)
class AnalysisSpec:
    color: Color
    window_seconds: float
    max_error_ratio: float
    max_p95_seconds: float
    min_requests: int
    interval_seconds: float
    # Where the figures come from: the router container, over this Docker host.
    via_router: str = ""
    docker_host: str | None = None


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    color: Color
    requests: int
    server_errors: int
    error_ratio: float | None
    p95_seconds: float | None
    watched_seconds: float
    # Why it failed, or why there was no verdict on the traffic (too few requests); None when passed.
    reason: str | None = None

    def summary(self) -> dict[str, Any]:
        return asdict(self)


class AnalysisFailedError(Exception):
    pass


def judge(spec: AnalysisSpec, window: Series, watched_seconds: float) -> Verdict:
    """The verdict on what `spec.color` answered during the window so far."""
    ratio, p95 = window.error_ratio(), window.quantile(0.95)

    def verdict(healthy: bool, reason: str | None) -> Verdict:
        return Verdict(
            healthy, spec.color, window.total, window.server_errors, ratio, p95, round(watched_seconds, 3), reason
        )

    if window.total < spec.min_requests:
        return verdict(True, f"only {window.total} requests (< {spec.min_requests}): no verdict")
    problems = []
    if ratio is not None and ratio > spec.max_error_ratio:
        problems.append(
            f"{window.server_errors} of {window.total} answered 5xx ({ratio:.1%} > {spec.max_error_ratio:.1%})"
        )
    if p95 is not None and p95 > spec.max_p95_seconds:
        problems.append(f"p95 {p95:.3f} s > {spec.max_p95_seconds:g} s")
    return verdict(not problems, "; ".join(problems) or None)


def watch(
    spec: AnalysisSpec,
    scrape: Callable[[], Scrape],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Scrape at the start (the baseline), then every interval until the window is over; stop
    early at the first failing verdict. A scrape that fails is tried again at the next interval,
    up to LATE_TRIES past the window's end; with no figures after the baseline the analysis
    fails, since traffic nobody judged is not a pass."""
    started = clock()
    baseline = _scrape(scrape).of(ROUTE, spec.color)
    latest: Verdict | None = None
    error, late = "", 0
    while True:
        remaining = spec.window_seconds - (clock() - started)
        if remaining <= 0:
            if latest is not None:
                return latest
            if late >= LATE_TRIES:
                window = f"{spec.window_seconds:g} s"
                raise AnalysisFailedError(f"no figures from the router in the {window} window: {error}")
            late += 1
        sleep(min(spec.interval_seconds, remaining) if remaining > 0 else spec.interval_seconds)
        try:
            now = _scrape(scrape).of(ROUTE, spec.color)
        except AnalysisFailedError as exc:
            error = str(exc)
            continue
        latest = judge(spec, now.minus(baseline), clock() - started)
        if not latest.healthy:
            return latest


def _scrape(scrape: Callable[[], Scrape]) -> Scrape:
    try:
        return scrape()
    except (MetricsFormatError, OSError, RuntimeError) as exc:
        raise AnalysisFailedError(f"could not read the router's figures: {exc}") from exc


def failure_message(verdict: Verdict) -> str:
    return (
        f"post-flip analysis: {verdict.color} failed on real traffic within {verdict.watched_seconds:.1f} s of "
        f"the flip: {verdict.reason} ({verdict.requests} live requests, p95 "
        f"{'-' if verdict.p95_seconds is None else f'{verdict.p95_seconds:.3f} s'})"
    )
