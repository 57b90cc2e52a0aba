"""scripts/release.py and scripts/rollback.py: the pure planning, the command lines, and the
orchestration against a fake `pulumi` that keeps the stack config in memory.

Fixtures in tests/unit/fixtures/ are real output of the Pulumi CLI 3.259.0 this repo builds
(scripts/engine/bootstrap.sh), file:// backend, captured on a throwaway project named
medusa-bluegreen whose program only validated the release keys like core/settings.py
and exported liveColor / imageRefs / images / publicUrl and a secret. Its stack `production`
got, in order: `pulumi up` (blue reg/shop:1.0.0), release.py --image reg/shop:1.1.0, a
release.py of reg/shop:1.2.0-broken that failed, release.py --build app (blue, pinned after to
shop/app:src-74621e3645e90f325e1f), release.py --image reg/shop:1.3.0, `pulumi refresh`,
`pulumi config set activeColor blue` + `pulumi up`, rollback.py, rollback.py --to 4. Then:
    pulumi stack history --json --show-secrets=false --page-size 100 --page 1 > stack_history.json
    pulumi config --json > stack_config.json
    pulumi stack output --json > stack_outputs.json
(jwtSecret was set with --secret: the files hold no value for it.)
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bluegreen_ops as ops  # noqa: E402
import release  # noqa: E402
import rollback  # noqa: E402

from core.settings import load_settings  # noqa: E402
from tests.unit.configs import BASE  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures"
P = "medusa-bluegreen:"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def pulumi_config(**values: Any) -> dict[str, Any]:
    """A config in the format of `pulumi config --json`."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out[P + key] = ops.object_entry(value)
        elif value is SECRET:
            out[P + key] = {"secret": True}
        else:
            out[P + key] = ops.string_entry(value)
    return out


SECRET = object()


def stack_config(**values: Any) -> ops.StackConfig:
    return ops.StackConfig.from_pulumi(pulumi_config(**values))


def raw_settings(config: ops.StackConfig) -> dict[str, str]:
    """What the program would read (key -> Pulumi's string form), on top of the unit-test BASE."""
    raw = {k: v for k, v in BASE.items() if k not in ("blueImage",)}
    raw.update({key: entry["value"] for key, entry in config.entries.items() if "value" in entry})
    return raw


# --- a fake pulumi ----------------------------------------------------------------------------


def built_ref(build: dict[str, Any]) -> str:
    return "shop/app:src-" + hashlib.sha256(json.dumps(build, sort_keys=True).encode()).hexdigest()[:20]


class FakePulumi:
    """Implements the pulumi subcommands the scripts use, on an in-memory config."""

    def __init__(self, config: dict[str, Any], history: list[dict[str, Any]] | None = None,
                 up: Callable[[FakePulumi], ops.Result] | None = None, outputs: dict[str, Any] | None = None):
        self.config = json.loads(json.dumps(config))
        self.history = history or []
        self.outputs = outputs if outputs is not None else {}
        self.on_up = up or FakePulumi.succeed
        self.commands: list[ops.Command] = []
        self.fail_set_all_after_up = False
        self.ups = 0

    def succeed(self) -> ops.Result:
        active = self.config[P + "activeColor"]["value"]
        refs: dict[str, str | None] = {}
        for color in ops.COLORS:
            image = self.config.get(f"{P}{color}Image")
            build = self.config.get(f"{P}{color}Build")
            refs[color] = image["value"] if image else built_ref(build["objectValue"]) if build else None
        self.outputs = {"liveColor": active, "imageRefs": refs, "jwt": "[secret]",
                        "images": {c: "sha256:" + "0" * 64 for c, r in refs.items() if r}}
        return ops.Result(0, "Updating (production):\nResources:\n    1 unchanged\n")

    def fail(self) -> ops.Result:
        return ops.Result(255, "Updating (production):\n  ...\nDiagnostics:\n  error: health gate failed for green\n"
                               "Outputs:\n  liveColor: blue\n")

    def run(self, command: ops.Command) -> ops.Result:
        self.commands.append(command)
        argv = list(command.argv[1:])
        assert argv[argv.index("--stack") + 1] == "production"
        assert "--non-interactive" in argv
        args = argv[: argv.index("--stack")]
        if args == ["config", "--json"]:
            return ops.Result(0, json.dumps(self.config))
        if args[:3] == ["config", "set-all", "--json"]:
            if self.fail_set_all_after_up and self.ups:
                return ops.Result(1, "", "error: could not save the stack config")
            self.config.update(json.loads(args[3]))
            return ops.Result(0, "")
        if args[:2] == ["config", "rm-all"]:
            for key in args[2:]:
                self.config.pop(key, None)
            return ops.Result(0, "")
        if args == ["stack", "output", "--json"]:
            return ops.Result(0, json.dumps(self.outputs))
        if args[:2] == ["stack", "history"]:
            size = int(args[args.index("--page-size") + 1])
            page = int(args[args.index("--page") + 1])
            return ops.Result(0, json.dumps(self.history[(page - 1) * size : page * size]))
        if args[0] == "up":
            self.ups += 1
            return self.on_up(self)
        raise AssertionError(f"unexpected command {command}")

    def subcommands(self) -> list[str]:
        return [" ".join(c.argv[1:3]) for c in self.commands]


