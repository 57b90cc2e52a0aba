"""The router's control protocol: the command lines that drive nginx/bluegreen-router.sh inside
the router container, and the typed reading of what the script prints back.

One module owns both halves so the text the script prints is parsed next to the argv that asked
for it, and nothing outside reads that text. A flip is a `switch`: it names what it replaced,
which is all the undo needs (`SwitchResult.undo`). A probe is one HTTP request made by curl
inside the router container, so the health gate needs no published port and no token on a
network (rule 6b): `probe_argv` builds it, `parse_probe` reads it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.naming import COLORS, Color
from core.router_config import (
    COLOR_HEADER,
    EXPORTER_PATH,
    HTTP_PORT,
    HTTPS_PORT,
    LATENCY_BUCKETS_SECONDS,
    LOOPBACK,
    METRICS_EXPORTER_PORT,
    METRICS_LOG_PORT,
    METRICS_PATH,
    PROBE_PORT,
    SCRIPT_PATH,
)

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


def canary_argv(router: str, percent: int) -> list[str]:
    return ["docker", "exec", router, "sh", SCRIPT_PATH, "canary", str(percent)]


def canary_command(router: str, percent: int) -> str:
    return _join(canary_argv(router, percent))


def canary_undo(router: str, docker_host: str) -> dict[str, object]:
    """What ends a canary step at once: every client back on the live color (rule 1d)."""
    return {"argv": canary_argv(router, 0), "env": {"DOCKER_HOST": docker_host}}


def maintenance_command(router: str, enabled: bool) -> str:
    """Storefront maintenance on or off: a state-file rename in the router, no reload."""
    return _join(["docker", "exec", router, "sh", SCRIPT_PATH, "maintenance", "on" if enabled else "off"])


def apply_command(router: str) -> str:
    # The rendered config arrives on stdin.
    return _join(["docker", "exec", "-i", router, "sh", SCRIPT_PATH, "apply"])


def install_script_command(router: str) -> str:
    # The control script arrives on stdin; it is renamed into place so a half-written copy
    # is never run.
    folder = SCRIPT_PATH.rsplit("/", 1)[0]
    install = f"mkdir -p {folder} && cat > {SCRIPT_PATH}.new && mv -f {SCRIPT_PATH}.new {SCRIPT_PATH}"
    return _join(["docker", "exec", "-i", router, "sh", "-c", install])


def metrics_arguments(log_port: int = METRICS_LOG_PORT, exporter_port: int = METRICS_EXPORTER_PORT) -> list[str]:
    """What `router.sh metrics` takes: the ports the rendered config logs to and proxies to, and
    the histogram's bounds."""
    return [str(log_port), str(exporter_port), ",".join(f"{bound:g}" for bound in LATENCY_BUCKETS_SECONDS)]


def metrics_scrape_argv(router: str) -> list[str]:
    """Read the router's per-color figures from inside its container (the probe port: no token,
    nothing published), as the post-flip analysis does."""
    url = f"http://{LOOPBACK}:{PROBE_PORT}{METRICS_PATH}"
    return ["docker", "exec", router, "curl", "-fsS", "--max-time", "5", url]


def metrics_command(router: str) -> str:
    # The exporter (nginx/bluegreen-metrics.pl) arrives on stdin and is renamed into place, then
    # (re)started: a new version of it replaces the running one.
    install = f"cat > {EXPORTER_PATH}.new && mv -f {EXPORTER_PATH}.new {EXPORTER_PATH}"
    start = _join(["sh", SCRIPT_PATH, "metrics", *metrics_arguments()])
    return _join(["docker", "exec", "-i", router, "sh", "-c", f"{install} && {start}"])


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


# -- probes ---------------------------------------------------------------------------------

# curl prints this line after the body: `<mark> <status> <color header or empty>`.
_PROBE_MARK = "__bluegreen_probe__"
_PROBED = re.compile(rf"\n{_PROBE_MARK} (?P<status>[0-9]{{3}}) ?(?P<color>\S*)\s*$")


def preview_probe_url(path: str) -> str:
    """The preview route as the probe sees it: the router's own loopback listener."""
    return f"http://{LOOPBACK}:{PROBE_PORT}{path}"


def live_probe_url(path: str, tls: bool) -> str:
    """The public route as the probe sees it. Over TLS the certificate is not checked (curl -k):
    the probe talks to its own container by IP, and what it proves is the route, not the cert."""
    return f"https://{LOOPBACK}:{HTTPS_PORT}{path}" if tls else f"http://{LOOPBACK}:{HTTP_PORT}{path}"


def probe_argv(router: str, url: str, headers: Mapping[str, str], timeout_seconds: float) -> list[str]:
    """One request from inside the router container. Needs curl >= 7.84 in the router image (the
    official Debian-based nginx images have it). Headers land on argv: never pass a secret."""
    argv = [
        "docker", "exec", router, "curl", "--silent", "--show-error", "--insecure",
        "--max-time", f"{timeout_seconds:g}", "--output", "-",
        "--write-out", f"\n{_PROBE_MARK} %{{http_code}} %header{{{COLOR_HEADER.lower()}}}",
    ]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    return [*argv, url]


@dataclass(frozen=True)
class ProbeReply:
    status: int | None  # None when no HTTP answer came back
    color: str | None  # the router's color header, when present
    body: str
    error: str | None  # why no HTTP answer came back


def parse_probe(returncode: int, stdout: str, stderr: str) -> ProbeReply:
    match = _PROBED.search(stdout)
    if returncode != 0 or match is None or match["status"] == "000":
        problem = stderr.strip() or stdout.strip() or f"exit {returncode}"
        if "executable file not found" in problem and "curl" in problem:
            problem = f"the router image has no curl, which the in-host probe needs: {problem}"
        return ProbeReply(None, None, "", f"probe failed (exit {returncode}): {problem[-300:]}")
    return ProbeReply(int(match["status"]), match["color"] or None, stdout[: match.start()], None)
