"""`bluegreen doctor`: is everything a release needs there? One line per check, ok or FAIL (or
skip, when a check does not apply yet), each FAIL with a fix; exit 1 when any check fails.

    engine        the pulumi CLI runs, and its version (against the requirements.txt pin)
    stack         the stack config can be read (prefix, dockerHost)
    docker host   the Docker engine answers over the stack's dockerHost URL
    port ...      each of the router's host ports (http, https with TLS, preview) is free or
                  held by this stack's router; on a local engine (unix://) a port no container
                  holds is also tried with a bind, to find a process outside Docker
    docker dns    Docker's DNS answers on the stack network: the router resolves a container
                  of the stack by name (what nginx does per request), when both exist
    disk          free space on the Docker host's data root (local df, or df over ssh://)
"""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

from core import naming
from ops.docker_host import DockerHost, overlaps, parse_inspect, parse_published
from ops.environment import Target
from ops.pulumi_cli import Command, OpsError, PulumiCli, Runner, StackConfig, read_config, run_checked

Status = Literal["ok", "FAIL", "skip"]
MIN_FREE_BYTES = 2 * 1024**3  # a release pulls or builds an image and writes a backup
PortProbe = Callable[[str, int], str | None]  # None: it can be bound; else why not


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Port:
    label: str  # http, https, preview
    key: str  # the config key that sets it
    address: str
    number: int


# --- pure logic -----------------------------------------------------------------------------


def router_ports(config: StackConfig) -> list[Port]:
    """The host ports the router publishes, from the stack config and the program's defaults."""
    from pydantic import ValidationError

    from core.settings import RouterSettings, TlsSettings

    try:
        router = RouterSettings.model_validate(config.object("router") or {})
        tls = TlsSettings.model_validate(config.object("tls") or {})
    except ValidationError as error:
        raise OpsError(f"router or tls config is not valid: {error.errors()[0]['msg']}") from None
    ports = [Port("http", "router.httpPort", router.bind_address, router.http_port)]
    if tls.enabled:
        ports.append(Port("https", "router.httpsPort", router.bind_address, router.https_port))
    ports.append(Port("preview", "router.previewPort", router.preview_bind_address, router.preview_port))
    return ports


def parse_df(output: str) -> tuple[int, int]:
    """(available, total) bytes from `df -Pk PATH`."""
    lines = [line.split() for line in output.strip().splitlines()]
    if len(lines) < 2 or len(lines[-1]) < 6:
        raise OpsError(f"unexpected df output: {output.strip()[:200]!r}")
    fields = lines[-1]
    return int(fields[3]) * 1024, int(fields[1]) * 1024


def network_members(output: str) -> list[str]:
    """Container names from `docker network inspect NAME`."""
    try:
        data = json.loads(output)
    except json.JSONDecodeError:
        return []
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    containers = first.get("Containers") or {}
    return sorted(str(c.get("Name")) for c in containers.values() if isinstance(c, dict) and c.get("Name"))


def gib(count: int) -> str:
    return f"{count / 1024**3:.1f} GiB"


def df_command(docker_url: str, path: str) -> Command | None:
    """df of a path on the Docker host: here for unix://, over ssh for ssh://; None for tcp://."""
    parsed = urlparse(docker_url)
    if parsed.scheme == "unix":
        return Command(("df", "-Pk", path))
    if parsed.scheme == "ssh" and parsed.hostname:
        destination = f"{parsed.username}@{parsed.hostname}" if parsed.username else parsed.hostname
        port = ("-p", str(parsed.port)) if parsed.port else ()
        return Command(("ssh", "-o", "BatchMode=yes", *port, destination, "df", "-Pk", path))
    return None