def run_release(fake: FakePulumi, source: release.Source) -> tuple[int, str, str]:
    out, log = io.StringIO(), io.StringIO()
    code = release.release(fake, ops.PulumiCli("production"), source, out, log)
    return code, out.getvalue(), log.getvalue()


def run_rollback(fake: FakePulumi, to: int | str | None = None, dry_run: bool = False,
                 config_only: bool = False) -> tuple[int, str, str]:
    out, log = io.StringIO(), io.StringIO()
    code = rollback.rollback(fake, ops.PulumiCli("production"), to, dry_run, config_only, out, log)
    return code, out.getvalue(), log.getvalue()


# --- release: the plan ----------------------------------------------------------------------


def test_release_of_an_image_goes_to_the_idle_color_and_its_restore_is_exact() -> None:
    config = stack_config(activeColor="blue", blueImage="reg/shop:1.0.0", jwtSecret=SECRET, domain="d.example.com")
    plan = release.plan_release(config, release.ImageSource("reg/shop:1.1.0"), {})
    assert (plan.live, plan.target) == ("blue", "green")
    assert plan.forward.describe() == ["activeColor = green", "greenImage = reg/shop:1.1.0"]
    assert plan.restore.describe() == ["activeColor = blue", "greenImage removed"]
    assert config.apply(plan.forward).apply(plan.restore) == config
    assert "green <- reg/shop:1.1.0" in plan.message


def test_release_of_a_build_replaces_the_idle_image_and_keeps_the_live_build_settings() -> None:
    config = stack_config(activeColor="green", greenImage="reg/shop:1.1.0", blueImage="reg/shop:1.0.0")
    plan = release.plan_release(config, release.BuildSource("app"), {})
    after = config.apply(plan.forward)
    assert after.object("blueBuild") == {"context": "app"}
    assert "blueImage" not in after and after.text("activeColor") == "blue"
    assert config.apply(plan.forward).apply(plan.restore) == config


def test_a_built_live_color_is_pinned_before_it_goes_idle() -> None:
    build = {"context": "old-app", "args": {"NODE_ENV": "production"}}
    config = stack_config(activeColor="blue", blueBuild=build, greenImage="reg/shop:1.0.0")
    plan = release.plan_release(config, release.BuildSource("new-app"), {"blue": "shop/app:src-abc", "green": None})
    after = config.apply(plan.forward)
    assert after.text("blueImage") == "shop/app:src-abc" and "blueBuild" not in after
    assert after.object("greenBuild") == {"context": "new-app", "args": {"NODE_ENV": "production"}}
    assert "greenBuild = {args=..., context=new-app}" in plan.forward.describe(), "build args are not logged"
    assert "greenImage" not in after
    assert config.apply(plan.forward).apply(plan.restore) == config
    with pytest.raises(ops.OpsError, match="imageRefs has no ref for it"):
        release.plan_release(config, release.ImageSource("reg/shop:2"), {"blue": None, "green": None})


@pytest.mark.parametrize("image", [release.ImageSource("reg/shop:1.4.2"), release.BuildSource("examples/medusa-app")])
@pytest.mark.parametrize("active", ["blue", "green"])
def test_every_config_a_release_writes_passes_the_programs_validation(image: release.Source, active: str) -> None:
    other = "green" if active == "blue" else "blue"
    config = stack_config(activeColor=active, **{f"{active}Image": "reg/shop:1.0.0", f"{other}Image": "reg/shop:0.9"})
    plan = release.plan_release(config, image, {})
    after = config.apply(plan.forward)
    load_settings(raw_settings(after))  # raises SettingsError listing the problems
    pinned = after.apply(release.plan_pin(after, {"liveColor": other, "imageRefs": {other: "shop/app:src-1"}}))
    load_settings(raw_settings(pinned))
    assert load_settings(raw_settings(after.apply(plan.restore))).active_color == active


