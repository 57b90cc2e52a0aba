"""ops/logs.py: the container of a color and role, on the stack's Docker host."""

from __future__ import annotations

import pytest

from ops import logs
from ops.environment import Target
from ops.pulumi_cli import OpsError, PulumiCli, Result
from tests.unit.ops.fakes import FakeDocker, FakePulumi, container, pulumi_config


def test_logs_of_a_running_container() -> None:
    fake = FakePulumi(pulumi_config(activeColor="blue", prefix="shop", dockerHost="ssh://d@vps"),
                      docker=FakeDocker([container("shop-blue-worker")]))
    fake.docker.replies[("logs",)] = Result(0, "")
    assert logs.logs(fake, PulumiCli("production"), Target(stack="production"), "blue", "worker", True, 5) == 0
    command = fake.commands[-1]
    assert command.argv == ("docker", "--host", "ssh://d@vps", "logs", "--follow", "--tail", "5", "shop-blue-worker")
    assert command.attach


@pytest.mark.parametrize(("role", "why"), [("worker", "only the live color runs a worker"),
                                           ("server", "the idle server is removed when otherColor is stopped")])
def test_a_missing_container_is_named_with_why(role: logs.Role, why: str) -> None:
    fake = FakePulumi(pulumi_config(activeColor="blue", prefix="shop"))
    with pytest.raises(OpsError, match=f"green's {role} container shop-green-{role} does not exist on "
                                       f"unix:///var/run/docker.sock \\({why}\\); see what runs: "
                                       "`bin/bluegreen --stack production status`"):
        logs.logs(fake, PulumiCli("production"), Target(stack="production"), "green", role, False, None)
