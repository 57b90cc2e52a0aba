"""A fake `pulumi` and `docker` for the ops tests: the stack config in memory, recorded outputs.

Fixtures in tests/unit/fixtures/ are real output of the Pulumi CLI 3.259.0 this repo builds
(scripts/engine/bootstrap.sh), file:// backend, captured on a throwaway project named
medusa-bluegreen whose program only validated the release keys like core/settings.py
and exported liveColor / imageRefs / images / publicUrl and a secret. Its stack `production`
got, in order: `pulumi up` (blue reg/shop:1.0.0), release.py --image reg/shop:1.1.0, a
release.py of reg/shop:1.2.0-broken that failed, release.py --build app (blue, pinned after to
shop/app:src-74621e3645e90f325e1f), release.py --image reg/shop:1.3.0, `pulumi refresh`,
`pulumi config set activeColor blue` + `pulumi up`, rollback.py, rollback.py --to 4. Then:
    pulumi stack history --json --show-secrets=false --page-size 100 --page 1 > stack_history.json
    pulumi config --json > stack_config.json
    pulumi stack output --json > stack_outputs.json
(jwtSecret was set with --secret: the files hold no value for it.)

tests/unit/ops/fixtures/ holds the same three, and `docker inspect`, of a real stack of this
program (prefix e2ecli) on the harness dockerd; see its README.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.naming import COLORS
from ops.pulumi_cli import Command, Result, StackConfig, object_entry, string_entry

FIXTURES = Path(__file__).parents[1] / "fixtures"
OPS_FIXTURES = Path(__file__).parent / "fixtures"
P = "medusa-bluegreen:"
SECRET = object()


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def ops_fixture(name: str) -> Any:
    return json.loads((OPS_FIXTURES / name).read_text())


def pulumi_config(**values: Any) -> dict[str, Any]:
    """A config in the format of `pulumi config --json`."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out[P + key] = object_entry(value)
        elif value is SECRET:
            out[P + key] = {"secret": True}
        else:
            out[P + key] = string_entry(value)
    return out


def stack_config(**values: Any) -> StackConfig:
    return StackConfig.from_pulumi(pulumi_config(**values))


def built_ref(build: dict[str, Any]) -> str:
    return "shop/app:src-" + hashlib.sha256(json.dumps(build, sort_keys=True).encode()).hexdigest()[:20]


class FakeDocker:
    """`docker --host H ...`: inspect from a list of containers as `docker inspect` prints them."""

    def __init__(self, containers: list[dict[str, Any]] | None = None, answers: bool = True) -> None:
        self.containers = containers or []
        self.answers = answers
        self.hosts: list[str] = []
        self.replies: dict[tuple[str, ...], Result] = {}

    def run(self, argv: list[str]) -> Result:
        assert argv[0] == "--host"
        self.hosts.append(argv[1])
        args = argv[2:]
        if not self.answers:
            return Result(1, "", f"Cannot connect to the Docker daemon at {argv[1]}. Is the docker daemon running?")
        for prefix, reply in self.replies.items():
            if tuple(args[: len(prefix)]) == prefix:
                return reply
        if args[:3] == ["inspect", "--type", "container"]:
            found = [c for c in self.containers if c["Name"].lstrip("/") in args[3:]]
            missing = [n for n in args[3:] if n not in {c["Name"].lstrip("/") for c in found}]
            errors = "".join(f"Error: No such container: {n}\n" for n in missing)
            return Result(1 if missing else 0, json.dumps(found), errors)
        raise AssertionError(f"unexpected docker command {args}")


class FakePulumi:
    """Implements the pulumi subcommands the verbs use, on an in-memory config; `docker` goes
    to a FakeDocker."""

    def __init__(self, config: dict[str, Any], history: list[dict[str, Any]] | None = None,
                 up: Callable[[FakePulumi], Result] | None = None, outputs: dict[str, Any] | None = None,
                 docker: FakeDocker | None = None, stack: str = "production") -> None:
        self.config = json.loads(json.dumps(config))
        self.history = history or []
        self.outputs = outputs if outputs is not None else {}
        self.on_up = up or FakePulumi.succeed
        self.docker = docker or FakeDocker()
        self.stack = stack
        self.commands: list[Command] = []
        self.fail_set_all_after_up = False
        self.ups = 0

    def succeed(self) -> Result:
        active = self.config[P + "activeColor"]["value"]
        refs: dict[str, str | None] = {}
        for color in COLORS:
            image = self.config.get(f"{P}{color}Image")
            build = self.config.get(f"{P}{color}Build")
            refs[color] = image["value"] if image else built_ref(build["objectValue"]) if build else None
        self.outputs = {"liveColor": active, "imageRefs": refs, "jwt": "[secret]",
                        "images": {c: "sha256:" + "0" * 64 for c, r in refs.items() if r}}
        return Result(0, "Updating (production):\nResources:\n    1 unchanged\n")

    def fail(self) -> Result:
        return Result(255, "Updating (production):\n  ...\nDiagnostics:\n  error: health gate failed for green\n"
                           "Outputs:\n  liveColor: blue\n")

    def run(self, command: Command) -> Result:
        self.commands.append(command)
        if command.argv[0] == "docker":
            return self.docker.run(list(command.argv[1:]))
        argv = list(command.argv[1:])
        assert argv[argv.index("--stack") + 1] == self.stack
        assert "--non-interactive" in argv
        args = argv[: argv.index("--stack")]
        if args == ["config", "--json"]:
            return Result(0, json.dumps(self.config))
        if args[:3] == ["config", "set-all", "--json"]:
            if self.fail_set_all_after_up and self.ups:
                return Result(1, "", "error: could not save the stack config")
            self.config.update(json.loads(args[3]))
            return Result(0, "")
        if args[:2] == ["config", "rm-all"]:
            for key in args[2:]:
                self.config.pop(key, None)
            return Result(0, "")
        if args == ["stack", "output", "--json"]:
            return Result(0, json.dumps(self.outputs))
        if args[:2] == ["stack", "history"]:
            size = int(args[args.index("--page-size") + 1])
            page = int(args[args.index("--page") + 1])
            return Result(0, json.dumps(self.history[(page - 1) * size : page * size]))
        if args[0] == "up":
            self.ups += 1
            return self.on_up(self)
        raise AssertionError(f"unexpected command {command}")

    def subcommands(self) -> list[str]:
        return [" ".join(c.argv[1:3]) for c in self.commands]


def container(name: str, status: str = "running", health: str | None = "healthy", image: str = "sha256:" + "1" * 64,
              label: str | None = None) -> dict[str, Any]:
    """One container as `docker inspect` prints it (only the fields the verbs read)."""
    state: dict[str, Any] = {"Status": status, "Running": status == "running"}
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    labels = {"medusa-bluegreen.image": label} if label else {}
    return {"Name": f"/{name}", "State": state, "Image": image, "Config": {"Image": image, "Labels": labels}}