def docker_fix(target: Target, docker_url: str) -> str:
    parsed = urlparse(docker_url)
    if target.local:
        return f"start the harness dockerd: {target.repo_path('harness/dockerd.sh')} start"
    if parsed.scheme == "ssh" and parsed.hostname:
        destination = f"{parsed.username}@{parsed.hostname}" if parsed.username else parsed.hostname
        port = f" -p {parsed.port}" if parsed.port else ""
        return (f"check that `ssh{port} {destination} docker version` works from here "
                "(ssh key and known_hosts, the user in the docker group, dockerd running)")
    if parsed.scheme == "unix":
        return f"is dockerd running on this machine and {parsed.path} readable by you? `systemctl status docker`"
    return f"is the Docker engine listening on {docker_url} and reachable from here?"


# --- the checks -----------------------------------------------------------------------------


def check_engine(runner: Runner, cli: PulumiCli, target: Target, pinned: str | None) -> Check:
    try:
        version = run_checked(runner, cli.version(), "pulumi version").stdout.strip()
    except OpsError as error:
        return Check("engine", "FAIL", str(error).splitlines()[0],
                     "install the Pulumi CLI of the version requirements.txt pins, or build this repo's "
                     f"engine: {target.repo_path('scripts/engine/bootstrap.sh')}")
    note = ""
    if pinned and version.lstrip("v") != pinned:
        note = f"; requirements.txt pins {pinned} (the SDK the program runs on)"
    return Check("engine", "ok", f"pulumi {version}{note}")


def check_stack(runner: Runner, cli: PulumiCli, target: Target) -> tuple[Check, StackConfig | None]:
    try:
        config = read_config(runner, cli)
    except OpsError as error:
        if target.local:
            fix = f"create the local stack: {target.make('up')}"
        else:
            fix = (f"is PULUMI_BACKEND_URL (or `pulumi login`) the stack's backend? "
                   f"The stacks there: {target.command('pulumi', 'stack', 'ls')}")
        return Check("stack", "FAIL", " ".join(str(error).split())[:300], fix), None
    return Check("stack", "ok", f"{cli.stack}: prefix {config.prefix()}, dockerHost {config.docker_host()}"), config


def check_docker(runner: Runner, docker: DockerHost, target: Target) -> Check:
    result = runner.run(docker.server_version())
    if not result.ok or not result.stdout.strip():
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()
        last = reason[-1] if reason else f"exit {result.returncode}"
        return Check("docker host", "FAIL", f"{docker.url} did not answer: {last}", docker_fix(target, docker.url))
    return Check("docker host", "ok", f"Docker {result.stdout.strip()} at {docker.url}")


def check_ports(runner: Runner, docker: DockerHost, config: StackConfig, probe: PortProbe) -> list[Check]:
    router = naming.router_container(config.prefix())
    published = parse_published(run_checked(runner, docker.published_ports(), "docker ps").stdout)
    local = urlparse(docker.url).scheme == "unix"
    checks = []
    for port in router_ports(config):
        name = f"port {port.label}"
        where = f"{port.address}:{port.number}"
        holders = sorted({p.container for p in published
                          if p.port == port.number and overlaps(p.address, port.address)})
        others = [holder for holder in holders if holder != router]
        if others:
            checks.append(Check(name, "FAIL", f"{where} is held by container {', '.join(others)}",
                                f"stop it (`docker --host {docker.url} stop {others[0]}`) or set {port.key} "
                                "to a free port"))
        elif holders:
            checks.append(Check(name, "ok", f"{where} held by our router ({router})"))
        elif not local:
            checks.append(Check(name, "ok", f"{where}: no container holds it (a process outside Docker on "
                                            "the host is not visible from here)"))
        else:
            why = probe(port.address, port.number)
            if why is None:
                checks.append(Check(name, "ok", f"{where} free"))
            elif why == "in use":
                checks.append(Check(name, "FAIL", f"{where} is in use by a process outside Docker",
                                    f"find it: ss -ltnp 'sport = :{port.number}'; stop it or set {port.key} "
                                    "to a free port"))
            else:
                checks.append(Check(name, "ok", f"{where}: no container holds it (not tried with a bind: {why})"))
    return checks