@pytest.mark.parametrize("ref", ["reg/shop", "localhost:5000/shop", "reg/shop: 1", ""])
def test_unpinned_image_refs_are_refused_before_anything_changes(ref: str) -> None:
    config = stack_config(activeColor="blue", blueImage="reg/shop:1.0.0")
    with pytest.raises(ops.OpsError, match="not a pinned image reference"):
        release.plan_release(config, release.ImageSource(ref), {})


def test_missing_active_color_and_secret_release_keys_are_refused() -> None:
    with pytest.raises(ops.OpsError, match="activeColor is not set"):
        release.plan_release(stack_config(blueImage="a/b:1"), release.ImageSource("a/b:2"), {})
    with pytest.raises(ops.OpsError, match="activeColor is 'red'"):
        release.plan_release(stack_config(activeColor="red"), release.ImageSource("a/b:2"), {})
    with pytest.raises(ops.OpsError, match="greenImage is a secret"):
        release.plan_release(stack_config(activeColor="blue", greenImage=SECRET), release.ImageSource("a/b:2"), {})


def test_pin_sets_the_live_colors_image_to_the_ref_it_runs() -> None:
    config = stack_config(activeColor="green", greenBuild={"context": "app"}, blueImage="reg/shop:1")
    outputs = fixture("stack_outputs.json") | {"liveColor": "green", "imageRefs": {"green": "shop/app:src-9"}}
    pin = release.plan_pin(config, outputs)
    assert pin.describe() == ["greenImage = shop/app:src-9", "greenBuild removed"]
    pinned = config.apply(pin)
    assert not release.plan_pin(pinned, outputs), "pinning an image release changes nothing"
    with pytest.raises(ops.OpsError, match="liveColor is 'blue'"):
        release.plan_pin(config, {"liveColor": "blue"})


# --- release: against the fake pulumi -------------------------------------------------------


def production() -> dict[str, Any]:
    config: dict[str, Any] = fixture("stack_config.json")  # blue live (built, pinned), green reg/shop:1.1.0
    return config


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


def test_build_dir_is_stored_relative_to_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    args = release.parse_args(["--stack", "production", "--build", ".", "--cwd", str(tmp_path)])
    assert release.source_from_args(args) == release.BuildSource("app")
    with pytest.raises(ops.OpsError, match="not a directory"):
        release.source_from_args(release.parse_args(["--stack", "s", "--build", "nope"]))


# --- command lines --------------------------------------------------------------------------


def test_command_lines() -> None:
    cli = ops.PulumiCli("production", cwd="/srv/infra")
    tail = ("--stack", "production", "--non-interactive", "--cwd", "/srv/infra")
    assert cli.config_json().argv == ("pulumi", "config", "--json", *tail)
    assert cli.history(2, 100).argv == (
        "pulumi", "stack", "history", "--json", "--show-secrets=false", "--page-size", "100", "--page", "2", *tail
    )
    change = ops.ConfigEdit({"activeColor": ops.string_entry("green")}, ("greenBuild",))
    rm, set_all = cli.apply(change)
    assert rm.argv == ("pulumi", "config", "rm-all", "medusa-bluegreen:greenBuild", *tail)
    assert set_all.argv[:4] == ("pulumi", "config", "set-all", "--json")
    assert json.loads(set_all.argv[4]) == {"medusa-bluegreen:activeColor": {"value": "green", "secret": False}}
    assert not ops.PulumiCli("s").apply(ops.ConfigEdit())


def test_restore_edit_refuses_secrets() -> None:
    with pytest.raises(ops.OpsError, match="jwtSecret is a secret"):
        ops.restore_edit(stack_config(jwtSecret=SECRET), ["jwtSecret"])


def test_tail_shows_pulumis_diagnostics() -> None:
    assert FakePulumi.fail(FakePulumi({})).tail() == "Diagnostics:\n  error: health gate failed for green"
    assert ops.Result(1, "\n".join(str(i) for i in range(100))).tail(3) == "97\n98\n99"


# --- rollback: history from the real engine -------------------------------------------------


