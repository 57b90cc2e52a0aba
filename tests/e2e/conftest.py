"""The e2e suite's shared setup: a private dockerd, the local images, the built engine.

Nothing here skips: if the engine or Docker cannot be had, the suite fails and says why.
Numbers the scenarios measure are printed at the end of the pytest run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.project import REPO, engine_env

MEASUREMENTS: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("e2e measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)


def measure(line: str) -> None:
    MEASUREMENTS.append(line)


def _dockerd_running() -> bool:
    return subprocess.run([str(REPO / "harness/dockerd.sh"), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="session", autouse=True)
def dockerd_started_here_is_stopped_here() -> Iterator[None]:
    """The harness stops the dockerd it started, whichever fixture or script started it (the VPS
    suites start it through harness/vps.sh) and even when a later setup step failed."""
    was_running = _dockerd_running()
    yield
    if not was_running and _dockerd_running():
        subprocess.run([str(REPO / "harness/dockerd.sh"), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def engine() -> Iterator[dict[str, str]]:
    env = engine_env()  # bootstraps the engine and starts dockerd if needed
    os.environ.update({k: env[k] for k in ("DOCKER_HOST", "PATH", "PULUMI_HOME") if k in env})
    images = subprocess.run([str(REPO / "harness/images.sh")], capture_output=True, text=True, timeout=3600)
    if images.returncode != 0:
        pytest.fail(f"harness/images.sh failed:\n{images.stderr[-3000:]}")
    yield env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")
