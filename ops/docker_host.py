"""The stack's Docker host (its `dockerHost` config value): docker command lines and what they print.

`DockerHost` builds commands and runs nothing; every one names the host with `--host`, so a
command works the same printed or run, for unix://, ssh:// and tcp:// hosts. The parsers turn
`docker inspect` / `docker ps` output into plain data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core import naming
from core.naming import Color
from ops.pulumi_cli import Command, OpsError, Result


@dataclass(frozen=True)
class DockerHost:
    url: str
    binary: str = "docker"

    def _command(self, *args: str, attach: bool = False) -> Command:
        return Command((self.binary, "--host", self.url, *args), attach=attach)

    def inspect(self, names: Iterable[str]) -> Command:
        return self._command("inspect", "--type", "container", *names)

    def logs(self, name: str, follow: bool, tail: int | None) -> Command:
        flags = [*(["--follow"] if follow else []), *(["--tail", str(tail)] if tail is not None else [])]
        return self._command("logs", *flags, name, attach=True)

    def exec_attached(self, name: str, *argv: str) -> Command:
        """`docker exec` with its output on the terminal (an operator watches it run)."""
        return self._command("exec", name, *argv, attach=True)

    def server_version(self) -> Command:
        return self._command("version", "--format", "{{.Server.Version}}")

    def data_root(self) -> Command:
        return self._command("info", "--format", "{{.DockerRootDir}}")

    def published_ports(self) -> Command:
        return self._command("ps", "--format", "{{.Names}}\t{{.Ports}}")

    def network_inspect(self, name: str) -> Command:
        return self._command("network", "inspect", name)

    def exec(self, container: str, *argv: str) -> Command:
        return self._command("exec", container, *argv)

    def ps_all(self, prefix: str) -> Command:
        return self._command("ps", "--all", "--no-trunc", "--filter", f"name=^{prefix}-",
                             "--format", "{{.Names}} {{.ID}}")

    def rm(self, names: Iterable[str]) -> Command:
        return self._command("rm", "--force", *names)


# --- containers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerState:
    name: str
    status: str | None = None  # created, running, restarting, exited, ...; None: no such container
    health: str | None = None  # starting, healthy, unhealthy; None: no healthcheck
    image_id: str | None = None  # the image the container runs
    image_label: str | None = None  # the ref the program created it from (label medusa-bluegreen.image)

    @property
    def exists(self) -> bool:
        return self.status is not None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def describe(self) -> str:
        if not self.exists:
            return "absent"
        return f"{self.status}, {self.health}" if self.health else self.status or "?"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.status, "health": self.health, "imageId": self.image_id}

    @classmethod
    def from_inspect(cls, item: Mapping[str, Any]) -> ContainerState:
        state = item.get("State") or {}
        health = state.get("Health") or {}
        labels = (item.get("Config") or {}).get("Labels") or {}
        return cls(
            name=str(item.get("Name", "")).lstrip("/"),
            status=state.get("Status"),
            health=health.get("Status") or None,
            image_id=item.get("Image"),
            image_label=labels.get("medusa-bluegreen.image"),
        )


def parse_inspect(result: Result, names: Iterable[str]) -> dict[str, ContainerState]:
    """`docker inspect --type container NAMES`: every name, absent ones as absent.

    docker prints the containers it found and exits 1 when any is missing, so the output
    counts, not the exit code; no JSON at all means the host did not answer.
    """
    try:
        data = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, list):
        raise OpsError(f"the Docker host did not answer `docker inspect` (exit {result.returncode}): "
                       f"{result.stderr.strip() or result.stdout.strip()}")
    found = {state.name: state for state in (ContainerState.from_inspect(item) for item in data)}
    return {name: found.get(name, ContainerState(name)) for name in names}


def stack_containers(prefix: str) -> dict[str, str]:
    """Role (`blue-server`, ..., `router`) -> container name, from core.naming."""
    names = {f"{color}-{role}": (naming.server_container(prefix, color) if role == "server"
                                 else naming.worker_container(prefix, color))
             for color in naming.COLORS for role in ("server", "worker")}
    # Replicas past the first (rule 7b), under every name one can have: the settings say how many
    # there should be, only Docker says how many there are.
    for color in naming.COLORS:
        for replica, name in enumerate(naming.all_server_containers(prefix, color)[1:], start=2):
            names[f"{color}-server-{replica}"] = name
    names["router"] = naming.router_container(prefix)
    return names


def container_name(prefix: str, color: Color, role: str) -> str:
    return naming.server_container(prefix, color) if role == "server" else naming.worker_container(prefix, color)


# --- published ports ------------------------------------------------------------------------

_PUBLISHED = re.compile(r"(\S*):(\d+)->\d+/(?:tcp|udp)")
WILDCARDS = ("", "0.0.0.0", "::", "[::]")


@dataclass(frozen=True)
class Published:
    container: str
    address: str
    port: int


def parse_published(output: str) -> list[Published]:
    """`docker ps --format '{{.Names}}\\t{{.Ports}}'` -> every host address:port a container holds."""
    held = []
    for line in output.splitlines():
        name, _, ports = line.partition("\t")
        for address, port in _PUBLISHED.findall(ports):
            held.append(Published(name.strip(), address, int(port)))
    return held


def overlaps(a: str, b: str) -> bool:
    """Do two bind addresses collide for one port (a wildcard collides with every address)?"""
    return a in WILDCARDS or b in WILDCARDS or a == b
