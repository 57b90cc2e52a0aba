"""Runs the real Pulumi CLI on a copy of this project against the harness's Docker engine.

Each test stack lives in its own directory with its own file:// backend, so nothing touches
the user's stacks or `make up`'s local stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PROJECT_FILES = ["Pulumi.yaml", "__main__.py", "requirements.txt", "core", "components", "providers", "nginx", "acme"]


def engine_env() -> dict[str, str]:
    """The environment `scripts/dev/env.sh` sets up: built engine, harness dockerd."""
    done = subprocess.run(
        ["bash", "-c", "source scripts/dev/env.sh >/dev/null && env -0"],
        cwd=REPO, capture_output=True, timeout=3600, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/dev/env.sh failed:\n{done.stderr.decode()[-3000:]}")
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    args: tuple[str, ...] = ()

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def program_at(commit: str, names: list[str], into: Path) -> Path:
    """The program's files as they were at `commit` of this repository, extracted into `into`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, *names],
        capture_output=True, timeout=120, check=False,
    )
    if archive.returncode != 0:
        raise AssertionError(f"git archive {commit} failed (a clone with history is needed): {archive.stderr.decode()}")
    into.mkdir()
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


EXAMPLE_APP = REPO / "examples/medusa-app"


def copy_example_app(into: Path) -> Path:
    """A copy of examples/medusa-app under `into` (what a build sends, not its local installs), so a
    test or bench can change its code without touching the repo."""
    copy = into / "app"
    shutil.copytree(EXAMPLE_APP, copy, ignore=shutil.ignore_patterns("node_modules", ".medusa"))
    return copy


def copy_program(source: Path, workdir: Path, names: list[str]) -> None:
    """Copies the program's files (not the tests, state or caches) from `source` into `workdir`."""
    for name in names:
        if (source / name).is_dir():
            shutil.copytree(source / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / name, workdir / name)


class PulumiStack:
    def __init__(
        self, workdir: Path, env: dict[str, str], stack: str = "e2e",
        source: Path = REPO, files: list[str] = PROJECT_FILES,
    ):
        self.workdir = workdir
        self.stack = stack
        # Every run's output, for the test that looks for secret values in what users see.
        self.runs: list[Run] = []
        copy_program(source, workdir, files)
        (workdir / ".venv").symlink_to(REPO / ".venv")
        backend = workdir / ".state"
        backend.mkdir()
        self.env = {
            **env,
            "PULUMI_BACKEND_URL": f"file://{backend}",
            "PULUMI_CONFIG_PASSPHRASE": "e2e-only-passphrase",
        }
        self.run("stack", "init", stack)

    def run(self, *args: str, check: bool = True, timeout: float = 900, stdin: str | None = None) -> Run:
        began = time.monotonic()
        done = subprocess.run(
            ["pulumi", *args, "--non-interactive", "--color", "never", *self._stack_flag(args)],
            cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
            input=stdin,
        )
        run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - began, args)
        self.runs.append(run)
        if check and run.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({run.returncode}):\n{run.output[-6000:]}")
        return run

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`pulumi ARGS` in the background, for a test that acts while it runs (kill, cancel)."""
        return subprocess.Popen(
            ["pulumi", *args, "--non-interactive", "--color", "never", *self._stack_flag(args)],
            cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def _stack_flag(self, args: tuple[str, ...]) -> list[str]:
        return [] if args[:2] == ("stack", "init") else ["--stack", self.stack]

    def set_config(self, config: dict[str, Any]) -> None:
        """Writes the stack's non-secret config file in one go (what `pulumi config set` does)."""
        path = self.workdir / f"Pulumi.{self.stack}.yaml"
        current = yaml.safe_load(path.read_text()) if path.exists() else {}
        current = current or {}
        current["config"] = {f"medusa-bluegreen:{key}": value for key, value in config.items()}
        path.write_text(yaml.safe_dump(current))

    def up(self, *extra: str, check: bool = True) -> Run:
        return self.run("up", "--yes", "--skip-preview", *extra, check=check)

    def generated_secrets(self) -> dict[str, str]:
        """The passwords and keys the stack generated (pulumi-random), by resource name."""
        state = json.loads(self.run("stack", "export", "--show-secrets").stdout)
        found = {}
        for resource in state["deployment"].get("resources", []):
            if resource["type"] == "random:index/randomPassword:RandomPassword":
                result = resource.get("outputs", {}).get("result")
                value = json.loads(result["plaintext"]) if isinstance(result, dict) else result
                found[resource["urn"].rsplit("::", 1)[-1]] = value
        return found

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout)


