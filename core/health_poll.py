"""Polling an HTTP health endpoint until it proves healthy or a deadline passes.

Health truth comes from HTTP (rule 6): `medusa start` can exit 0 on a config error, so only a
200 with the expected body, served by the expected color, counts. Pure apart from the HTTP
calls and the clock, both injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from core.naming import Color

COLOR_HEADER = "X-Bluegreen-Color"
BODY_EXCERPT = 300


@dataclass(frozen=True)
class PollSpec:
    url: str
    color: Color
    expect_status: int = 200
    expect_body: str | None = None
    expect_color_header: bool = True
    timeout_seconds: float = 5.0
    deadline_seconds: float = 300.0
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 15.0
    headers: Mapping[str, str] = field(default_factory=dict)
    # The post-switch check talks to the router by IP, where a real certificate cannot match.
    verify_tls: bool = True


@dataclass
class PollResult:
    healthy: bool
    tries: int
    waited_seconds: float
    last_status: int | None
    last_error: str | None
    body_excerpt: str
    attempts: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["attempts"] = data["attempts"][-10:]
        return data


class HealthGateFailedError(Exception):
    pass


def _judge(spec: PollSpec, response: requests.Response) -> str | None:
    """Why this response does not prove health, or None when it does."""
    if response.status_code != spec.expect_status:
        return f"status {response.status_code}, expected {spec.expect_status}"
    if spec.expect_body is not None and spec.expect_body not in response.text:
        return f"body does not contain {spec.expect_body!r}"
    if spec.expect_color_header:
        served_by = response.headers.get(COLOR_HEADER)
        if served_by != spec.color:
            return f"served by color {served_by!r}, expected {spec.color!r}"
    return None


def poll(
    spec: PollSpec,
    get: Callable[..., requests.Response] = requests.get,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PollResult:
    started = clock()
    backoff = spec.initial_backoff_seconds
    attempts: list[dict[str, Any]] = []
    last_status: int | None = None
    last_error: str | None = None
    excerpt = ""
    while True:
        tried_at = clock() - started
        try:
            response = get(
                spec.url,
                headers=dict(spec.headers),
                timeout=spec.timeout_seconds,
                allow_redirects=False,
                verify=spec.verify_tls,
            )
            last_status = response.status_code
            excerpt = response.text[:BODY_EXCERPT]
            last_error = _judge(spec, response)
        except requests.RequestException as error:
            last_status = None
            excerpt = ""
            last_error = f"{type(error).__name__}: {error}"
        attempts.append({"at": round(tried_at, 3), "status": last_status, "error": last_error})
        if last_error is None:
            return PollResult(True, len(attempts), round(clock() - started, 3), last_status,
                              None, excerpt, attempts)
        remaining = spec.deadline_seconds - (clock() - started)
        if remaining <= 0:
            return PollResult(False, len(attempts), round(clock() - started, 3), last_status,
                              last_error, excerpt, attempts)
        sleep(min(backoff, remaining))
        backoff = min(backoff * 2, spec.max_backoff_seconds)


def failure_message(spec: PollSpec, result: PollResult) -> str:
    body = f"; body: {result.body_excerpt!r}" if result.body_excerpt else ""
    return (
        f"health gate failed for color {spec.color}: {spec.url} never proved healthy after "
        f"{result.tries} tries in {result.waited_seconds:.1f}s (deadline "
        f"{spec.deadline_seconds:.0f}s); last status: {result.last_status}; "
        f"last problem: {result.last_error}{body}"
    )
