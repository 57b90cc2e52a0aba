"""ops/maintenance.py: one config key changes, its other fields are kept, a failed up puts it back."""

from __future__ import annotations

import io

from ops import maintenance
from ops.environment import Target
from ops.pulumi_cli import PulumiCli
from tests.unit.ops.fakes import FakePulumi, P, pulumi_config, stack_config

TARGET = Target(stack="e2ecli")


def test_turning_it_on_keeps_the_retry_after_and_touches_no_other_key() -> None:
    before = stack_config(activeColor="green", maintenance={"retryAfterSeconds": 60})
    plan = maintenance.plan_maintenance(before, True)
    assert plan is not None
    assert plan.change.forward.keys() == ("maintenance",)
    after = before.apply(plan.change.forward)
    assert after.object("maintenance") == {"enabled": True, "retryAfterSeconds": 60}
    assert after.text("activeColor") == "green"
    assert after.apply(plan.change.undo) == before


def test_asking_for_the_state_it_is_in_does_nothing() -> None:
    assert maintenance.plan_maintenance(stack_config(activeColor="blue"), False) is None
    assert maintenance.plan_maintenance(stack_config(activeColor="blue", maintenance={"enabled": True}), True) is None


def test_maintenance_runs_one_up_and_a_failed_up_restores_the_config() -> None:
    start = pulumi_config(activeColor="green", prefix="e2ecli")
    fake = FakePulumi(start, stack="e2ecli")
    out, log = io.StringIO(), io.StringIO()
    assert maintenance.maintenance(fake, PulumiCli("e2ecli"), TARGET, True, out, log) == 0
    assert fake.config[P + "maintenance"]["objectValue"] == {"enabled": True} and fake.ups == 1
    assert "bin/bluegreen --stack e2ecli maintenance off" in out.getvalue()

    failing = FakePulumi(start, stack="e2ecli", up=FakePulumi.fail)
    assert maintenance.maintenance(failing, PulumiCli("e2ecli"), TARGET, True, io.StringIO(), log) == 1
    assert failing.config == start and "config restored" in log.getvalue()
