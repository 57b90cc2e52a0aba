"""The router's control protocol: the command lines that drive nginx/bluegreen-router.sh inside
the router container, and the typed reading of what the script prints back.

One module owns both halves so the text the script prints is parsed next to the argv that asked
for it, and nothing outside reads that text. A flip is a `switch`: it names what it replaced,
which is all the undo needs (`SwitchResult.undo`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.naming import COLORS, Color
from core.router_config import SCRIPT_PATH

Route = Literal["live", "preview"]
ROUTES: tuple[Route, Route] = ("live", "preview")

# What `bluegreen-router.sh switch` prints on success (one line).
_SWITCHED = re.compile(r"^route=(?P<route>\S+) previous=(?P<previous>\S*) current=(?P<current>\S+)$", re.MULTILINE)


class RouterProtocolError(ValueError):
    """The control script printed something this module does not understand."""


def _join(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def switch_argv(router: str, route: Route, color: Color) -> list[str]:
    return ["docker", "exec", router, "sh", SCRIPT_PATH, "switch", route, color]


def switch_command(router: str, route: Route, color: Color) -> str:
    return _join(switch_argv(router, route, color))


def apply_command(router: str) -> str:
    # The rendered config arrives on stdin.
    return _join(["docker", "exec", "-i", router, "sh", SCRIPT_PATH, "apply"])


def install_script_command(router: str) -> str:
    # The control script arrives on stdin; it is renamed into place so a half-written copy
    # is never run.
    folder = SCRIPT_PATH.rsplit("/", 1)[0]
    install = f"mkdir -p {folder} && cat > {SCRIPT_PATH}.new && mv -f {SCRIPT_PATH}.new {SCRIPT_PATH}"
    return _join(["docker", "exec", "-i", router, "sh", "-c", install])


def _color(value: str, what: str) -> Color:
    for color in COLORS:
        if value == color:
            return color
    raise RouterProtocolError(f"the router's switch reported {what} {value!r}; expected blue or green")


def _route(value: str) -> Route:
    for route in ROUTES:
        if value == route:
            return route
    raise RouterProtocolError(f"the router's switch reported route {value!r}; expected live or preview")


@dataclass(frozen=True)
class UndoCommand:
    """A command line that puts a route back; run with the docker CLI's environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def as_input(self) -> dict[str, object]:
        # The shape the health gate's provider receives (plain values survive the engine's
        # serialization; a dataclass would not).
        return {"argv": list(self.argv), "env": dict(self.env)}


@dataclass(frozen=True)
class SwitchResult:
    route: Route
    previous: Color
    current: Color

    def undo(self, router: str, docker_host: str) -> UndoCommand | None:
        """How to put the route back on the color it replaced; None if nothing changed."""
        if self.previous == self.current:
            return None
        return UndoCommand(tuple(switch_argv(router, self.route, self.previous)), {"DOCKER_HOST": docker_host})


def parse_switch(stdout: str) -> SwitchResult:
    """Reads `route=live previous=blue current=green`. A first flip reports the default color
    (blue) as previous, because with no state file the route already served blue."""
    match = _SWITCHED.search(stdout)
    if match is None:
        raise RouterProtocolError(f"the router's switch printed no 'route= previous= current=' line: {stdout!r}")
    return SwitchResult(
        route=_route(match["route"]),
        previous=_color(match["previous"], "previous color"),
        current=_color(match["current"], "current color"),
    )
