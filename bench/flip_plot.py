"""A picture of one flip: requests per 100 ms by the color that answered them, and each request's
latency, over the run's time axis (switch_bench.py draws one per switch method).

The bucketing is pure and imports nothing heavy, so it is unit-tested without matplotlib;
`draw` imports matplotlib (requirements-bench.txt, which `make bench` installs) only when called.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

BUCKET_SECONDS = 0.1
# What the router's two colors look like on screen; a failed request is always red.
COLOR_STYLE = {"blue": "#1f77b4", "green": "#2ca02c"}
FAILED_STYLE = "#d62728"
FAILED = "failed"


class Request(Protocol):
    """What a plotted request needs (tests/component/nginx_harness.Sample has it)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def color(self) -> str | None: ...
    @property
    def ok(self) -> bool: ...


@dataclass(frozen=True)
class Buckets:
    """Requests per bucket, by the answering color or FAILED, bucketed by when each one started."""

    seconds: float
    counts: dict[str, list[int]]

    def times(self) -> list[float]:
        return [index * self.seconds for index in range(len(next(iter(self.counts.values()), [])))]


def bucket(requests: Iterable[Request], started_at: float, duration: float, seconds: float = BUCKET_SECONDS) -> Buckets:
    """Count requests per `seconds` bucket of [started_at, started_at + duration). A successful
    request counts for the color that answered it; anything else counts as FAILED. Requests that
    started outside the window are left out rather than piled into the first or last bucket."""
    if seconds <= 0 or duration <= 0:
        raise ValueError("bucket width and duration must be positive")
    size = round(duration / seconds)
    counts: dict[str, list[int]] = {name: [0] * size for name in (*COLOR_STYLE, FAILED)}
    for request in requests:
        # Division then floor, not //: 1.0 // 0.1 is 9.0 in binary floating point.
        index = math.floor((request.start - started_at) / seconds)
        if not 0 <= index < size:
            continue
        name = request.color if request.ok and request.color in COLOR_STYLE else FAILED
        counts[name][index] += 1
    return Buckets(seconds, counts)


def draw(
    requests: Sequence[Request],
    started_at: float,
    duration: float,
    switch_window: tuple[float, float],
    title: str,
    path: Path,
) -> Path:
    """Write a PNG: stacked requests per 100 ms by color (failed on top, red) and every request's
    latency in ms (log scale) at its start time, the switch shaded on both."""
    import matplotlib

    matplotlib.use("Agg")  # no display here or on a CI runner
    import matplotlib.pyplot as plt

    buckets = bucket(requests, started_at, duration)
    figure, (counts_axis, latency_axis) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, constrained_layout=True)
    times = buckets.times()
    bottom = [0] * len(times)
    for name in (*COLOR_STYLE, FAILED):
        values = buckets.counts[name]
        style = COLOR_STYLE.get(name, FAILED_STYLE)
        counts_axis.bar(times, values, width=buckets.seconds, bottom=bottom, align="edge", color=style, label=name)
        bottom = [low + value for low, value in zip(bottom, values, strict=True)]
    counts_axis.set_ylabel(f"requests per {buckets.seconds * 1000:.0f} ms")
    counts_axis.set_ylim(0, max(bottom, default=0) * 1.3 + 1)  # headroom for the legend
    counts_axis.legend(loc="upper left", ncols=3)

    for name in COLOR_STYLE:
        answered = [r for r in requests if r.ok and r.color == name]
        latency_axis.scatter(
            [r.start - started_at for r in answered],
            [max(1000 * (r.end - r.start), 0.01) for r in answered],
            s=3,
            color=COLOR_STYLE[name],
            label=name,
        )
    failed = [r for r in requests if not r.ok]
    if failed:
        latency_axis.scatter(
            [r.start - started_at for r in failed],
            [max(1000 * (r.end - r.start), 0.01) for r in failed],
            s=12,
            marker="x",
            color=FAILED_STYLE,
            label=f"{FAILED} ({len(failed)})",
        )
    latency_axis.set_yscale("log")
    latency_axis.set_ylabel("latency ms (log)")
    latency_axis.set_xlabel("seconds since the load started")
    latency_axis.legend(loc="upper left", ncols=3)

    begin, end = (moment - started_at for moment in switch_window)
    for axis in (counts_axis, latency_axis):
        # A switch of a few ms would be invisible as a span; draw it at least one bucket wide.
        axis.axvspan(begin, max(end, begin + buckets.seconds), color="#7f7f7f", alpha=0.25, lw=0)
    counts_axis.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