def ephemeral_ports() -> range:
    low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(low, high + 1)


def local_stack_config(
    prefix: str, http_port: int, preview_port: int, *, hardened: bool = True, **overrides: Any
) -> dict[str, Any]:
    """Config every e2e stack shares: harness images, loopback-only router, no Meilisearch
    (no binary or image of it can be had here), rate limits above the test load, and
    services.hardened as the shipped stack files set it (`hardened=False`: no such key, for a
    program from before it, or a stack made before it).

    A published port inside the kernel's ephemeral range is refused: any outgoing connection or
    plugin listening on port 0 may hold it at that moment, and the router then fails to start
    ("bind: address already in use"), seen once in this suite."""
    ephemeral = ephemeral_ports()
    for port in (http_port, preview_port):
        if port in ephemeral:
            raise ValueError(
                f"stack {prefix}: port {port} is in the ephemeral range {ephemeral.start}-{ephemeral.stop - 1}; "
                "pick one below it"
            )
    return {
        "domain": "localhost",
        "prefix": prefix,
        "meilisearch": {"enabled": False},
        "images": {"postgres": "medusa-bg/postgres:15", "redis": "medusa-bg/redis:7", "nginx": "medusa-bg/nginx:1.28"},
        "router": {
            "bindAddress": "127.0.0.1", "httpPort": http_port, "previewPort": preview_port,
            "rateLimitPerSecond": 5000, "rateLimitBurst": 5000,
        },
        **({"services": {"hardened": True}} if hardened else {}),
        **overrides,
    }


def gateway() -> str:
    """The harness bridge's gateway: an address of the host that every container can reach, for a
    test's stand-in of an outside service (a managed database, an S3 bucket)."""
    return docker("network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")


def destroy_with_data(stack: PulumiStack, prefix: str) -> None:
    """Data volumes outlive `pulumi destroy` by design; a throwaway test stack removes them too."""
    stack.run("destroy", "--yes", check=False)
    remove_leftovers(prefix)


def remove_leftovers(prefix: str) -> None:
    """Remove every container, network and volume named `<prefix>-...` on the harness dockerd.

    Each e2e module starts from a fresh state file, so what a run killed before its teardown
    left behind (the dockerd's data outlives the run) is no longer Pulumi's; without this the
    next run's first create fails with "network with name e2e-net already exists"."""
    name = f"name=^{prefix}-"
    containers = docker("ps", "-aq", "--filter", name).split()
    if containers:
        docker("rm", "-f", "-v", *containers, check=False)
    for network in docker("network", "ls", "-q", "--filter", name).split():
        docker("network", "rm", network, check=False)
    for volume in docker("volume", "ls", "-q", "--filter", name).split():
        docker("volume", "rm", "-f", volume, check=False)
    left = [kind for kind, cmd in (("containers", ("ps", "-aq")), ("networks", ("network", "ls", "-q")),
                                   ("volumes", ("volume", "ls", "-q")))
            if docker(*cmd, "--filter", name)]
    if left:
        raise AssertionError(f"leftover {', '.join(left)} named {prefix}-* could not be removed")


def docker(*args: str, check: bool = True, env_extra: Mapping[str, str] | None = None,
           stdin: str | None = None) -> str:
    """`docker ARGS`; `env_extra` for `-e NAME` (a value never on the command line), `stdin` for `-i`."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, input=stdin,
                          env={**os.environ, **(env_extra or {})}, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def container_id(name: str) -> str | None:
    out = docker("inspect", "--format", "{{.Id}}", name, check=False)
    return out or None
