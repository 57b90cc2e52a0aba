"""`bluegreen logs COLOR server|worker`: the container's log, from the stack's Docker host.

    bin/bluegreen logs blue server --tail 100
    bin/bluegreen --stack production logs green worker --follow

`docker --host <dockerHost> logs [--follow] [--tail N] <prefix>-<color>-<role>`, attached to
the terminal. A container that does not exist is named, with why it may be missing (the idle
color has no worker; otherColor=stopped removes the idle server).
"""

from __future__ import annotations

from typing import Literal

from core.naming import Color
from ops.docker_host import ContainerState, DockerHost, container_name, parse_inspect
from ops.environment import Target
from ops.pulumi_cli import Command, OpsError, PulumiCli, Runner, read_config

Role = Literal["server", "worker"]
ROLES: tuple[Role, Role] = ("server", "worker")


def plan_logs(docker: DockerHost, state: ContainerState, color: Color, role: Role, follow: bool, tail: int | None,
              target: Target) -> Command:
    if not state.exists:
        why = ("only the live color runs a worker" if role == "worker"
               else "the idle server is removed when otherColor is stopped")
        raise OpsError(f"{color}'s {role} container {state.name} does not exist on {docker.url} ({why}); "
                       f"see what runs: `{target.command('status')}`")
    return docker.logs(state.name, follow, tail)


def logs(runner: Runner, cli: PulumiCli, target: Target, color: Color, role: Role, follow: bool,
         tail: int | None) -> int:
    config = read_config(runner, cli)
    docker = DockerHost(config.docker_host())
    name = container_name(config.prefix(), color, role)
    state = parse_inspect(runner.run(docker.inspect([name])), [name])[name]
    return runner.run(plan_logs(docker, state, color, role, follow, tail, target)).returncode
