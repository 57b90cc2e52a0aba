"""The poll: what counts as healthy, backoff within the deadline, a message that says why."""

from __future__ import annotations

from typing import Any

import requests

from core.health_poll import COLOR_HEADER, PollSpec, failure_message, poll


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def response(status: int, body: str, color: str | None) -> requests.Response:
    done = requests.Response()
    done.status_code = status
    done._content = body.encode()
    if color:
        done.headers[COLOR_HEADER] = color
    return done


def answers(*replies: requests.Response | Exception) -> Any:
    queue = list(replies)

    def get(*_args: object, **_kwargs: object) -> requests.Response:
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return get


SPEC = PollSpec(url="http://127.0.0.1:9080/health", color="green", expect_body="OK", deadline_seconds=20,
                initial_backoff_seconds=1, max_backoff_seconds=4)


def test_only_the_expected_color_with_the_expected_body_is_healthy() -> None:
    time = FakeClock()
    get = answers(
        requests.ConnectionError("refused"),
        response(503, "starting", "green"),
        response(200, "OK", "blue"),  # the preview route still on the old color
        response(200, "OK", "green"),
    )
    result = poll(SPEC, get=get, clock=time.clock, sleep=time.sleep)
    assert result.healthy and result.tries == 4
    assert time.sleeps == [1, 2, 4]  # doubles up to the cap


def test_the_deadline_bounds_the_wait_and_the_message_says_why() -> None:
    time = FakeClock()
    result = poll(SPEC, get=answers(response(200, "NOT READY", "green")), clock=time.clock, sleep=time.sleep)
    assert not result.healthy
    assert time.now <= SPEC.deadline_seconds
    message = failure_message(SPEC, result)
    assert "color green" in message and "body does not contain 'OK'" in message and "last status: 200" in message
