"""`bluegreen status`: what is live, what each color runs and how its containers are, the last
release and the last backup.

    bin/bluegreen status              human text
    bin/bluegreen status --json       the same, for machines

From `pulumi config --json` (activeColor, prefix, dockerHost), `pulumi stack output --json`
(liveColor, imageRefs, images, publicUrl, backup), `pulumi stack history --json` (the last
update) and `docker inspect` of the colors' and the router's containers on the stack's Docker
host. A Docker host that does not answer is reported, not fatal: the rest still prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from core.naming import COLORS, Color, other_color
from ops.docker_host import ContainerState, DockerHost, parse_inspect, stack_containers
from ops.environment import Target
from ops.history import HistoryEntry, last_update, parse_history, read_raw_history
from ops.pulumi_cli import (
    MAINTENANCE_KEY,
    OpsError,
    PulumiCli,
    Runner,
    StackConfig,
    describe_analysis,
    image_ids,
    image_refs,
    read_config,
    read_outputs,
)
from ops.rollback import choose_target


@dataclass(frozen=True)
class ColorStatus:
    color: Color
    live: bool
    image_ref: str | None  # stack output imageRefs
    image_id: str | None  # stack output images
    server: ContainerState | None  # None: the Docker host did not answer
    worker: ContainerState | None
    replicas: tuple[ContainerState, ...] = ()  # the server replicas past the first that exist

    @property
    def warm(self) -> bool:
        """Its server runs (and is not unhealthy) an image the state knows: a flip is instant."""
        return bool(self.image_ref and self.server and self.server.running and self.server.health != "unhealthy")


@dataclass(frozen=True)
class Status:
    stack: str
    active_color: Color | None  # the config's activeColor
    live_color: str | None  # stack output liveColor: what the last update made live
    public_url: str | None
    backup: str | None
    colors: Mapping[Color, ColorStatus]
    router: ContainerState | None
    docker_host: str
    docker_error: str | None
    last_update: HistoryEntry | None
    last_success: HistoryEntry | None
    rollback_to: HistoryEntry | None  # what `rollback` (no N) would go back to; None: nothing
    maintenance: bool = False  # the config's maintenance.enabled
    analysis: Mapping[str, Any] | None = None  # stack output postFlipAnalysis: the last verdict
    canary: Mapping[str, Any] | None = None  # stack output canary: {color, weight} during a canary step

    @property
    def deployed(self) -> bool:
        return self.live_color is not None


# --- pure logic -----------------------------------------------------------------------------


def build_status(stack: str, config: StackConfig, outputs: Mapping[str, Any], history: Sequence[HistoryEntry],
                 containers: Mapping[str, ContainerState] | None, docker_error: str | None = None) -> Status:
    """`containers`: role (`blue-server`, ..., `router`) -> state; None when Docker did not answer."""
    refs, ids = image_refs(outputs), image_ids(outputs)
    live = outputs.get("liveColor") if isinstance(outputs.get("liveColor"), str) else None
    colors = {
        color: ColorStatus(
            color=color,
            live=color == live,
            image_ref=refs[color],
            image_id=ids[color],
            server=containers[f"{color}-server"] if containers is not None else None,
            worker=containers[f"{color}-worker"] if containers is not None else None,
            replicas=_replicas(containers, color),
        )
        for color in COLORS
    }
    try:
        active: Color | None = config.active_color()
    except OpsError:
        active = None
    try:
        rollback_to: HistoryEntry | None = choose_target(history, None)[1]
    except OpsError:
        rollback_to = None
    backup = outputs.get("backup")
    url = outputs.get("publicUrl")
    analysis, canary = outputs.get("postFlipAnalysis"), outputs.get("canary")
    return Status(
        stack=stack,
        active_color=active,
        live_color=live,
        public_url=url if isinstance(url, str) else None,
        backup=backup if isinstance(backup, str) and backup else None,
        colors=colors,
        router=containers["router"] if containers is not None else None,
        docker_host=config.docker_host(),
        docker_error=docker_error,
        last_update=last_update(history),
        last_success=last_update(history, succeeded=True),
        rollback_to=rollback_to,
        maintenance=bool((config.object(MAINTENANCE_KEY) or {}).get("enabled", False)),
        analysis=analysis if isinstance(analysis, Mapping) else None,
        canary=canary if isinstance(canary, Mapping) else None,
    )


def _replicas(containers: Mapping[str, ContainerState] | None, color: Color) -> tuple[ContainerState, ...]:
    if containers is None:
        return ()
    return tuple(
        state for role, state in containers.items() if role.startswith(f"{color}-server-") and state.exists
    )


def _update(entry: HistoryEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"number": entry.number, "startTime": entry.start_time, "endTime": entry.end_time,
            "result": entry.result, "message": entry.message}


def as_json(status: Status) -> dict[str, Any]:
    def container(state: ContainerState | None) -> dict[str, Any] | None:
        return state.as_json() if state is not None else None

    return {
        "stack": status.stack,
        "liveColor": status.live_color,
        "activeColor": status.active_color,
        "publicUrl": status.public_url,
        "colors": {
            color: {
                "live": c.live,
                "warm": c.warm,
                "imageRef": c.image_ref,
                "imageId": c.image_id,
                "server": container(c.server),
                "worker": container(c.worker),
                "replicas": [replica.as_json() for replica in c.replicas],
            }
            for color, c in status.colors.items()
        },
        "router": container(status.router),
        "dockerHost": status.docker_host,
        "dockerError": status.docker_error,
        "lastUpdate": _update(status.last_update),
        "lastSuccessfulUpdate": _update(status.last_success),
        "backup": status.backup,
        "maintenance": status.maintenance,
        "canary": dict(status.canary) if status.canary is not None else None,
        "postFlipAnalysis": dict(status.analysis) if status.analysis is not None else None,
    }


def _state(state: ContainerState | None) -> str:
    return state.describe() if state is not None else "?"


def _describe_update(entry: HistoryEntry) -> str:
    message = f": {entry.message}" if entry.message else ""
    return f"#{entry.number} {entry.result} at {entry.end_time or entry.start_time}{message}"


def render_text(status: Status, target: Target) -> list[str]:
    lines = [f"stack {status.stack}"]
    if not status.deployed:
        lines.append("  not deployed yet (no stack outputs): the first `pulumi up` creates it")
    else:
        lines.append(f"  live color: {status.live_color}"
                     + (f"   public URL: {status.public_url}" if status.public_url else ""))
    if status.canary is not None:
        lines.append(f"  canary: {status.canary.get('color')} gets {status.canary.get('weight')} % of the live "
                     f"route's clients (canary.weight); the rest stay on {status.live_color}")
    elif status.active_color and status.deployed and status.active_color != status.live_color:
        lines.append(f"  note: the config's activeColor is {status.active_color}; the next `pulumi up` makes it live")
    for c in status.colors.values():
        role = "live" if c.live else ("warm" if c.warm else "off")
        image = c.image_ref or "-"
        image_id = f" ({c.image_id[:19]})" if c.image_id else ""
        lines.append(f"  {c.color:<5} {role:<4}  image {image}{image_id}")
        more = "".join(f", {r.name} {r.describe()}" for r in c.replicas)
        lines.append(f"              server {_state(c.server)}{more}; worker {_state(c.worker)}")
    lines.append(f"  router: {_state(status.router)}"
                 + ("; maintenance ON (the storefront answers 503)" if status.maintenance else ""))
    if status.docker_error:
        lines.append(f"  docker: {status.docker_host} did not answer: {status.docker_error}")
    if status.last_update is None:
        lines.append("  last release: none")
    else:
        lines.append(f"  last release: {_describe_update(status.last_update)}")
        if status.last_success is not None and status.last_success is not status.last_update:
            lines.append(f"  last successful release: {_describe_update(status.last_success)}")
    if status.analysis is not None:
        lines.append(f"  last post-flip analysis: {describe_analysis(status.analysis)}")
    lines.append(f"  last backup: {status.backup or 'none'}")
    lines.extend(next_commands(status, target))
    return lines


def next_commands(status: Status, target: Target) -> list[str]:
    """Commands that apply now, each working exactly as printed."""
    commands: list[tuple[str, str]] = []
    if status.docker_error and target.local:
        commands.append(("start the harness dockerd", f"{target.repo_path('harness/dockerd.sh')} start"))
    if status.live_color in COLORS:
        live: Color = "green" if status.live_color == "green" else "blue"
        idle = other_color(live)
        if status.colors[idle].warm:
            commands.append((f"flip to the warm {idle}", target.command("switch", idle)))
        commands.append(("live server logs", target.command("logs", live, "server", "--tail", "50")))
    if status.maintenance:
        commands.append(("serve the storefront again", target.command("maintenance", "off")))
    if status.rollback_to is not None:
        commands.append((f"roll back to update {status.rollback_to.number} (plan only)",
                         target.command("rollback", "--dry-run")))
    commands.append(("check the host", target.command("doctor")))
    width = max(len(what) for what, _ in commands)
    return ["commands:", *(f"  {what + ':':<{width + 1}} {command}" for what, command in commands)]


# --- running it -----------------------------------------------------------------------------


def read_containers(runner: Runner, docker: DockerHost, prefix: str) -> dict[str, ContainerState]:
    """Role -> container state (raises OpsError when the Docker host does not answer)."""
    names = stack_containers(prefix)
    states = parse_inspect(runner.run(docker.inspect(names.values())), names.values())
    return {role: states[name] for role, name in names.items()}


def gather(runner: Runner, cli: PulumiCli) -> Status:
    # The three reads are independent, and each is a `pulumi` start (about half a second).
    with ThreadPoolExecutor(max_workers=3) as pool:
        config_read = pool.submit(read_config, runner, cli)
        outputs_read = pool.submit(read_outputs, runner, cli)
        history_read = pool.submit(read_raw_history, runner, cli)
        config, outputs = config_read.result(), outputs_read.result()
        history = parse_history(history_read.result(), config)
    containers: dict[str, ContainerState] | None = None
    error = None
    try:
        containers = read_containers(runner, DockerHost(config.docker_host()), config.prefix())
    except OpsError as problem:
        error = str(problem)
    return build_status(cli.stack, config, outputs, history, containers, error)


def status(runner: Runner, cli: PulumiCli, target: Target, machine: bool) -> tuple[int, str]:
    """(exit code, what to print). Exit 1 when the Docker host did not answer."""
    result = gather(runner, cli)
    text = json.dumps(as_json(result), indent=2) if machine else "\n".join(render_text(result, target))
    return (1 if result.docker_error else 0), text
