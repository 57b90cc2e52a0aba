"""Polling an HTTP health endpoint until it proves healthy or a deadline passes.

Health truth comes from HTTP (rule 6): `medusa start` can exit 0 on a config error, so only a
200 with the expected body, served by the expected color, counts. Pure apart from the request
and the clock, both injectable for tests.

A try goes one of two ways: straight to `url` over HTTP from this machine, or, when `via_router`
names the router container, as curl inside that container over the Docker connection the
program already has (rule 6b: nothing published, no token on a network; works the same for a
local socket and for ssh://).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from core.naming import Color
from core.router_config import COLOR_HEADER
from core.router_control import ProbeReply, parse_probe, probe_argv

BODY_EXCERPT = 300
# Over ssh a `docker exec` opens a connection first; give it room beyond the request's own timeout.
EXEC_OVERHEAD_SECONDS = 30.0


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
    # The router container to run the request in (see the module docstring), and the Docker
    # host that reaches it; None: a plain HTTP request from here.
    via_router: str | None = None
    docker_host: str | None = None
    # What the poll proves, for its failure message; and where to look when it fails.
    what: str = "health gate"
    hint: str | None = None


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


Fetch = Callable[["PollSpec"], ProbeReply]


def http_fetch(spec: PollSpec) -> ProbeReply:
    try:
        response = requests.get(
            spec.url, headers=dict(spec.headers), timeout=spec.timeout_seconds, allow_redirects=False,
            verify=spec.verify_tls,
        )
    except requests.RequestException as error:
        return ProbeReply(None, None, "", f"{type(error).__name__}: {error}")
    return ProbeReply(response.status_code, response.headers.get(COLOR_HEADER), response.text, None)


def router_fetch(spec: PollSpec) -> ProbeReply:
    assert spec.via_router is not None
    env = {**os.environ, **({"DOCKER_HOST": spec.docker_host} if spec.docker_host else {})}
    argv = probe_argv(spec.via_router, spec.url, spec.headers, spec.timeout_seconds)
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False,
                              timeout=spec.timeout_seconds + EXEC_OVERHEAD_SECONDS)
    except subprocess.TimeoutExpired:
        return ProbeReply(None, None, "", f"docker exec in {spec.via_router} did not return in time")
    return parse_probe(done.returncode, done.stdout, done.stderr)


def fetch_for(spec: PollSpec) -> Fetch:
    return router_fetch if spec.via_router else http_fetch


def _judge(spec: PollSpec, reply: ProbeReply) -> str | None:
    """Why this reply does not prove health, or None when it does."""
    if reply.error is not None:
        return reply.error
    if reply.status != spec.expect_status:
        return f"status {reply.status}, expected {spec.expect_status}"
    if spec.expect_body is not None and spec.expect_body not in reply.body:
        return f"body does not contain {spec.expect_body!r}"
    if spec.expect_color_header and reply.color != spec.color:
        return f"served by color {reply.color!r}, expected {spec.color!r}"
    return None


def poll(
    spec: PollSpec,
    fetch: Fetch | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PollResult:
    fetch = fetch or fetch_for(spec)
    started = clock()
    backoff = spec.initial_backoff_seconds
    attempts: list[dict[str, Any]] = []
    while True:
        tried_at = clock() - started
        reply = fetch(spec)
        last_status = reply.status
        excerpt = reply.body[:BODY_EXCERPT]
        last_error = _judge(spec, reply)
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
    where = f" via {spec.via_router}" if spec.via_router else ""
    hint = f"; {spec.hint}" if spec.hint else ""
    return (
        f"{spec.what} failed for color {spec.color}: {spec.url}{where} never proved healthy after "
        f"{result.tries} tries in {result.waited_seconds:.1f}s (deadline "
        f"{spec.deadline_seconds:.0f}s); last status: {result.last_status}; "
        f"last problem: {result.last_error}{body}{hint}"
    )
