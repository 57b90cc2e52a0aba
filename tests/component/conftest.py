"""Shared fixtures of the component tests.

`router_report` collects one-line results (for example the failed-request count of the flip
under load) that are printed in a "blue-green router" section at the end of every pytest run,
with or without `-s`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.component.nginx_harness import HarnessError, Router, Upstream, make_self_signed_cert

_REPORT_LINES: list[str] = []


@pytest.fixture(scope="session")
def router_report() -> Callable[[str], None]:
    """Call with a line to show in the end-of-session summary."""
    return _REPORT_LINES.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT_LINES:
        terminalreporter.section("blue-green router")
        for line in _REPORT_LINES:
            terminalreporter.write_line(line)


# The router suites' fixtures: two colors' upstreams, a self-signed certificate, real nginx routers.


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    started: dict[str, Upstream] = {}
    try:
        for color in ("blue", "green"):
            started[color] = Upstream(color)
        yield started
    finally:
        for upstream in started.values():
            upstream.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def make_router() -> Iterator[Callable[[], Router]]:
    routers: list[Router] = []

    def factory() -> Router:
        try:
            router = Router()
        except HarnessError as exc:
            pytest.fail(str(exc), pytrace=False)
        routers.append(router)
        return router

    yield factory
    for router in routers:
        router.stop()
        # Shown by pytest only when the test failed.
        sys.stderr.write(f"nginx in {router.root} on {router.ports}:\n{router.logs()}\n")
        shutil.rmtree(router.root, ignore_errors=True)
