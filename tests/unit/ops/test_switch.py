"""ops/switch.py: only a warm color is switched to, as it is; a refusal changes nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest

from ops import switch
from ops.docker_host import ContainerState
from ops.environment import Target
from ops.pulumi_cli import PulumiCli
from tests.unit.ops.fakes import FakeDocker, FakePulumi, P, container, ops_fixture, pulumi_config, stack_config

TARGET = Target(stack="e2ecli")
RUNNING = ContainerState("e2ecli-blue-server", "running", "healthy")
OUTPUTS = ops_fixture("e2ecli_outputs.json")  # green live with v2, blue warm with v1


def config(**values: Any) -> Any:
    return stack_config(**{"activeColor": "green", "blueImage": "medusa-bg/testapp:v1",
                           "greenImage": "medusa-bg/testapp:v2", **values})


def test_switch_to_the_warm_color_pins_it_to_what_it_runs() -> None:
    plan = switch.plan_switch(config(blueImage="medusa-bg/testapp:v0"), OUTPUTS, RUNNING, "blue", TARGET)
    assert plan is not None and (plan.live, plan.target) == ("green", "blue")
    assert plan.change.forward.describe() == ["activeColor = blue", "blueImage = medusa-bg/testapp:v1"]
    assert plan.message == "bluegreen switch: make blue live (medusa-bg/testapp:v1, warm)"


def test_a_built_live_color_is_pinned_before_it_goes_idle() -> None:
    built = stack_config(activeColor="green", blueImage="medusa-bg/testapp:v1", greenBuild={"context": "app"})
    plan = switch.plan_switch(built, OUTPUTS, RUNNING, "blue", TARGET)
    assert plan is not None
    after = built.apply(plan.change.forward)
    assert after.text("greenImage") == "medusa-bg/testapp:v2" and "greenBuild" not in after
    assert after.apply(plan.change.undo) == built


def test_switching_to_the_live_color_does_nothing() -> None:
    assert switch.plan_switch(config(), OUTPUTS, RUNNING, "green", TARGET) is None


@pytest.mark.parametrize(("outputs", "server", "message"), [
    ({}, RUNNING, "stack e2ecli has not been deployed yet"),
    ({**OUTPUTS, "imageRefs": {"green": "medusa-bg/testapp:v2", "blue": None}}, RUNNING,
     r"blue has no image on stack e2ecli, so there is nothing warm to switch to; release an image to it instead "
     r"\(see `bin/bluegreen --stack e2ecli release --help`\)"),
    (OUTPUTS, ContainerState("e2ecli-blue-server"),
     r"blue is not warm: its server container e2ecli-blue-server does not exist \(otherColor=stopped removes"),
    (OUTPUTS, ContainerState("e2ecli-blue-server", "exited", "unhealthy"),
     r"is exited \(stopped, or it died\), so a switch would not be instant. To serve medusa-bg/testapp:v1 again, "
     r"roll back to it: `bin/bluegreen --stack e2ecli rollback --dry-run` shows the plan"),
    (OUTPUTS, ContainerState("e2ecli-blue-server", "running", "unhealthy"),
     r"is unhealthy; see why: `bin/bluegreen --stack e2ecli logs blue server --tail 100`"),
])
def test_a_color_that_is_not_warm_is_refused_with_what_to_do(outputs: dict[str, Any], server: ContainerState,
                                                             message: str) -> None:
    with pytest.raises(switch.NotWarmError, match=message) as refused:
        switch.plan_switch(config(), outputs, server, "blue", TARGET)
    assert refused.value.exit_code == 2


def test_a_refused_switch_changes_nothing_and_runs_no_up() -> None:
    start = pulumi_config(activeColor="green", blueImage="medusa-bg/testapp:v1", greenImage="medusa-bg/testapp:v2",
                          prefix="e2ecli")
    docker = FakeDocker([container("e2ecli-blue-server", "exited", "unhealthy")])
    fake = FakePulumi(start, outputs=OUTPUTS, docker=docker, stack="e2ecli")
    with pytest.raises(switch.NotWarmError):
        switch.switch(fake, PulumiCli("e2ecli"), TARGET, "blue", io.StringIO(), io.StringIO())
    assert fake.config == start and fake.ups == 0
    assert docker.hosts == ["unix:///var/run/docker.sock"], "the stack's dockerHost (here the default)"


def test_switch_runs_up_and_restores_the_config_when_it_fails() -> None:
    start = pulumi_config(activeColor="green", blueImage="medusa-bg/testapp:v1", greenImage="medusa-bg/testapp:v2",
                          prefix="e2ecli", dockerHost="ssh://deploy@vps")
    docker = FakeDocker([container("e2ecli-blue-server")])
    fake = FakePulumi(start, outputs=OUTPUTS, docker=docker, stack="e2ecli")
    out, log = io.StringIO(), io.StringIO()
    assert switch.switch(fake, PulumiCli("e2ecli"), TARGET, "blue", out, log) == 0
    assert fake.config[P + "activeColor"]["value"] == "blue" and fake.ups == 1
    assert "switched: blue is live on stack e2ecli (was green)" in out.getvalue()
    assert "instant rollback: bin/bluegreen --stack e2ecli switch green" in out.getvalue()
    assert docker.hosts == ["ssh://deploy@vps"]

    failing = FakePulumi(start, outputs=OUTPUTS, docker=docker, stack="e2ecli", up=FakePulumi.fail)
    assert switch.switch(failing, PulumiCli("e2ecli"), TARGET, "blue", io.StringIO(), log) == 1
    assert failing.config == start and "green is still live; config restored" in log.getvalue()
