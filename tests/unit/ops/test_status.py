"""ops/status.py: rendering from a real stack's recorded `pulumi` and `docker inspect` output
(tests/unit/ops/fixtures/: green live with v2, blue warm with v1)."""

from __future__ import annotations

import json
from typing import Any

from ops import status
from ops.docker_host import parse_inspect, stack_containers
from ops.environment import Target
from ops.history import parse_history
from ops.pulumi_cli import PulumiCli, Result, StackConfig
from tests.unit.ops.fakes import FakeDocker, FakePulumi, ops_fixture

TARGET = Target(stack="e2ecli")


def recorded(**changes: Any) -> status.Status:
    config = StackConfig.from_pulumi(ops_fixture("e2ecli_config.json"))
    outputs = {**ops_fixture("e2ecli_outputs.json"), **changes}
    history = parse_history(ops_fixture("e2ecli_history.json"), config)
    names = stack_containers("e2ecli")
    inspect = Result(1, json.dumps(ops_fixture("e2ecli_inspect.json")), "Error: No such container: e2ecli-blue-worker")
    states = parse_inspect(inspect, names.values())
    return status.build_status("e2ecli", config, outputs, history, {role: states[n] for role, n in names.items()})


def test_status_text_of_a_recorded_stack() -> None:
    lines = status.render_text(recorded(), TARGET)
    assert lines[:9] == [
        "stack e2ecli",
        "  live color: green   public URL: http://localhost:58180",
        "  blue  warm  image medusa-bg/testapp:v1 (sha256:9dad4fe64ed7)",
        "              server running, healthy; worker absent",
        "  green live  image medusa-bg/testapp:v2 (sha256:a39177017d2a)",
        "              server running, healthy; worker running, starting",
        "  router: running, healthy",
        "  last release: #2 succeeded at 2026-12-01T23:38:21.000Z: "
        "bluegreen release: green <- medusa-bg/testapp:v2, flip blue -> green",
        "  last backup: 20261201T233808Z-green-medusa-bg-testapp-v2.dump",
    ]
    commands = " ".join(" ".join(lines[9:]).split())
    assert commands.startswith("commands: flip to the warm blue: bin/bluegreen --stack e2ecli switch blue ")
    assert "live server logs: bin/bluegreen --stack e2ecli logs green server --tail 50" in commands
    assert "roll back to update 1 (plan only): bin/bluegreen --stack e2ecli rollback --dry-run" in commands


def test_status_json_of_a_recorded_stack() -> None:
    data = status.as_json(recorded())
    assert data["liveColor"] == "green" and data["activeColor"] == "green"
    assert data["colors"]["blue"] == {
        "live": False, "warm": True, "imageRef": "medusa-bg/testapp:v1",
        "imageId": "sha256:9dad4fe64ed77d066a717d2210d5e90a0f8b1525faf189c11cf7c11be322d7b4",
        "server": {"name": "e2ecli-blue-server", "state": "running", "health": "healthy",
                   "imageId": "sha256:9dad4fe64ed77d066a717d2210d5e90a0f8b1525faf189c11cf7c11be322d7b4"},
        "worker": {"name": "e2ecli-blue-worker", "state": None, "health": None, "imageId": None},
        "replicas": [],
    }
    assert data["lastUpdate"]["number"] == 2 and data["lastUpdate"]["result"] == "succeeded"
    assert data["backup"] == "20261201T233808Z-green-medusa-bg-testapp-v2.dump"
    assert data["dockerError"] is None
    json.dumps(data)  # serializable


def test_an_idle_color_whose_server_died_is_not_offered_as_a_switch() -> None:
    result = recorded()
    blue = result.colors["blue"]
    dead = status.ColorStatus("blue", False, blue.image_ref, blue.image_id,
                              status.ContainerState("e2ecli-blue-server", "exited"), blue.worker)
    result = status.Status(**{**result.__dict__, "colors": {**result.colors, "blue": dead}})
    lines = status.render_text(result, TARGET)
    assert "  blue  off   image medusa-bg/testapp:v1 (sha256:9dad4fe64ed7)" in lines
    assert not any("switch" in line for line in lines)


def test_a_docker_host_that_does_not_answer_is_reported_and_the_rest_still_shows() -> None:
    fake = FakePulumi(ops_fixture("e2ecli_config.json"), history=ops_fixture("e2ecli_history.json"),
                      outputs=ops_fixture("e2ecli_outputs.json"), docker=FakeDocker(answers=False), stack="e2ecli")
    code, text = status.status(fake, PulumiCli("e2ecli"), Target(stack="local"), machine=False)
    assert code == 1
    assert "server ?; worker ?" in text
    assert "docker: unix:///run/medusa-bg/docker.sock did not answer: the Docker host did not answer" in text
    assert "start the harness dockerd: harness/dockerd.sh start" in " ".join(text.split())
    assert "last release: #2 succeeded" in text
    assert sorted(fake.subcommands()[:3]) == ["config --json", "stack history", "stack output"]


