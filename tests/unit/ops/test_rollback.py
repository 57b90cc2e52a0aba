"""ops/rollback.py: which update to go back to, the plan that never touches the live color,
and the orchestration against a fake `pulumi`."""

from __future__ import annotations

import io
from typing import Any

import pytest

from ops import rollback
from ops.environment import Target
from ops.history import Deployment, parse_history
from ops.pulumi_cli import OpsError, PulumiCli
from tests.unit.ops.fakes import FakePulumi, P, fixture, pulumi_config, stack_config


def production() -> dict[str, Any]:
    config: dict[str, Any] = fixture("stack_config.json")
    return config


def run_rollback(fake: FakePulumi, to: rollback.To = None, dry_run: bool = False,
                 config_only: bool = False) -> tuple[int, str, str]:
    out, log = io.StringIO(), io.StringIO()
    code = rollback.rollback(fake, PulumiCli("production"), Target(stack="production"), to, dry_run, config_only,
                             out, log)
    return code, out.getvalue(), log.getvalue()


def test_default_target_is_the_previous_different_deployment() -> None:
    entries = parse_history(fixture("stack_history.json"))
    current, target = rollback.choose_target(entries, None)
    assert (current.number, target.number) == (9, 8)
    # Skipping updates that left the same deployment: 5 and 8 are alike, 7 is blue again.
    older = [e for e in entries if e.number <= 8]
    assert rollback.choose_target(older, None)[1].number == 7
    assert rollback.choose_target(entries, 4)[1].number == 4
    assert rollback.choose_target(entries, "latest")[1].number == 9
    with pytest.raises(OpsError, match=r"update 3 is not a successful update \(update, failed\)"):
        rollback.choose_target(entries, 3)
    with pytest.raises(OpsError, match=r"\(refresh, succeeded\)"):
        rollback.choose_target(entries, 6)
    with pytest.raises(OpsError, match="update 42 is not in the stack history"):
        rollback.choose_target(entries, 42)
    with pytest.raises(OpsError, match="nothing to roll back to"):
        rollback.choose_target([e for e in entries if e.number == 1], None)


def test_a_build_without_a_recorded_pin_cannot_be_rolled_back_to() -> None:
    entries = parse_history(fixture("stack_history.json")[5:])
    with pytest.raises(OpsError, match="update 4: blue was built"):
        rollback.choose_target(entries, 4)


def test_plan_rollback_never_changes_the_live_colors_image() -> None:
    # green is live (built, pinned in history as src-2), blue is warm with reg/shop:1.
    config = stack_config(activeColor="green", greenBuild={"context": "app"}, blueImage="reg/shop:1", domain="x.io")
    live = Deployment("green", "reg/shop:1", "shop/app:src-2")

    # The target's live image is the warm one: a plain flip, both pinned.
    change = rollback.plan_rollback(config, live, Deployment("blue", "reg/shop:1", None))
    assert change.forward.describe() == ["activeColor = blue", "greenImage = shop/app:src-2", "greenBuild removed"]
    assert config.apply(change.forward).apply(change.undo) == config

    # An older image, on green in its own update: it goes to the idle color (blue), green stays warm.
    change = rollback.plan_rollback(config, live, Deployment("green", "reg/shop:0", "reg/shop:0"))
    assert change.forward.describe() == [
        "activeColor = blue", "blueImage = reg/shop:0", "greenImage = shop/app:src-2", "greenBuild removed",
    ]

    # Already serving the target's image: nothing flips.
    change = rollback.plan_rollback(config, live, Deployment("blue", "shop/app:src-2", None))
    assert change.forward.describe() == ["greenImage = shop/app:src-2", "greenBuild removed"]


def test_config_sync_copies_the_deployment_exactly() -> None:
    config = stack_config(activeColor="green", greenBuild={"context": "app"}, blueImage="reg/shop:2", domain="x.io")
    change = rollback.plan_config_sync(config, Deployment("blue", "reg/shop:1", None))
    assert change.forward.describe() == ["activeColor = blue", "blueImage = reg/shop:1", "greenBuild removed"]
    assert config.apply(change.forward).apply(change.undo) == config


def test_rollback_restores_the_previous_deployment_and_runs_up() -> None:
    fake = FakePulumi(production(), history=fixture("stack_history.json"))
    code, out, log = run_rollback(fake)
    assert code == 0, log
    assert fake.config[P + "activeColor"]["value"] == "green"
    assert fake.config[P + "greenImage"]["value"] == "reg/shop:1.3.0"
    assert "rolled back: stack production is at update 8's deployment" in out
    assert fake.subcommands() == ["config --json", "stack history", "config set-all", "up --yes", "stack output"]
    message = fake.commands[3].argv[fake.commands[3].argv.index("--message") + 1]
    assert message.startswith("bluegreen rollback: back to update 8 (green live;")


def test_rollback_dry_run_and_config_only() -> None:
    fake = FakePulumi(production(), history=fixture("stack_history.json"))
    code, out, _ = run_rollback(fake, to=2, dry_run=True)
    assert code == 0 and fake.config == production()
    assert "#3 2026-11-22T07:00:18.000Z update failed" in out
    assert "would run: bin/bluegreen --stack production pulumi up --yes --skip-preview" in out
    code, out, _ = run_rollback(fake, to=2, config_only=True)
    assert code == 0 and fake.ups == 0
    assert {k: fake.config[P + k]["value"] for k in ("activeColor", "blueImage", "greenImage")} == {
        "activeColor": "green", "blueImage": "reg/shop:1.0.0", "greenImage": "reg/shop:1.1.0"}


def test_sync_to_latest_copies_the_live_deployment_into_a_fresh_checkout() -> None:
    fresh = pulumi_config(activeColor="blue", blueImage="reg/shop:1.0.0", domain="api.shop.example.com")
    fake = FakePulumi(fresh, history=fixture("stack_history.json"))
    assert run_rollback(fake, to="latest", config_only=True)[0] == 0
    live = parse_history(fixture("stack_history.json"))[0].deployment
    assert live is not None
    assert fake.config[P + "greenImage"]["value"] == live.green
    assert fake.config[P + "blueImage"]["value"] == live.blue
    never_updated = FakePulumi(fresh)
    code, _, log = run_rollback(never_updated, to="latest", config_only=True)
    assert code == 0 and never_updated.config == fresh and "no successful update yet" in log
    with pytest.raises(OpsError, match="no successful update"):
        run_rollback(never_updated)


def test_failed_rollback_restores_the_config() -> None:
    fake = FakePulumi(production(), history=fixture("stack_history.json"), up=FakePulumi.fail)
    code, _, log = run_rollback(fake, to=2)
    assert code == 1 and fake.config == production()
    assert "config restored" in log
