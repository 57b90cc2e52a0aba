"""ops/environment.py: what the local and a named stack's commands run in, and printed commands
that work as printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import environment
from ops.environment import Target
from ops.pulumi_cli import Command, OpsError, Result

REPO = environment.REPO


def no_pulumi(name: str, path: str | None) -> str | None:
    return None


def test_the_local_stack_gets_what_make_up_sets() -> None:
    plan = environment.plan_environment(Target(), {"PATH": "/usr/bin"}, start_docker=False, which=no_pulumi)
    assert plan.set == {"PULUMI_BACKEND_URL": f"file://{REPO}/.state",
                        "PULUMI_CONFIG_PASSPHRASE": "local-stack-passphrase"}
    assert plan.script == (f'eval "$({REPO}/scripts/engine/bootstrap.sh --print-env)" && '
                           f'eval "$({REPO}/harness/dockerd.sh env)" && env -0')
    started = environment.plan_environment(Target(), {"PULUMI_CONFIG_PASSPHRASE": "mine"}, start_docker=True,
                                           which=no_pulumi)
    assert f"{REPO}/harness/dockerd.sh start >&2 && " in str(started.script)
    assert started.set["PULUMI_CONFIG_PASSPHRASE"] == "mine"


def test_a_named_stack_uses_the_callers_environment_and_pulumi() -> None:
    named = Target(stack="production")
    on_path = environment.plan_environment(named, {"PATH": "/opt/pulumi/bin"}, False,
                                           which=lambda name, path: f"{path}/{name}")
    assert on_path == environment.EnvPlan() and on_path.command() is None
    built = environment.plan_environment(named, {}, False, which=no_pulumi, engine_built=True)
    assert built.set == {} and built.script == f'eval "$({REPO}/scripts/engine/bootstrap.sh --print-env)" && env -0'
    with pytest.raises(OpsError, match="the pulumi CLI is not on PATH and this repo's engine is not built"):
        environment.plan_environment(named, {}, False, which=no_pulumi)


def test_engine_dirs_are_found_by_the_pins(tmp_path: Path) -> None:
    requirements = "pulumi==3.259.0\npulumi-docker==5.2.0\npulumi-command==1.2.1\npulumi-random==4.21.4\n"
    done = tmp_path / "engine/pulumi-3.259.0_docker-5.2.0_command-1.2.1_random-4.21.4_r1"
    done.mkdir(parents=True)
    (tmp_path / "engine/pulumi-3.258.0_docker-5.2.0_command-1.2.1_random-4.21.4_r1").mkdir()
    assert environment.engine_dirs(tmp_path, requirements) == []
    (done / ".complete").write_text("key=...")
    assert environment.engine_dirs(tmp_path, requirements) == [done]


def test_env0_output_is_parsed_with_newlines_in_values() -> None:
    assert environment.parse_env0("A=1\0B=two\nlines\0C=x=y\0\0") == {"A": "1", "B": "two\nlines", "C": "x=y"}


def test_resolving_runs_the_plan_and_takes_its_environment(tmp_path: Path) -> None:
    ran: list[tuple[Command, dict[str, str]]] = []

    class Runner:
        def __init__(self, env: dict[str, str]) -> None:
            self.env = env

        def run(self, command: Command) -> Result:
            ran.append((command, self.env))
            return Result(0, "PATH=/engine/bin:/usr/bin\0DOCKER_HOST=unix:///run/medusa-bg/docker.sock\0")

    target = Target(repo=tmp_path)
    (tmp_path / "requirements.txt").write_text("pulumi==3.259.0\n")
    env = environment.resolve_environment(target, {"HOME": str(tmp_path)}, Runner, start_docker=False)
    assert env == {"PATH": "/engine/bin:/usr/bin", "DOCKER_HOST": "unix:///run/medusa-bg/docker.sock"}
    assert ran[0][1]["PULUMI_BACKEND_URL"] == f"file://{tmp_path}/.state"
    assert (tmp_path / ".state").is_dir(), "as scripts/dev/up.sh does"


def test_printed_commands_work_as_printed() -> None:
    assert Target().command("switch", "green") == "bin/bluegreen switch green"
    other = Target(stack="production", project_dir=Path("/srv/my infra"), prog="/opt/bg/bin/bluegreen")
    assert other.command("logs", "blue", "server") == (
        "/opt/bg/bin/bluegreen --stack production --cwd '/srv/my infra' logs blue server")
    pulumi = Command(("pulumi", "up", "--yes", "--stack", "production"))
    assert other.pulumi_command(pulumi).endswith("pulumi up --yes --stack production")
    assert Target(caller=REPO).repo_path("harness/dockerd.sh") == "harness/dockerd.sh"
    assert Target(caller=REPO / "ops").repo_path("harness/dockerd.sh") == f"{REPO}/harness/dockerd.sh"
    assert Target(caller=REPO).make("up") == "make up"
    assert Target(caller=Path("/")).make("up") == f"make -C {str(REPO).lstrip('/')} up"
