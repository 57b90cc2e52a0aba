"""Where the CLI acts (`Target`: stack, project directory) and the environment its commands run in.

The local stack (`--stack local`, the default) gets what scripts/dev/up.sh sets, so nothing has
to be sourced by hand: the file:// backend in the repo's .state/, the local passphrase
(PULUMI_CONFIG_PASSPHRASE, default `local-stack-passphrase`), the locally built engine on PATH
(`scripts/engine/bootstrap.sh --print-env`) and the harness's dockerd (`harness/dockerd.sh
env`; verbs that change the stack also start it, as `make up` does).

A named stack (`--stack production`) uses the caller's PULUMI_BACKEND_URL and
PULUMI_CONFIG_PASSPHRASE (or `pulumi login`), and the pulumi CLI on PATH, else the locally
built engine when it has been built; it never builds one.

Pure parts: `plan_environment` (what to set and which script prints the rest) and
`parse_env0` (the environment `env -0` printed); `resolve_environment` runs the plan.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.naming import LOCAL_STACK
from ops.pulumi_cli import Command, OpsError, Runner

REPO = Path(__file__).resolve().parents[1]
LOCAL_PASSPHRASE = "local-stack-passphrase"  # only guards the local stack's secrets at rest in .state/


def engine_env(repo: Path) -> str:
    return f'eval "$({shlex.quote(str(repo / "scripts/engine/bootstrap.sh"))} --print-env)"'


def harness_start(repo: Path) -> str:
    return f"{shlex.quote(str(repo / 'harness/dockerd.sh'))} start >&2"


def harness_env(repo: Path) -> str:
    return f'eval "$({shlex.quote(str(repo / "harness/dockerd.sh"))} env)"'


@dataclass(frozen=True)
class Target:
    """The stack the CLI acts on, and how to print a command line of this CLI for it."""

    stack: str = LOCAL_STACK
    project_dir: Path = REPO  # the Pulumi project directory (absolute)
    prog: str = "bin/bluegreen"  # how this CLI was invoked, so printed commands work as printed
    repo: Path = REPO
    caller: Path = REPO  # where the user runs it from: printed paths are relative to it

    @property
    def local(self) -> bool:
        return self.stack == LOCAL_STACK

    def command(self, *args: str) -> str:
        """`bin/bluegreen [--stack S] [--cwd DIR] ARGS` for this target, ready to paste."""
        words = [self.prog]
        if not self.local:
            words += ["--stack", self.stack]
        if self.project_dir != self.repo:
            words += ["--cwd", str(self.project_dir)]
        return shlex.join([*words, *args])

    def pulumi_command(self, command: Command) -> str:
        """A pulumi command line as this CLI's `pulumi` verb, which works without any setup."""
        return self.command("pulumi", *command.argv[1:])

    def make(self, goal: str) -> str:
        """`make GOAL` of this repo, from the caller's directory."""
        where = self.repo_path(".")
        return f"make {goal}" if where == "." else f"make -C {shlex.quote(where)} {goal}"

    def repo_path(self, relative: str) -> str:
        """A path of this repo as a command word that works from the caller's directory."""
        path = (self.repo / relative).resolve()
        here = self.caller.resolve()
        try:
            return str(path.relative_to(here))
        except ValueError:
            return str(path)


@dataclass(frozen=True)
class EnvPlan:
    """Variables to set, then a bash script (run in the repo) that ends with `env -0`; None: none."""

    set: Mapping[str, str] = field(default_factory=dict)
    script: str | None = None

    def command(self) -> Command | None:
        return Command(("bash", "-c", self.script)) if self.script else None


def engine_dirs(cache: Path, requirements: str) -> list[Path]:
    """Complete builds of scripts/engine/bootstrap.sh for the pinned versions (any recipe)."""
    pins = dict(re.findall(r"(?m)^\s*(pulumi(?:-docker|-command|-random)?)\s*==\s*([^\s;#]+)", requirements))
    if "pulumi" not in pins:
        return []
    key = "_".join(
        [f"pulumi-{pins['pulumi']}",
         *(f"{name}-{pins.get(f'pulumi-{name}', '?')}" for name in ("docker", "command", "random"))]
    )
    folder = cache / "engine"
    return sorted(path.parent for path in folder.glob(f"{key}_r*/.complete")) if folder.is_dir() else []


def plan_environment(target: Target, environ: Mapping[str, str], start_docker: bool,
                     which: Callable[[str, str | None], str | None] = lambda name, path: shutil.which(name, path=path),
                     engine_built: bool = False) -> EnvPlan:
    """What the commands of `target` need on top of `environ` (see the module doc)."""
    if target.local:
        settings = {
            "PULUMI_BACKEND_URL": f"file://{target.repo / '.state'}",
            "PULUMI_CONFIG_PASSPHRASE": environ.get("PULUMI_CONFIG_PASSPHRASE") or LOCAL_PASSPHRASE,
        }
        repo = target.repo
        steps = [engine_env(repo), *([harness_start(repo)] if start_docker else []), harness_env(repo), "env -0"]
        return EnvPlan(settings, " && ".join(steps))
    if which("pulumi", environ.get("PATH")):
        return EnvPlan()
    if engine_built:
        return EnvPlan({}, f"{engine_env(target.repo)} && env -0")
    raise OpsError(
        "the pulumi CLI is not on PATH and this repo's engine is not built: install the Pulumi CLI "
        f"(the version requirements.txt pins), or build it: {target.repo_path('scripts/engine/bootstrap.sh')}"
    )


def parse_env0(output: str) -> dict[str, str]:
    """The environment printed by `env -0` (NUL-separated NAME=value, values may hold newlines)."""
    pairs = (item.split("=", 1) for item in output.split("\0") if "=" in item)
    return {name: value for name, value in pairs if name}


def resolve_environment(target: Target, environ: Mapping[str, str], runner_for: Callable[[dict[str, str]], Runner],
                        start_docker: bool) -> dict[str, str]:
    """The environment every command of `target` runs in."""
    if target.local:
        (target.repo / ".state").mkdir(exist_ok=True)  # as scripts/dev/up.sh does
    home = Path(environ.get("HOME") or Path.home())
    cache = Path(environ.get("MEDUSA_BG_CACHE") or home / ".cache/medusa-bluegreen")
    requirements = (target.repo / "requirements.txt").read_text()
    plan = plan_environment(target, environ, start_docker, engine_built=bool(engine_dirs(cache, requirements)))
    env = {**environ, **plan.set}
    command = plan.command()
    if command is None:
        return env
    result = runner_for(env).run(command)
    if not result.ok:
        raise OpsError(f"setting up the environment of stack {target.stack} failed (exit {result.returncode}):\n"
                       f"{result.tail(20)}")
    return parse_env0(result.stdout)


def caller_dir(environ: Mapping[str, str]) -> Path:
    """The directory the user ran bin/bluegreen from (it runs Python from the repo root)."""
    return Path(environ.get("BLUEGREEN_CALLER_DIR") or os.getcwd())