def check_dns(runner: Runner, docker: DockerHost, config: StackConfig, target: Target) -> Check:
    prefix = config.prefix()
    network = naming.network(prefix)
    inspected = runner.run(docker.network_inspect(network))
    if not inspected.ok:
        return Check("docker dns", "skip", f"network {network} does not exist yet (the first pulumi up creates it)")
    router = naming.router_container(prefix)
    members = sorted(set(network_members(inspected.stdout)) - {router})
    state = parse_inspect(runner.run(docker.inspect([router])), [router])[router]
    if not state.running:
        return Check("docker dns", "skip", f"the router {router} is not running, so nothing resolves through it",
                     f"bring it back: {target.command('recover')}")
    if not members:
        return Check("docker dns", "skip", f"no container but the router on {network} to resolve")
    preferred = [naming.server_container(prefix, c) for c in naming.COLORS] + [f"{prefix}-postgres"]
    name = next((n for n in preferred if n in members), members[0])
    result = runner.run(docker.exec(router, "getent", "hosts", name))
    if not result.ok or not result.stdout.strip():
        return Check("docker dns", "FAIL", f"{router} cannot resolve {name} on {network} through Docker's DNS",
                     "restart the Docker daemon on the host (every container comes back by itself), then "
                     f"{target.command('recover')}")
    address = result.stdout.split()[0]
    return Check("docker dns", "ok", f"{router} resolves {name} to {address} on {network}")


def check_disk(runner: Runner, docker: DockerHost) -> Check:
    root = run_checked(runner, docker.data_root(), "docker info").stdout.strip()
    command = df_command(docker.url, root)
    if command is None:
        return Check("disk", "skip", f"cannot see the disk of {docker.url} from here; run `df -h {root}` on the host")
    result = runner.run(command)
    if not result.ok:
        return Check("disk", "FAIL", f"`{command}` failed: {(result.stderr or result.stdout).strip()[:200]}",
                     "check the host by hand: df -h on Docker's data root")
    available, total = parse_df(result.stdout)
    detail = f"{gib(available)} free of {gib(total)} on {root} (Docker's data root)"
    if available < MIN_FREE_BYTES:
        return Check("disk", "FAIL", detail + f"; a release needs at least {gib(MIN_FREE_BYTES)}",
                     f"see what uses it: docker --host {docker.url} system df; dangling images go with "
                     f"docker --host {docker.url} image prune")
    return Check("disk", "ok", detail)


def doctor(runner: Runner, cli: PulumiCli, target: Target, pinned: str | None, probe: PortProbe) -> list[Check]:
    checks = [check_engine(runner, cli, target, pinned)]
    stack, config = check_stack(runner, cli, target)
    checks.append(stack)
    if config is None:
        return [*checks, Check("docker host", "skip", "needs the stack config (its dockerHost)")]
    docker = DockerHost(config.docker_host())
    checks.append(check_docker(runner, docker, target))
    if checks[-1].status == "FAIL":
        return [*checks, Check("docker", "skip", "ports, DNS and disk need the Docker host")]
    more: list[Callable[[], list[Check]]] = [
        lambda: check_ports(runner, docker, config, probe),
        lambda: [check_dns(runner, docker, config, target)],
        lambda: [check_disk(runner, docker)],
    ]
    for check in more:
        try:
            checks.extend(check())
        except OpsError as error:
            checks.append(Check("docker", "FAIL", " ".join(str(error).split())[:300]))
    return checks


def render(checks: Sequence[Check]) -> list[str]:
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.status:<4}  {check.name:<{width}}  {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = sum(check.status == "FAIL" for check in checks)
    lines.append(f"{failed} check{'s' if failed != 1 else ''} failed" if failed else "all checks passed")
    return lines


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(check.status == "FAIL" for check in checks) else 0


def bind_probe(address: str, port: int) -> str | None:
    """Tries to bind address:port here (a wildcard address as itself). None when it could."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As a server would: a port with only TIME_WAIT connections left counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address.strip("[]"), port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return "in use"
            return error.strerror or str(error)
    return None
