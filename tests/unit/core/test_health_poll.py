"""The poll: what counts as healthy, backoff within the deadline, a message that says why."""

from __future__ import annotations

from collections.abc import Callable

from core.health_poll import PollSpec, failure_message, poll
from core.router_control import ProbeReply


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def response(status: int, body: str, color: str | None) -> ProbeReply:
    return ProbeReply(status, color, body, None)


def refused() -> ProbeReply:
    return ProbeReply(None, None, "", "ConnectionError: refused")


def answers(*replies: ProbeReply) -> Callable[[PollSpec], ProbeReply]:
    queue = list(replies)

    def fetch(_spec: PollSpec) -> ProbeReply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return fetch


SPEC = PollSpec(url="http://127.0.0.1:9080/health", color="green", expect_body="OK", deadline_seconds=20,
                initial_backoff_seconds=1, max_backoff_seconds=4)


def test_only_the_expected_color_with_the_expected_body_is_healthy() -> None:
    time = FakeClock()
    get = answers(
        refused(),
        response(503, "starting", "green"),
        response(200, "OK", "blue"),  # the preview route still on the old color
        response(200, "OK", "green"),
    )
    result = poll(SPEC, fetch=get, clock=time.clock, sleep=time.sleep)
    assert result.healthy and result.tries == 4
    assert time.sleeps == [1, 2, 4]  # doubles up to the cap


def test_the_deadline_bounds_the_wait_and_the_message_says_why() -> None:
    time = FakeClock()
    result = poll(SPEC, fetch=answers(response(200, "NOT READY", "green")), clock=time.clock, sleep=time.sleep)
    assert not result.healthy
    assert time.now <= SPEC.deadline_seconds
    message = failure_message(SPEC, result)
    assert "color green" in message and "body does not contain 'OK'" in message and "last status: 200" in message


def test_a_probe_that_got_no_answer_is_not_healthy_and_says_why() -> None:
    time = FakeClock()
    result = poll(SPEC, fetch=answers(refused()), clock=time.clock, sleep=time.sleep)
    assert not result.healthy and result.last_status is None
    assert "ConnectionError: refused" in failure_message(SPEC, result)


def test_a_router_probe_names_the_container_in_the_failure() -> None:
    spec = PollSpec(url="http://127.0.0.1:8082/health", color="blue", deadline_seconds=1, via_router="shop-router")
    time = FakeClock()
    result = poll(spec, fetch=answers(response(503, "starting", "blue")), clock=time.clock, sleep=time.sleep)
    assert "http://127.0.0.1:8082/health via shop-router never proved healthy" in failure_message(spec, result)
