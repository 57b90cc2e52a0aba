"""ops/release.py: the plan of a release and its exact undo, and the orchestration against a
fake `pulumi` that keeps the stack config in memory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from core.naming import other_color
from core.settings import load_settings
from ops import release
from ops.environment import Target
from ops.pulumi_cli import OpsError, PulumiCli, StackConfig
from tests.unit.configs import BASE
from tests.unit.ops.fakes import SECRET, FakePulumi, P, built_ref, fixture, pulumi_config, stack_config

PRODUCTION = Target(stack="production")


def raw_settings(config: StackConfig) -> dict[str, str]:
    """What the program would read (key -> Pulumi's string form), on top of the unit-test BASE."""
    raw = {k: v for k, v in BASE.items() if k not in ("blueImage",)}
    raw.update({key: entry["value"] for key, entry in config.entries.items() if "value" in entry})
    return raw


def run_release(fake: FakePulumi, source: release.Source) -> tuple[int, str, str]:
    out, log = io.StringIO(), io.StringIO()
    code = release.release(fake, PulumiCli("production"), PRODUCTION, source, out, log)
    return code, out.getvalue(), log.getvalue()


def production() -> dict[str, Any]:
    config: dict[str, Any] = fixture("stack_config.json")  # blue live (built, pinned), green reg/shop:1.1.0
    return config


# --- the plan -------------------------------------------------------------------------------


def test_release_of_an_image_goes_to_the_idle_color_and_its_restore_is_exact() -> None:
    config = stack_config(activeColor="blue", blueImage="reg/shop:1.0.0", jwtSecret=SECRET, domain="d.example.com")
    plan = release.plan_release(config, release.ImageSource("reg/shop:1.1.0"), {})
    assert (plan.live, plan.target) == ("blue", "green")
    assert plan.change.forward.describe() == ["activeColor = green", "greenImage = reg/shop:1.1.0"]
    assert plan.change.undo.describe() == ["activeColor = blue", "greenImage removed"]
    assert config.apply(plan.change.forward).apply(plan.change.undo) == config
    assert plan.message == "bluegreen release: green <- reg/shop:1.1.0, flip blue -> green"


def test_release_of_a_build_replaces_the_idle_image_and_keeps_the_live_build_settings() -> None:
    config = stack_config(activeColor="green", greenImage="reg/shop:1.1.0", blueImage="reg/shop:1.0.0")
    plan = release.plan_release(config, release.BuildSource("app"), {})
    after = config.apply(plan.change.forward)
    assert after.object("blueBuild") == {"context": "app"}
    assert "blueImage" not in after and after.text("activeColor") == "blue"
    assert after.apply(plan.change.undo) == config


def test_a_built_live_color_is_pinned_before_it_goes_idle() -> None:
    build = {"context": "old-app", "args": {"NODE_ENV": "production"}}
    config = stack_config(activeColor="blue", blueBuild=build, greenImage="reg/shop:1.0.0")
    plan = release.plan_release(config, release.BuildSource("new-app"), {"blue": "shop/app:src-abc", "green": None})
    after = config.apply(plan.change.forward)
    assert after.text("blueImage") == "shop/app:src-abc" and "blueBuild" not in after
    assert after.object("greenBuild") == {"context": "new-app", "args": {"NODE_ENV": "production"}}
    assert "greenBuild = {args=..., context=new-app}" in plan.change.forward.describe(), "build args are not logged"
    assert "greenImage" not in after
    assert after.apply(plan.change.undo) == config
    with pytest.raises(OpsError, match="imageRefs has no ref for it"):
        release.plan_release(config, release.ImageSource("reg/shop:2"), {"blue": None, "green": None})


@pytest.mark.parametrize("image", [release.ImageSource("reg/shop:1.4.2"), release.BuildSource("examples/medusa-app")])
@pytest.mark.parametrize("active", ["blue", "green"])
def test_every_config_a_release_writes_passes_the_programs_validation(image: release.Source, active: str) -> None:
    other = "green" if active == "blue" else "blue"
    config = stack_config(activeColor=active, **{f"{active}Image": "reg/shop:1.0.0", f"{other}Image": "reg/shop:0.9"})
    plan = release.plan_release(config, image, {})
    after = config.apply(plan.change.forward)
    load_settings(raw_settings(after))  # raises SettingsError listing the problems
    pinned = after.apply(release.plan_pin(after, {"liveColor": other, "imageRefs": {other: "shop/app:src-1"}}))
    load_settings(raw_settings(pinned))
    assert load_settings(raw_settings(after.apply(plan.change.undo))).active_color == active


@pytest.mark.parametrize("ref", ["reg/shop", "localhost:5000/shop", "reg/shop: 1", ""])
def test_unpinned_image_refs_are_refused_before_anything_changes(ref: str) -> None:
    config = stack_config(activeColor="blue", blueImage="reg/shop:1.0.0")
    with pytest.raises(OpsError, match="not a pinned image reference"):
        release.plan_release(config, release.ImageSource(ref), {})


def test_missing_active_color_and_secret_release_keys_are_refused() -> None:
    with pytest.raises(OpsError, match="activeColor is not set"):
        release.plan_release(stack_config(blueImage="a/b:1"), release.ImageSource("a/b:2"), {})
    with pytest.raises(OpsError, match="activeColor is 'red'"):
        release.plan_release(stack_config(activeColor="red"), release.ImageSource("a/b:2"), {})
    with pytest.raises(OpsError, match="greenImage is a secret"):
        release.plan_release(stack_config(activeColor="blue", greenImage=SECRET), release.ImageSource("a/b:2"), {})


def test_pin_sets_the_live_colors_image_to_the_ref_it_runs() -> None:
    config = stack_config(activeColor="green", greenBuild={"context": "app"}, blueImage="reg/shop:1")
    outputs = fixture("stack_outputs.json") | {"liveColor": "green", "imageRefs": {"green": "shop/app:src-9"}}
    pin = release.plan_pin(config, outputs)
    assert pin.describe() == ["greenImage = shop/app:src-9", "greenBuild removed"]
    pinned = config.apply(pin)
    assert not release.plan_pin(pinned, outputs), "pinning an image release changes nothing"
    with pytest.raises(OpsError, match="liveColor is 'blue'"):
        release.plan_pin(config, {"liveColor": "blue"})


def test_build_dir_is_stored_relative_to_the_project(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    assert release.build_source(".", tmp_path, tmp_path / "app") == release.BuildSource("app")
    assert release.build_source("app", tmp_path, tmp_path) == release.BuildSource("app")
    with pytest.raises(OpsError, match="not a directory"):
        release.build_source("nope", tmp_path, tmp_path)


def test_the_undo_hint_is_a_flip_back_only_while_the_old_color_stays_warm() -> None:
    warm = release.rollback_hint(stack_config(activeColor="green"), "blue", PRODUCTION)
    assert "instant rollback: bin/bluegreen --stack production switch blue" in warm
    stopped = release.rollback_hint(stack_config(activeColor="green", otherColor="stopped"), "blue", PRODUCTION)
    assert "switch" not in stopped and "bin/bluegreen --stack production rollback" in stopped


# --- against the fake pulumi ----------------------------------------------------------------


def test_release_success_flips_pins_and_prints_a_summary_without_secrets() -> None:
    fake = FakePulumi(production())
    code, out, log = run_release(fake, release.ImageSource("ghcr.io/acme/shop:2.0.0"))
    assert code == 0, log
    assert fake.config[P + "activeColor"]["value"] == "green"
    assert fake.config[P + "greenImage"]["value"] == "ghcr.io/acme/shop:2.0.0"
    assert fake.config[P + "blueImage"] == production()[P + "blueImage"]
    assert fake.config[P + "jwtSecret"] == {"secret": True}
    assert fake.subcommands() == ["config --json", "config set-all", "up --yes", "stack output"]
    up = fake.commands[2].argv
    assert up[:4] == ("pulumi", "up", "--yes", "--skip-preview") and fake.commands[2].stream
    assert "released: green is live on stack production (was blue)" in out
    assert "green (live): ghcr.io/acme/shop:2.0.0" in out
    assert "instant rollback: bin/bluegreen --stack production switch blue" in out
    assert "[secret]" not in out + log


def test_release_failure_restores_the_config_exactly_and_shows_pulumis_error() -> None:
    fake = FakePulumi(production(), up=FakePulumi.fail)
    code, _, log = run_release(fake, release.ImageSource("ghcr.io/acme/shop:2.0.0"))
    assert code == 1
    assert fake.config == production()
    assert "error: health gate failed for green" in log
    assert "blue is still live; config restored" in log


def test_failed_build_release_restores_the_live_build_and_removes_the_idle_one() -> None:
    start = pulumi_config(activeColor="green", greenBuild={"context": "app"}, blueImage="reg/shop:1", domain="d.io")
    outputs = {"liveColor": "green", "imageRefs": {"green": "shop/app:src-1", "blue": "reg/shop:1"}}
    fake = FakePulumi(start, up=FakePulumi.fail, outputs=outputs)
    code, _, _ = run_release(fake, release.BuildSource("app2"))
    assert code == 1 and fake.config == start


def test_build_release_success_pins_the_built_tag() -> None:
    fake = FakePulumi(production())
    code, _, log = run_release(fake, release.BuildSource("examples/medusa-app"))
    assert code == 0, log
    assert P + "greenBuild" not in fake.config
    assert fake.config[P + "greenImage"]["value"] == built_ref({"context": "examples/medusa-app"})
    assert "pinning green" in log


def test_a_restore_that_fails_exits_3_and_lists_the_keys_to_fix() -> None:
    fake = FakePulumi(production(), up=FakePulumi.fail)
    fake.fail_set_all_after_up = True
    code, _, log = run_release(fake, release.ImageSource("ghcr.io/acme/shop:2.0.0"))
    assert code == 3
    assert "restore these keys by hand:\n  activeColor = blue" in log


def test_releases_alternate_colors() -> None:
    fake = FakePulumi(production())
    for number in range(4):
        live = fake.config[P + "activeColor"]["value"]
        assert run_release(fake, release.ImageSource(f"reg/shop:3.{number}"))[0] == 0
        assert fake.config[P + "activeColor"]["value"] == other_color(live)
