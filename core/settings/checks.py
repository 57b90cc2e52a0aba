"""Rules that involve more than one key, each a named function, listed once in CHECKS.

A check reads valid settings and returns its problems (one line each: key, what is wrong, how
to fix it); an empty list means the rule holds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from core.naming import COLORS
from core.settings.model import Settings
from core.settings.types import SECRET_LOOKING_NAME

Check = Callable[[Settings], list[str]]


def released_color_has_an_image(s: Settings) -> list[str]:
    active = s.active_color
    if s.image_for(active) is None and s.build_for(active) is None:
        return [
            f"{active}Image: required because activeColor is {active}; set it with "
            f"`pulumi config set {active}Image registry/app:tag` (or build it from an app "
            f"directory: `pulumi config set --path {active}Build.context ./app`)"
        ]
    return []


def one_source_per_color(s: Settings) -> list[str]:
    problems = []
    for color in COLORS:
        if s.image_for(color) is not None and s.build_for(color) is not None:
            problems.append(
                f"{color}Build: set together with {color}Image; keep one (`pulumi config rm {color}Build` "
                f"or `pulumi config rm {color}Image`)"
            )
    return problems


def only_the_released_color_is_built(s: Settings) -> list[str]:
    # Rebuilding the idle color from a changed directory would replace it without a release;
    # pinning keeps it exactly what it was.
    problems = []
    for color in COLORS:
        if color != s.active_color and s.image_for(color) is None and s.build_for(color) is not None:
            problems.append(
                f"{color}Build: only the color being released (activeColor) is built; pin {color} to "
                f"the image it was built as: `pulumi config set {color}Image <stack output "
                f"imageRefs.{color}>` and `pulumi config rm {color}Build` (`bin/bluegreen release` does this)"
            )
    return problems


def database_url_matches_mode(s: Settings) -> list[str]:
    if s.database.mode == "external" and s.database_url is None:
        return [
            "databaseUrl: required because database.mode is external; set it with "
            "`pulumi config set --secret databaseUrl postgres://user:pass@host:5432/db`"
        ]
    if s.database.mode == "bundled" and s.database_url is not None:
        return ["databaseUrl: set, but database.mode is bundled; remove it or set database.mode to external"]
    return []


def redis_url_matches_mode(s: Settings) -> list[str]:
    if s.redis.mode == "external" and s.redis_url is None:
        return [
            "redisUrl: required because redis.mode is external; set it with "
            "`pulumi config set --secret redisUrl redis://default:pass@host:6379/0`"
        ]
    return []


def published_ports_are_distinct(s: Settings) -> list[str]:
    ports = {"router.httpPort": s.router.http_port, "router.previewPort": s.router.preview_port}
    if s.tls.enabled:
        ports["router.httpsPort"] = s.router.https_port
    problems = []
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            problems.append(f"{key}: port {port} is already used by {seen[port]}; choose another")
        seen[port] = key
    return problems


def public_preview_needs_a_token(s: Settings) -> list[str]:
    if not ipaddress.ip_address(s.router.preview_bind_address).is_loopback and s.preview_token is None:
        return [
            "previewToken: required because router.previewBindAddress is not loopback, so the "
            "idle color would be public; set it with `pulumi config set --secret previewToken <random>`"
        ]
    return []


def acme_needs_a_public_name_on_port_80(s: Settings) -> list[str]:
    if not s.tls.acme_enabled:
        return []
    problems = []
    if s.domain == "localhost" or _is_ip(s.domain) or "." not in s.domain:
        problems.append(
            f"domain: {s.domain!r} cannot get an ACME certificate (the CA needs a DNS name that points at "
            "the Docker host); set the real domain, or tls.certPath and tls.keyPath"
        )
    if s.router.http_port != 80:
        problems.append(
            f"router.httpPort: {s.router.http_port}, but ACME's HTTP-01 challenge always comes to port 80; "
            "publish the router on 80 or bring your own certificate (tls.certPath, tls.keyPath)"
        )
    return problems


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def build_args_are_not_secrets(s: Settings) -> list[str]:
    problems = []
    for color in COLORS:
        build = s.build_for(color)
        for name in build.args if build else {}:
            if SECRET_LOOKING_NAME.search(name.upper()):
                problems.append(
                    f"{color}Build.args.{name}: looks like a secret, but build args reach the docker command "
                    f"line and the image history; pass it as a BuildKit secret file instead "
                    f"(`pulumi config set --path {color}Build.secretFiles.<id> /path/to/file`)"
                )
    return problems


CHECKS: tuple[Check, ...] = (
    released_color_has_an_image,
    one_source_per_color,
    only_the_released_color_is_built,
    database_url_matches_mode,
    redis_url_matches_mode,
    published_ports_are_distinct,
    public_preview_needs_a_token,
    acme_needs_a_public_name_on_port_80,
    build_args_are_not_secrets,
)


def cross_key_problems(settings: Settings) -> list[str]:
    return [problem for check in CHECKS for problem in check(settings)]