def test_history_json_shape_from_the_real_engine() -> None:
    raw = fixture("stack_history.json")
    newest = raw[0]
    assert set(newest) == {"version", "kind", "startTime", "message", "environment", "config", "result",
                           "endTime", "resourceChanges"}
    assert {e["version"] for e in raw} == {0}, "the file backend numbers no update"
    assert newest["config"][P + "jwtSecret"] == {"secret": True}
    assert newest["config"][P + "medusa"]["objectValue"] == {"storeCors": ["https://shop.example.com"]}
    built = raw[5]["config"][P + "blueBuild"]
    assert built == {"value": '{"context":"app"}', "objectValue": {"context": "app"}, "secret": False}


def test_history_parsing() -> None:
    current = ops.StackConfig.from_pulumi(fixture("stack_config.json"))
    entries = rollback.parse_history(fixture("stack_history.json"), current)
    assert [e.number for e in entries] == [9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert [(e.kind, e.result) for e in entries if not e.succeeded_update] == [("refresh", "succeeded"),
                                                                               ("update", "failed")]
    by_number = {e.number: e for e in entries}
    assert by_number[1].deployment == rollback.Deployment("blue", "reg/shop:1.0.0", None)
    assert by_number[2].deployment == rollback.Deployment("green", "reg/shop:1.0.0", "reg/shop:1.1.0")
    assert by_number[3].deployment == rollback.Deployment("blue", "reg/shop:1.2.0-broken", "reg/shop:1.1.0")
    # Update 4 built blue from app/; its tag comes from the pin recorded by update 5.
    assert by_number[4].deployment == rollback.Deployment("blue", "shop/app:src-74621e3645e90f325e1f", "reg/shop:1.1.0")
    assert by_number[5].deployment == rollback.Deployment("green", "shop/app:src-74621e3645e90f325e1f",
                                                          "reg/shop:1.3.0")
    assert "rollback.py: back to update 4" in by_number[9].message


def test_default_target_is_the_previous_different_deployment() -> None:
    entries = rollback.parse_history(fixture("stack_history.json"))
    current, target = rollback.choose_target(entries, None)
    assert (current.number, target.number) == (9, 8)
    # Skipping updates that left the same deployment: 5 and 8 are alike, 7 is blue again.
    older = [e for e in entries if e.number <= 8]
    assert rollback.choose_target(older, None)[1].number == 7
    assert rollback.choose_target(entries, 4)[1].number == 4
    assert rollback.choose_target(entries, "latest")[1].number == 9
    with pytest.raises(ops.OpsError, match=r"update 3 is not a successful update \(update, failed\)"):
        rollback.choose_target(entries, 3)
    with pytest.raises(ops.OpsError, match=r"\(refresh, succeeded\)"):
        rollback.choose_target(entries, 6)
    with pytest.raises(ops.OpsError, match="update 42 is not in the stack history"):
        rollback.choose_target(entries, 42)
    with pytest.raises(ops.OpsError, match="nothing to roll back to"):
        rollback.choose_target([e for e in entries if e.number == 1], None)


def test_a_build_without_a_recorded_pin_cannot_be_rolled_back_to() -> None:
    raw = fixture("stack_history.json")[5:]  # newest is update 4, the build; no newer entry
    entries = rollback.parse_history(raw)
    assert entries[0].deployment is None
    assert "blue was built from 'app'" in str(entries[0].problem)
    with pytest.raises(ops.OpsError, match="update 4: blue was built"):
        rollback.choose_target(entries, 4)
    # A pin that is not a built tag is not taken for one.
    manual = ops.StackConfig.from_pulumi(pulumi_config(activeColor="blue", blueImage="reg/shop:9"))
    assert rollback.parse_history(raw, manual)[0].deployment is None


def test_pulumi_cloud_version_numbers_are_used_when_present() -> None:
    raw = [dict(e, version=100 - i) for i, e in enumerate(fixture("stack_history.json"))]
    assert [e.number for e in rollback.parse_history(raw)][:3] == [100, 99, 98]


def test_plan_rollback_never_changes_the_live_colors_image() -> None:
    # green is live (built, pinned in history as src-2), blue is warm with reg/shop:1.
    config = stack_config(activeColor="green", greenBuild={"context": "app"}, blueImage="reg/shop:1", domain="x.io")
    live = rollback.Deployment("green", "reg/shop:1", "shop/app:src-2")

    # The target's live image is the warm one: a plain flip, both pinned.
    forward, undo = rollback.plan_rollback(config, live, rollback.Deployment("blue", "reg/shop:1", None))
    assert forward.describe() == ["activeColor = blue", "greenImage = shop/app:src-2", "greenBuild removed"]
    assert config.apply(forward).apply(undo) == config

    # An older image, on green in its own update: it goes to the idle color (blue), green stays warm.
    forward, _ = rollback.plan_rollback(config, live, rollback.Deployment("green", "reg/shop:0", "reg/shop:0"))
    assert forward.describe() == [
        "activeColor = blue", "blueImage = reg/shop:0", "greenImage = shop/app:src-2", "greenBuild removed",
    ]

    # Already serving the target's image: nothing flips.
    forward, _ = rollback.plan_rollback(config, live, rollback.Deployment("blue", "shop/app:src-2", None))
    assert forward.describe() == ["greenImage = shop/app:src-2", "greenBuild removed"]


def test_config_sync_copies_the_deployment_exactly() -> None:
    config = stack_config(activeColor="green", greenBuild={"context": "app"}, blueImage="reg/shop:2", domain="x.io")
    forward, undo = rollback.plan_config_sync(config, rollback.Deployment("blue", "reg/shop:1", None))
    assert forward.describe() == ["activeColor = blue", "blueImage = reg/shop:1", "greenBuild removed"]
    assert config.apply(forward).apply(undo) == config


def test_built_tag_prefix_matches_the_program() -> None:
    from core.naming import BUILD_TAG_PREFIX as TAG_PREFIX

    assert rollback.BUILT_TAG_PREFIX == TAG_PREFIX


# --- rollback: against the fake pulumi ------------------------------------------------------


def test_rollback_restores_the_previous_deployment_and_runs_up() -> None:
    fake = FakePulumi(production(), history=fixture("stack_history.json"))
    code, out, log = run_rollback(fake)
    assert code == 0, log
    assert fake.config[P + "activeColor"]["value"] == "green"
    assert fake.config[P + "greenImage"]["value"] == "reg/shop:1.3.0"
    assert "rolled back: stack production is at update 8's deployment" in out
    assert fake.subcommands() == ["config --json", "stack history", "config set-all", "up --yes", "stack output"]


def test_rollback_dry_run_and_config_only() -> None:
    fake = FakePulumi(production(), history=fixture("stack_history.json"))
    code, out, _ = run_rollback(fake, to=2, dry_run=True)
    assert code == 0 and fake.config == production()
    assert "#3 2026-11-22T07:00:18.000Z update failed" in out
    assert "would run: pulumi up --yes --skip-preview" in out
    code, out, _ = run_rollback(fake, to=2, config_only=True)
    assert code == 0 and fake.ups == 0
    assert {k: fake.config[P + k]["value"] for k in ("activeColor", "blueImage", "greenImage")} == {
        "activeColor": "green", "blueImage": "reg/shop:1.0.0", "greenImage": "reg/shop:1.1.0"}


def test_sync_to_latest_copies_the_live_deployment_into_a_fresh_checkout() -> None:
    fresh = pulumi_config(activeColor="blue", blueImage="reg/shop:1.0.0", domain="api.shop.example.com")
    fake = FakePulumi(fresh, history=fixture("stack_history.json"))
    assert run_rollback(fake, to="latest", config_only=True)[0] == 0
    live = rollback.parse_history(fixture("stack_history.json"))[0].deployment
    assert live is not None
    assert fake.config[P + "greenImage"]["value"] == live.green
    assert fake.config[P + "blueImage"]["value"] == live.blue
    never_updated = FakePulumi(fresh)
    code, _, log = run_rollback(never_updated, to="latest", config_only=True)
    assert code == 0 and never_updated.config == fresh and "no successful update yet" in log
    with pytest.raises(ops.OpsError, match="no successful update"):
        run_rollback(never_updated)


def test_history_is_read_page_by_page() -> None:
    one = fixture("stack_history.json")[0]
    history = [dict(one, startTime=f"t{i}") for i in range(250)]
    fake = FakePulumi(production(), history=history)
    entries = rollback.read_history(fake, ops.PulumiCli("production"), ops.StackConfig({}))
    assert len(entries) == 250 and entries[0].number == 250 and entries[-1].number == 1
    assert fake.subcommands() == ["stack history"] * 3


def test_failed_rollback_restores_the_config() -> None:
    fake = FakePulumi(production(), history=fixture("stack_history.json"), up=FakePulumi.fail)
    code, _, log = run_rollback(fake, to=2)
    assert code == 1 and fake.config == production()
    assert "config restored" in log
