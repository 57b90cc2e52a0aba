"""The post-flip verdict on a window of real traffic, and the watch loop with a fake clock."""

import math
from collections.abc import Iterator

import pytest

from core.traffic_analysis import LATE_TRIES, AnalysisFailedError, AnalysisSpec, judge, watch
from core.traffic_metrics import Scrape, Series

SPEC = AnalysisSpec(
    color="green", window_seconds=10, max_error_ratio=0.05, max_p95_seconds=1.0, min_requests=20, interval_seconds=2
)


def green(ok: int, errors: int = 0, slow: int = 0) -> Series:
    """ok + errors requests under 0.1 s, `slow` more between 1 and 2.5 s."""
    fast = ok + errors
    return Series(
        {"2xx": ok + slow, "5xx": errors},
        {0.1: fast, 1.0: fast, 2.5: fast + slow, math.inf: fast + slow},
    )


def scrape_of(series: Series) -> Scrape:
    return Scrape({("live", "green"): series, ("live", "blue"): green(1000, 900)}, dropped=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def scrapes(*series: Series) -> Iterator[Scrape]:
    yield from (scrape_of(s) for s in series)


def test_a_healthy_window_passes_with_its_figures():
    verdict = judge(SPEC, green(99, 1), 10.0)
    assert verdict.healthy and verdict.reason is None
    assert (verdict.requests, verdict.server_errors, verdict.error_ratio) == (100, 1, 0.01)


def test_too_many_5xx_fail_and_say_how_many():
    verdict = judge(SPEC, green(90, 10), 4.0)
    assert not verdict.healthy
    assert verdict.reason == "10 of 100 answered 5xx (10.0% > 5.0%)"


def test_a_slow_p95_fails():
    verdict = judge(SPEC, green(80, slow=20), 4.0)
    assert not verdict.healthy and verdict.reason is not None and verdict.reason.startswith("p95 ")


def test_too_few_requests_are_no_verdict_and_do_not_fail():
    verdict = judge(SPEC, green(1, 5), 10.0)
    assert verdict.healthy and verdict.reason == "only 6 requests (< 20): no verdict"


def test_the_watch_stops_at_the_first_failing_look_and_judges_only_the_window():
    clock = FakeClock()
    # The baseline already holds 50 errors from before the flip: they are not the window's.
    looks = scrapes(green(0, 50), green(30, 50), green(40, 60))
    verdict = watch(SPEC, lambda: next(looks), clock, clock.sleep)
    assert not verdict.healthy
    assert (verdict.requests, verdict.server_errors) == (50, 10)
    assert clock.now == 4.0  # two intervals, not the whole window


def test_a_healthy_color_is_watched_for_the_whole_window():
    clock = FakeClock()
    looks = scrapes(*(green(100 * n) for n in range(10)))
    verdict = watch(SPEC, lambda: next(looks), clock, clock.sleep)
    assert verdict.healthy and verdict.watched_seconds == 10.0
    assert verdict.requests == 500


def test_a_failed_read_is_tried_again_and_none_at_all_fails_the_analysis():
    clock = FakeClock()
    calls = iter([scrape_of(green(0))])

    def flaky() -> Scrape:
        try:
            return next(calls)
        except StopIteration:
            raise RuntimeError("exit 7: connection refused") from None

    expected = r"no figures from the router in the 10 s window: .*connection refused"
    with pytest.raises(AnalysisFailedError, match=expected):
        watch(SPEC, flaky, clock, clock.sleep)
    assert clock.now == pytest.approx(10 + 2 * LATE_TRIES)
