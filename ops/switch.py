"""`bluegreen switch COLOR`: make the warm color live, as it is, in one `pulumi up`.

    bin/bluegreen switch green
    bin/bluegreen --stack production switch blue

Sets activeColor to COLOR and pins COLOR to the image it runs (stack output imageRefs), so the
warm server is reused: nothing is built or recreated, the usual health gate proves it and the
router flips (no reload). Refused, with the reason and what to run instead, when COLOR is
not warm: it has no image, or its server container is not running (otherColor=stopped removed
it, or it died) or is unhealthy. A failed `pulumi up` puts the config back exactly.

Exit codes: as `release`: 0 switched (or already live), 1 `pulumi up` failed (config
restored), 2 refused or a config problem, 3 the config could not be restored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from core.naming import Color, other_color
from ops.docker_host import ContainerState, DockerHost, container_name, parse_inspect
from ops.environment import Target
from ops.pulumi_cli import (
    DONE,
    ConfigChange,
    Entry,
    OpsError,
    PulumiCli,
    Runner,
    StackConfig,
    apply_and_up,
    describe_outputs,
    image_refs,
    pin_if_built,
    pin_values,
    read_config,
    read_outputs,
    string_entry,
)
from ops.release import rollback_hint

WHO = "bluegreen switch"


class NotWarmError(OpsError):
    pass


@dataclass(frozen=True)
class SwitchPlan:
    live: Color  # live now (stack output liveColor)
    target: Color
    change: ConfigChange
    message: str


def plan_switch(config: StackConfig, outputs: Mapping[str, Any], server: ContainerState, color: Color,
                target: Target) -> SwitchPlan | None:
    """The change that makes the warm `color` live; None when it already is. `server`: its
    server container on the Docker host."""
    live = outputs.get("liveColor")
    if live not in ("blue", "green"):
        raise NotWarmError(f"stack {target.stack} has not been deployed yet (no liveColor output): nothing to switch")
    if live == color and config.active_color() == color:
        return None
    ref = image_refs(outputs)[color]
    if ref is None:
        raise NotWarmError(
            f"{color} has no image on stack {target.stack}, so there is nothing warm to switch to; "
            f"release an image to it instead (see `{target.command('release', '--help')}`)"
        )
    if not server.running:
        why = (f"is {server.status} (stopped, or it died)" if server.exists
               else "does not exist (otherColor=stopped removes the idle server after a flip)")
        raise NotWarmError(
            f"{color} is not warm: its server container {server.name} {why}, so a switch would not be "
            f"instant. To serve {ref} again, roll back to it: `{target.command('rollback', '--dry-run')}` "
            "shows the plan"
        )
    if server.health == "unhealthy":
        raise NotWarmError(
            f"{color} is not warm: its server container {server.name} is unhealthy; "
            f"see why: `{target.command('logs', color, 'server', '--tail', '100')}`"
        )
    previous = other_color(color)
    values: dict[str, Entry | None] = {"activeColor": string_entry(color), **pin_values(color, ref)}
    values.update(pin_if_built(config, previous, image_refs(outputs)))
    return SwitchPlan(
        live=previous,
        target=color,
        change=ConfigChange.of(config, values),
        message=f"{WHO}: make {color} live ({ref}, warm)",
    )


def switch(runner: Runner, cli: PulumiCli, target: Target, color: Color, out: TextIO, log: TextIO) -> int:
    config = read_config(runner, cli)
    outputs = read_outputs(runner, cli)
    server_name = container_name(config.prefix(), color, "server")
    server = parse_inspect(runner.run(DockerHost(config.docker_host()).inspect([server_name])), [server_name])
    plan = plan_switch(config, outputs, server[server_name], color, target)
    if plan is None:
        print(f"{color} is already live on stack {cli.stack}; nothing to do", file=out)
        return 0

    print(f"{WHO}: stack {cli.stack}: {plan.live} is live; flipping to the warm {plan.target}", file=log)
    code = apply_and_up(runner, cli, plan.change, cli.up(plan.message), log, WHO, still_live=plan.live)
    if code != DONE:
        return code
    print(f"switched: {plan.target} is live on stack {cli.stack} (was {plan.live})", file=out)
    try:
        for line in describe_outputs(read_outputs(runner, cli)):
            print(f"  {line}", file=out)
    except OpsError as error:
        print(f"{WHO}: warning: {error}", file=log)
    print(rollback_hint(config, plan.live, target), file=out)
    return 0
