"""Rules that involve more than one key, each a named function, listed once in CHECKS.

A check reads valid settings and returns its problems (one line each: key, what is wrong, how
to fix it); an empty list means the rule holds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from core.naming import COLORS, other_color
from core.settings.model import Settings
from core.settings.types import carries_a_url_password, looks_like_a_secret

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


def canary_keeps_a_warm_color_live(s: Settings) -> list[str]:
    # The clients a canary step does not send to the released color stay on the other one, so it
    # must have an image and keep running.
    if not s.canary.partial:
        return []
    other = other_color(s.active_color)
    if s.image_for(other) is None or s.other_color != "warm":
        return [
            f"canary.weight: a canary step ({s.canary.weight} %) keeps the other clients on {other}, which "
            f"needs {other}Image and otherColor warm; release without a canary (`pulumi config rm "
            f"--path canary.weight`) or set {other}Image to what is live"
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
    if s.redis.mode == "bundled" and s.redis_url is not None:
        return ["redisUrl: set, but redis.mode is bundled, so it would be ignored; remove it "
                "(`pulumi config rm redisUrl`) or set redis.mode to external"]
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
        for name, value in build.args.items() if build else ():
            if looks_like_a_secret(name) or carries_a_url_password(value):
                what = "looks like a secret" if looks_like_a_secret(name) else "carries a password in a URL"
                problems.append(
                    f"{color}Build.args.{name}: {what}, but build args reach the docker command "
                    f"line and the image history; pass it as a BuildKit secret file instead "
                    f"(`pulumi config set --path {color}Build.secretFiles.<id> /path/to/file`)"
                )
    return problems


def _on_this_machine(path: str) -> Path:
    """A path from the config as the build resolves it: relative to the project directory
    (core/component_inputs.py hands PROJECT_DIR to core/app_build.plan_build, which resolves it)."""
    from core.component_inputs import PROJECT_DIR  # imports core.settings: only once it is loaded

    return (PROJECT_DIR / path).resolve()


def build_inputs_exist_here(s: Settings) -> list[str]:
    # The build runs `docker build` on the machine running `pulumi up`: a missing directory or file
    # would otherwise surface as a traceback after the base services were registered.
    from core.app_build import ignore_patterns

    problems = []
    for color in COLORS:
        build = s.build_for(color)
        if build is None or color != s.active_color:
            continue
        key = f"{color}Build.context"
        fix = f"`pulumi config set --path {key} ./app` (relative to the project directory, where Pulumi.yaml is)"
        root = _on_this_machine(build.context)
        if not root.exists():
            problems.append(f"{key}: {root} does not exist on this machine; point it at the app directory: {fix}")
        elif not root.is_dir():
            problems.append(f"{key}: {root} is a file, not a directory; point it at the directory that holds "
                            f"the Dockerfile: {fix}")
        elif not (root / "Dockerfile").is_file():
            problems.append(f"{key}: {root} has no Dockerfile (the build always uses ./Dockerfile in the context); "
                            f"add one or point it at the app directory: {fix}")
        else:
            try:
                ignore_patterns(root)
            except (ValueError, OSError) as error:
                problems.append(f"{key}: the ignore file cannot be read as Docker does ({error}); fix the pattern")
        for secret_id, path in build.secret_files.items():
            where = f"{color}Build.secretFiles.{secret_id}"
            file = _on_this_machine(path)
            set_it = f"`pulumi config set --path {where} /path/to/file`"
            if "," in path:
                problems.append(f"{where}: the path contains a comma, which docker's --secret option splits on; "
                                f"move the file and set {set_it}")
            elif path.startswith("~"):
                problems.append(f"{where}: `~` is not expanded; give the full path: {set_it}")
            elif not file.is_file():
                state = "is not a file" if file.exists() else "does not exist"
                problems.append(f"{where}: {file} {state} on this machine (the build reads it here); {set_it}")
    return problems


def env_names_are_set_once(s: Settings) -> list[str]:
    # Rule 10b: one way in. Both would reach the container and one would silently win.
    return [
        f"extraSecretEnv.{name}: also set in medusa.env; keep one (`pulumi config rm --path medusa.env.{name}` "
        f"or `pulumi config rm --path extraSecretEnv.{name}`)"
        for name in sorted(set(s.medusa.env) & set(s.extra_secret_env))
    ]


def backup_copy_has_what_it_needs(s: Settings) -> list[str]:
    copy = s.backups.copy_to
    keys = {"backupsAccessKeyId": s.backups_access_key_id, "backupsSecretAccessKey": s.backups_secret_access_key}
    if copy is None:
        return [
            f"{key}: set, but backups.copyTo is not, so it would be ignored; remove it (`pulumi config rm {key}`) "
            "or set backups.copyTo.endpoint and backups.copyTo.bucket"
            for key, value in keys.items() if value is not None
        ]
    problems = [
        f"{key}: required because backups.copyTo is set; set it with `pulumi config set --secret {key}`, "
        "which reads the value from stdin (a prompt, or `< file`)"
        for key, value in keys.items() if value is None
    ]
    if s.database.mode == "external":
        problems.append("backups.copyTo: set, but database.mode is external, so the program takes no backups to copy "
                        "(the database's provider does); remove it (`pulumi config rm --path backups.copyTo`)")
    elif not s.backups.enabled:
        problems.append("backups.copyTo: set, but backups.enabled is false, so there is nothing to copy; "
                        "remove it (`pulumi config rm --path backups.copyTo`) or set backups.enabled true")
    return problems


CHECKS: tuple[Check, ...] = (
    released_color_has_an_image,
    canary_keeps_a_warm_color_live,
    one_source_per_color,
    only_the_released_color_is_built,
    database_url_matches_mode,
    redis_url_matches_mode,
    published_ports_are_distinct,
    public_preview_needs_a_token,
    acme_needs_a_public_name_on_port_80,
    build_args_are_not_secrets,
    build_inputs_exist_here,
    env_names_are_set_once,
    backup_copy_has_what_it_needs,
)


def cross_key_problems(settings: Settings) -> list[str]:
    return [problem for check in CHECKS for problem in check(settings)]
