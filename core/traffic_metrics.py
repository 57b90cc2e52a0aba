"""Reading the router's per-color traffic figures (nginx/bluegreen-metrics.pl, rule 2f).

Pure: the exporter's Prometheus text in, typed figures out, and the arithmetic a release's
analysis needs on two scrapes (what one color answered between them, its 5xx share, its p95).
The metric names and labels are the exporter's; this module is the only Python that reads them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

REQUESTS = "bluegreen_requests_total"
DURATION = "bluegreen_request_duration_seconds"

# name{label="value",...} number
_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(?P<key>[a-z_]+)="(?P<value>[^"]*)"')


class MetricsFormatError(ValueError):
    """The text is not what the router's exporter prints."""


@dataclass(frozen=True)
class Series:
    """One route and serving color: requests by status class and the latency histogram."""

    by_class: dict[str, int] = field(default_factory=dict)  # "2xx" -> count
    buckets: dict[float, int] = field(default_factory=dict)  # upper bound (inf included) -> count

    @property
    def total(self) -> int:
        return sum(self.by_class.values())

    @property
    def server_errors(self) -> int:
        return self.by_class.get("5xx", 0)

    def minus(self, earlier: Series) -> Series:
        """What happened between `earlier` and this scrape. A counter that went down means the
        exporter restarted in between: then this scrape counts from zero and is the whole answer."""
        if any(self.by_class.get(k, 0) < v for k, v in earlier.by_class.items()):
            return self
        return Series(
            {k: v - earlier.by_class.get(k, 0) for k, v in self.by_class.items()},
            {k: v - earlier.buckets.get(k, 0) for k, v in self.buckets.items()},
        )

    def error_ratio(self) -> float | None:
        return self.server_errors / self.total if self.total else None

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the request time in seconds, interpolated within its histogram
        bucket as Prometheus's histogram_quantile does; the largest finite bound when it falls
        in the +Inf bucket; None with no request."""
        bounds = sorted(self.buckets)
        if not bounds or self.buckets[bounds[-1]] == 0:
            return None
        rank = q * self.buckets[bounds[-1]]
        lower, below = 0.0, 0
        for bound in bounds:
            count = self.buckets[bound]
            if count >= rank:
                if math.isinf(bound):
                    return lower
                inside = count - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, count
        return lower


@dataclass(frozen=True)
class Scrape:
    series: dict[tuple[str, str], Series]  # (route, color) -> figures; color "none" = the router itself
    dropped: int

    def of(self, route: str, color: str) -> Series:
        return self.series.get((route, color), Series())


def parse(text: str) -> Scrape:
    series: dict[tuple[str, str], Series] = {}
    dropped = 0
    seen_requests = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise MetricsFormatError(f"line {number} is not a metric sample: {line!r}")
        labels = dict(_LABEL.findall(match["labels"] or ""))
        name = match["name"]
        try:
            value = float(match["value"])
        except ValueError:
            raise MetricsFormatError(f"line {number} has no number: {line!r}") from None
        key = (labels.get("route", ""), labels.get("color", ""))
        if name == REQUESTS:
            seen_requests = True
            series.setdefault(key, Series()).by_class[labels.get("code", "")] = int(value)
        elif name == f"{DURATION}_bucket":
            series.setdefault(key, Series()).buckets[float(labels.get("le", "nan"))] = int(value)
        elif name == "bluegreen_metrics_dropped_total":
            dropped = int(value)
    if not seen_requests and "# TYPE bluegreen_requests_total" not in text:
        raise MetricsFormatError("no bluegreen_requests_total in the text: not the router's exporter")
    return Scrape(series, dropped)
