"""ops/pulumi_cli.py: command lines, config edits and their exact undo, the shared
change-then-up-or-restore of release, switch and rollback."""

from __future__ import annotations

import io
import json

import pytest

from ops import pulumi_cli as ops
from tests.unit.ops.fakes import SECRET, FakePulumi, P, fixture, pulumi_config, stack_config


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
    assert "--show-secrets" not in " ".join(cli.config_json().argv), "config is never read with its secrets"


def test_restore_edit_refuses_secrets() -> None:
    with pytest.raises(ops.OpsError, match="jwtSecret is a secret"):
        ops.restore_edit(stack_config(jwtSecret=SECRET), ["jwtSecret"])


def test_a_change_only_touches_release_keys() -> None:
    config = stack_config(activeColor="blue", domain="d.io")
    with pytest.raises(AssertionError):
        ops.ConfigChange.of(config, {"domain": ops.string_entry("e.io")})


def test_tail_shows_pulumis_diagnostics() -> None:
    assert FakePulumi.fail(FakePulumi({})).tail() == "Diagnostics:\n  error: health gate failed for green"
    assert ops.Result(1, "\n".join(str(i) for i in range(100))).tail(3) == "97\n98\n99"


def test_defaults_of_prefix_and_docker_host_are_the_programs() -> None:
    from core.settings import Settings

    empty = stack_config()
    assert empty.prefix() == Settings.model_fields["prefix"].default
    assert empty.docker_host() == Settings.model_fields["docker_host"].default
    assert stack_config(prefix="shop", dockerHost="ssh://d@h").docker_host() == "ssh://d@h"


def _change(config: dict[str, object]) -> ops.ConfigChange:
    return ops.ConfigChange.of(ops.StackConfig.from_pulumi(config), {"activeColor": ops.string_entry("green")})


def test_apply_and_up_restores_the_config_when_the_up_fails() -> None:
    start = pulumi_config(activeColor="blue", blueImage="a/b:1", greenImage="a/b:2")
    fake = FakePulumi(start, up=FakePulumi.fail)
    log = io.StringIO()
    code = ops.apply_and_up(fake, ops.PulumiCli("production"), _change(start), ops.PulumiCli("production").up("m"),
                            log, "who", still_live="blue")
    assert code == ops.UP_FAILED and fake.config == start
    assert "who: blue is still live; config restored. Last lines of pulumi up:" in log.getvalue()
    assert "error: health gate failed for green" in log.getvalue()


def test_apply_and_up_lists_the_keys_when_the_restore_fails_too() -> None:
    start = pulumi_config(activeColor="blue", blueImage="a/b:1", greenImage="a/b:2")
    fake = FakePulumi(start, up=FakePulumi.fail)
    fake.fail_set_all_after_up = True
    log = io.StringIO()
    code = ops.apply_and_up(fake, ops.PulumiCli("production"), _change(start), ops.PulumiCli("production").up("m"),
                            log, "who")
    assert code == ops.RESTORE_FAILED
    assert "restore these keys by hand:\n  activeColor = blue" in log.getvalue()
    assert fake.config[P + "activeColor"]["value"] == "green"


def test_apply_and_up_without_an_up_only_edits() -> None:
    start = fixture("stack_config.json")
    fake = FakePulumi(start)
    assert ops.apply_and_up(fake, ops.PulumiCli("production"), _change(start), None, io.StringIO(), "who") == ops.DONE
    assert fake.ups == 0 and fake.config[P + "activeColor"]["value"] == "green"


def test_describe_outputs() -> None:
    lines = ops.describe_outputs(fixture("stack_outputs.json"))
    assert lines[0] == "live color: blue"
    assert lines[1].startswith("blue (live): shop/app:src-74621e3645e90f325e1f (sha256:2873")
    assert lines[-1] == "public URL: https://api.shop.example.com"
    assert "[secret]" not in "\n".join(lines)


def test_describe_outputs_names_a_failed_verdict_and_why() -> None:
    verdict = {"healthy": False, "color": "green", "requests": 240, "server_errors": 24, "error_ratio": 0.1,
               "p95_seconds": None, "watched_seconds": 2.4, "reason": "24 of 240 answered 5xx (10.0% > 5.0%)"}
    lines = ops.describe_outputs({**fixture("stack_outputs.json"), "postFlipAnalysis": verdict})
    assert lines[-1] == (
        "post-flip analysis: failed, green: 240 live requests in 2.4 s, 5xx 10.0%, p95 - "
        "(24 of 240 answered 5xx (10.0% > 5.0%))"
    )
