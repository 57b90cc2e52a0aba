"""Reading the exporter's text, and the arithmetic a release's analysis does on two scrapes."""

import math

import pytest

from core.traffic_metrics import MetricsFormatError, Series, parse

TEXT = """\
# HELP bluegreen_requests_total Requests.
# TYPE bluegreen_requests_total counter
bluegreen_requests_total{route="live",color="green",code="2xx"} 90
bluegreen_requests_total{route="live",color="green",code="5xx"} 10
bluegreen_requests_total{route="live",color="none",code="4xx"} 3
# TYPE bluegreen_request_duration_seconds histogram
bluegreen_request_duration_seconds_bucket{route="live",color="green",le="0.1"} 50
bluegreen_request_duration_seconds_bucket{route="live",color="green",le="1"} 90
bluegreen_request_duration_seconds_bucket{route="live",color="green",le="+Inf"} 100
bluegreen_request_duration_seconds_sum{route="live",color="green"} 12.5
bluegreen_request_duration_seconds_count{route="live",color="green"} 100
bluegreen_metrics_dropped_total 2
"""


def test_requests_and_histogram_read_back_per_route_and_color():
    scrape = parse(TEXT)
    green = scrape.of("live", "green")
    assert green.by_class == {"2xx": 90, "5xx": 10}
    assert green.buckets == {0.1: 50, 1.0: 90, math.inf: 100}
    assert (green.total, green.error_ratio()) == (100, 0.1)
    assert scrape.of("live", "none").total == 3
    assert scrape.of("preview", "blue") == Series()
    assert scrape.dropped == 2


def test_a_quantile_is_interpolated_inside_its_bucket():
    green = parse(TEXT).of("live", "green")
    assert green.quantile(0.5) == pytest.approx(0.1)
    assert green.quantile(0.7) == pytest.approx(0.1 + 0.9 * (20 / 40))
    # Past the last finite bound the answer is that bound: "at least 1 s".
    assert green.quantile(0.95) == pytest.approx(1.0)
    assert Series().quantile(0.95) is None


def test_the_difference_of_two_scrapes_is_what_happened_between_them():
    before = Series({"2xx": 40, "5xx": 0}, {0.1: 40, math.inf: 40})
    after = Series({"2xx": 90, "5xx": 10}, {0.1: 50, math.inf: 100})
    between = after.minus(before)
    assert between.by_class == {"2xx": 50, "5xx": 10}
    assert between.buckets == {0.1: 10, math.inf: 60}
    assert between.error_ratio() == pytest.approx(10 / 60)


def test_after_an_exporter_restart_the_new_counts_are_the_whole_answer():
    before = Series({"2xx": 400}, {math.inf: 400})
    after = Series({"2xx": 7}, {math.inf: 7})
    assert after.minus(before) == after


@pytest.mark.parametrize("text", ["<html>502 Bad Gateway</html>", "bluegreen_requests_total{route=\"live\"} lots\n"])
def test_anything_but_the_exporters_text_is_refused(text):
    with pytest.raises(MetricsFormatError):
        parse(text)
