"""Shared fixtures of the component tests.

`router_report` collects one-line results (for example the failed-request count of the flip
under load) that are printed in a "blue-green router" section at the end of every pytest run,
with or without `-s`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
