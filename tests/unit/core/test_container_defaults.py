import re

import pytest

from core.container_defaults import go_duration, memory_swap_mb
from tests.unit.configs import two_colors
from tests.unit.mock_stack import run_program

GO_DURATION = re.compile(r"^(\d+h\d+m\d+s|[1-9]\d?m\d+s|\d+s)$")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (5, "5s"), (59, "59s"), (60, "1m0s"), (90, "1m30s"), (120, "2m0s"), (3600, "1h0m0s"), (3725, "1h2m5s")],
)
def test_go_duration_matches_what_docker_reports(seconds, expected):
    assert go_duration(seconds) == expected


def test_go_duration_refuses_negative():
    with pytest.raises(ValueError, match="negative"):
        go_duration(-1)


def test_memory_swap_is_dockers_default():
    assert memory_swap_mb(256) == 512


def test_every_healthcheck_duration_is_written_as_docker_reads_it_back():
    # A "120s" would come back from `pulumi refresh` as "2m0s" and show as drift forever.
    monitor, _ = run_program(two_colors("blue"))
    checked = 0
    for registration in monitor.registrations.values():
        healthcheck = registration.inputs.get("healthcheck")
        if not healthcheck:
            continue
        for key in ("interval", "timeout", "startPeriod"):
            assert GO_DURATION.match(healthcheck[key]), (registration.name, key, healthcheck[key])
            checked += 1
        if "memory" in registration.inputs:
            assert registration.inputs["memorySwap"] == registration.inputs["memory"] * 2
    assert checked >= 15