def test_a_stack_never_deployed() -> None:
    config = StackConfig.from_pulumi(ops_fixture("e2ecli_config.json"))
    result = status.build_status("new", config, {}, [], None, "no answer")
    lines = status.render_text(result, Target(stack="new"))
    assert "  not deployed yet (no stack outputs): the first `pulumi up` creates it" in lines
    assert "  last release: none" in lines and "  last backup: none" in lines
    assert not any("rollback" in line or "switch" in line for line in lines), "neither would work"


def test_rollback_is_offered_only_when_there_is_an_earlier_deployment() -> None:
    config = StackConfig.from_pulumi(ops_fixture("e2ecli_config.json"))
    first_only = parse_history(ops_fixture("e2ecli_history.json")[1:], config)  # the first up alone
    result = status.build_status("e2ecli", config, ops_fixture("e2ecli_outputs.json"), first_only, None)
    assert result.rollback_to is None
    assert not any("rollback" in line for line in status.render_text(result, TARGET))


def test_a_failed_last_release_shows_the_last_good_one_too() -> None:
    history = ops_fixture("e2ecli_history.json")
    failed = [{**history[0], "result": "failed", "message": "bluegreen release: blue <- x:1"}, *history]
    config = StackConfig.from_pulumi(ops_fixture("e2ecli_config.json"))
    result = status.build_status("e2ecli", config, ops_fixture("e2ecli_outputs.json"), parse_history(failed),
                                 None)
    text = "\n".join(status.render_text(result, TARGET))
    assert "last release: #3 failed at" in text
    assert "last successful release: #2 succeeded at" in text


def test_config_and_reality_disagree() -> None:
    result = recorded(liveColor="blue")
    assert "  note: the config's activeColor is green; the next `pulumi up` makes it live" in status.render_text(
        result, TARGET)


def test_maintenance_left_on_is_shown_with_the_command_that_ends_it() -> None:
    config = StackConfig.from_pulumi(
        {**ops_fixture("e2ecli_config.json"),
         "medusa-bluegreen:maintenance": {"value": '{"enabled":true}', "objectValue": {"enabled": True},
                                          "secret": False}}
    )
    history = parse_history(ops_fixture("e2ecli_history.json"), config)
    result = status.build_status("e2ecli", config, ops_fixture("e2ecli_outputs.json"), history, None)
    lines = status.render_text(result, TARGET)
    assert any(line.endswith("; maintenance ON (the storefront answers 503)") for line in lines), lines
    assert "serve the storefront again: bin/bluegreen --stack e2ecli maintenance off" in " ".join(
        " ".join(lines).split())
    assert status.as_json(result)["maintenance"] is True
    assert status.as_json(recorded())["maintenance"] is False


def test_the_last_post_flip_analysis_is_shown_with_its_figures() -> None:
    verdict = {"healthy": True, "color": "green", "requests": 698, "server_errors": 0, "error_ratio": 0.0,
               "p95_seconds": 0.0042, "watched_seconds": 6.1, "reason": None}
    lines = status.render_text(recorded(postFlipAnalysis=verdict), TARGET)
    assert "  last post-flip analysis: passed, green: 698 live requests in 6.1 s, 5xx 0.0%, p95 0.004 s" in lines
    assert not any("post-flip analysis" in line for line in status.render_text(recorded(), TARGET))


def test_a_canary_step_is_shown_instead_of_a_pending_flip() -> None:
    lines = status.render_text(recorded(liveColor="blue", canary={"color": "green", "weight": 10}), TARGET)
    assert "  canary: green gets 10 % of the live route's clients (canary.weight); the rest stay on blue" in lines
    assert not any("note: the config's activeColor" in line for line in lines)


def test_server_replicas_that_exist_are_shown_beside_the_first() -> None:
    config = StackConfig.from_pulumi(ops_fixture("e2ecli_config.json"))
    history = parse_history(ops_fixture("e2ecli_history.json"), config)
    names = stack_containers("e2ecli")
    states = {role: status.ContainerState(name) for role, name in names.items()}
    states["green-server"] = status.ContainerState("e2ecli-green-server", "running", "healthy")
    states["green-server-2"] = status.ContainerState("e2ecli-green-server-2", "running", "starting")
    built = status.build_status("e2ecli", config, ops_fixture("e2ecli_outputs.json"), history, states)
    assert [r.name for r in built.colors["green"].replicas] == ["e2ecli-green-server-2"]
    assert built.colors["blue"].replicas == ()
    lines = status.render_text(built, TARGET)
    assert ("              server running, healthy, e2ecli-green-server-2 running, starting; worker absent"
            in lines)
    assert status.as_json(built)["colors"]["green"]["replicas"][0]["state"] == "running"
