from dataclasses import dataclass

import pytest

from bench.flip_plot import FAILED, bucket


@dataclass(frozen=True)
class Req:
    start: float
    color: str | None
    ok: bool = True
    end: float = 0.0


def test_a_request_counts_for_the_color_that_answered_it_in_the_bucket_it_started_in() -> None:
    requests = [Req(100.05, "blue"), Req(100.15, "blue"), Req(100.19, "green"), Req(100.25, "green")]
    counts = bucket(requests, started_at=100.0, duration=0.3).counts
    assert counts["blue"] == [1, 1, 0]
    assert counts["green"] == [0, 1, 1]
    assert counts[FAILED] == [0, 0, 0]


def test_a_failed_request_counts_as_failed_whatever_color_header_it_carried() -> None:
    counts = bucket([Req(0.01, "green", ok=False), Req(0.02, None, ok=False)], started_at=0.0, duration=0.1).counts
    assert counts[FAILED] == [2]
    assert counts["green"] == [0]


def test_requests_outside_the_window_are_left_out_not_piled_into_the_edges() -> None:
    counts = bucket([Req(-0.01, "blue"), Req(1.0, "blue"), Req(0.99, "blue")], started_at=0.0, duration=1.0).counts
    assert counts["blue"] == [0] * 9 + [1]


def test_times_start_at_zero_one_bucket_apart() -> None:
    assert bucket([], started_at=5.0, duration=0.3).times() == pytest.approx([0.0, 0.1, 0.2])


def test_a_non_positive_width_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        bucket([], started_at=0.0, duration=1.0, seconds=0)
