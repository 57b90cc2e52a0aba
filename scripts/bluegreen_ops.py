"""Shared by scripts/release.py and scripts/rollback.py: stack config, pulumi commands, runner.

Three layers, kept apart so the logic is testable without Pulumi (Kamal-style):

- pure data: `StackConfig` (what `pulumi config --json` prints) and `ConfigEdit` (keys to set
  and keys to remove), plus `restore_edit`, which undoes an edit exactly;
- command builders: `PulumiCli` turns intents into argv lists and runs nothing;
- the runner: `SubprocessRunner` runs a `Command`, streaming it when asked.

Secrets: config is read without `--show-secrets`, so a secret's value never reaches this code
(its entry is `{"secret": true}`); the keys these scripts edit are refused if they are secret.
"""

from __future__ import annotations

import collections
import json
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

PROJECT = "medusa-bluegreen"  # the config namespace (core/naming.py: PROJECT)
Color = Literal["blue", "green"]
COLORS: tuple[Color, Color] = ("blue", "green")

# One config entry in the format `pulumi config --json` prints and `pulumi config set-all
# --json` reads: {"value": "<string>", "secret": false} or, for an object,
# {"value": "<json>", "objectValue": {...}, "secret": false}; a secret is {"secret": true}.
Entry = Mapping[str, Any]


class OpsError(Exception):
    """A problem the user has to fix; the message says what and how (never a secret)."""


def other_color(color: Color) -> Color:
    return "green" if color == "blue" else "blue"


def as_color(value: object, what: str) -> Color:
    if value == "blue":
        return "blue"
    if value == "green":
        return "green"
    raise OpsError(f"{what} is {value!r}; expected 'blue' or 'green'")


def image_key(color: Color) -> str:
    return f"{color}Image"


def build_key(color: Color) -> str:
    return f"{color}Build"


RELEASE_KEYS = ("activeColor", "blueImage", "greenImage", "blueBuild", "greenBuild")


def string_entry(value: str) -> dict[str, Any]:
    return {"value": value, "secret": False}


def object_entry(value: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "value": json.dumps(value, sort_keys=True, separators=(",", ":")),
        "objectValue": dict(value),
        "secret": False,
    }


# --- stack config ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StackConfig:
    """This project's config keys (without the `medusa-bluegreen:` prefix) -> entry."""

    entries: Mapping[str, Entry]

    @classmethod
    def from_pulumi(cls, data: Mapping[str, Any]) -> StackConfig:
        """From the JSON of `pulumi config --json` (or a history entry's `config`)."""
        prefix = f"{PROJECT}:"
        entries: dict[str, Entry] = {}
        for key, entry in data.items():
            if key.startswith(prefix) and isinstance(entry, Mapping):
                entries[key.removeprefix(prefix)] = entry
        return cls(entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def text(self, key: str) -> str | None:
        """The plain string value of a key; None when absent. Refuses secrets."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.get("secret"):
            raise OpsError(f"{key} is a secret in the stack config; set it in plain text: `pulumi config set {key} ..`")
        value = entry.get("value")
        return value if isinstance(value, str) else None

    def object(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.get("secret"):
            raise OpsError(f"{key} is a secret in the stack config; it must be plain text")
        value = entry.get("objectValue")
        if isinstance(value, Mapping):
            return dict(value)
        text = entry.get("value")
        try:
            decoded = json.loads(text) if isinstance(text, str) else None
        except json.JSONDecodeError:
            decoded = None
        if not isinstance(decoded, dict):
            raise OpsError(f"{key} must be an object (set it with `pulumi config set --path {key}.context ./app`)")
        return decoded

    def active_color(self) -> Color:
        value = self.text("activeColor")
        if value is None:
            raise OpsError("activeColor is not set in the stack config; set it: `pulumi config set activeColor blue`")
        return as_color(value, "activeColor")

    def apply(self, edit: ConfigEdit) -> StackConfig:
        entries = {k: v for k, v in self.entries.items() if k not in edit.remove}
        entries.update(edit.set)
        return StackConfig(entries)


@dataclass(frozen=True)
class ConfigEdit:
    """Keys to set (entries as `pulumi config set-all --json` reads them) and keys to remove."""

    set: Mapping[str, Entry] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.remove)

    def keys(self) -> tuple[str, ...]:
        return (*self.set, *self.remove)

    def describe(self) -> list[str]:
        """One line per change, for logs. Never shows a secret (none is ever set here)."""
        lines = [f"{key} = {_shown(entry)}" for key, entry in self.set.items()]
        lines.extend(f"{key} removed" for key in self.remove)
        return lines


def _shown(entry: Entry) -> str:
    """An entry for logs: objects (builds) show their context and only the names of the rest."""
    if entry.get("secret"):
        return "[secret]"
    value = entry.get("objectValue")
    if isinstance(value, Mapping):
        parts = [f"context={value['context']}" if key == "context" else f"{key}=..." for key in sorted(value)]
        return "{" + ", ".join(parts) + "}"
    return str(entry.get("value"))


def edit(config: StackConfig, values: Mapping[str, Entry | None]) -> ConfigEdit:
    """The edit that gives each key its value (None = absent), skipping keys already so."""
    to_set: dict[str, Entry] = {}
    to_remove: list[str] = []
    for key, entry in values.items():
        current = config.entries.get(key)
        if entry is None:
            if current is not None:
                to_remove.append(key)
        elif current is None or dict(current) != dict(entry):
            to_set[key] = entry
    return ConfigEdit(to_set, tuple(to_remove))


def restore_edit(config: StackConfig, keys: Iterable[str]) -> ConfigEdit:
    """The edit that puts `keys` back exactly as they are in `config` (absent ones removed)."""
    to_set: dict[str, Entry] = {}
    to_remove: list[str] = []
    for key in dict.fromkeys(keys):
        entry = config.entries.get(key)
        if entry is None:
            to_remove.append(key)
        elif entry.get("secret") or "value" not in entry:
            raise OpsError(f"{key} is a secret in the stack config; these scripts only edit plain keys")
        else:
            to_set[key] = dict(entry)
    return ConfigEdit(to_set, tuple(to_remove))


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stream: bool = False  # echo the output live (long runs such as `pulumi up`)

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class PulumiCli:
    """Builds the pulumi command lines; runs nothing."""

    stack: str
    cwd: str | None = None
    binary: str = "pulumi"

    def _command(self, *args: str, stream: bool = False) -> Command:
        cwd = ("--cwd", self.cwd) if self.cwd else ()
        return Command((self.binary, *args, "--stack", self.stack, "--non-interactive", *cwd), stream)

    def config_json(self) -> Command:
        return self._command("config", "--json")

    def stack_outputs(self) -> Command:
        return self._command("stack", "output", "--json")

    def history(self, page: int, page_size: int) -> Command:
        return self._command(
            "stack", "history", "--json", "--show-secrets=false", "--page-size", str(page_size), "--page", str(page)
        )

    def up(self, message: str) -> Command:
        return self._command("up", "--yes", "--skip-preview", "--message", message, stream=True)

    def apply(self, change: ConfigEdit) -> list[Command]:
        """`config rm-all` for removed keys, then `config set-all --json` for the rest."""
        commands = []
        if change.remove:
            commands.append(self._command("config", "rm-all", *(f"{PROJECT}:{k}" for k in change.remove)))
        if change.set:
            payload = {f"{PROJECT}:{k}": dict(v) for k, v in change.set.items()}
            commands.append(self._command("config", "set-all", "--json", json.dumps(payload, sort_keys=True)))
        return commands


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 40) -> str:
        """The end of the output; for `pulumi up`, from its last "Diagnostics:" (the errors)."""
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).rstrip()
        all_lines = text.splitlines()
        starts = [i for i, line in enumerate(all_lines) if line.startswith("Diagnostics:")]
        if starts:
            section = all_lines[starts[-1] :]
            # The section ends at the next unindented heading (Outputs:, Resources:, ...).
            end = next((i for i, line in enumerate(section) if i and line and not line[0].isspace()), len(section))
            return "\n".join(section[:end][:lines]).rstrip()
        return "\n".join(all_lines[-lines:])


class Runner(Protocol):
    def run(self, command: Command) -> Result: ...


class SubprocessRunner:
    """Runs commands for real. Streamed ones are echoed line by line; their last lines are kept."""

    def __init__(self, echo: Any = None, keep_lines: int = 400) -> None:
        self.echo = echo if echo is not None else sys.stdout
        self.keep_lines = keep_lines

    def run(self, command: Command) -> Result:
        try:
            if not command.stream:
                done = subprocess.run(command.argv, capture_output=True, text=True, check=False)
                return Result(done.returncode, done.stdout, done.stderr)
            kept: collections.deque[str] = collections.deque(maxlen=self.keep_lines)
            with subprocess.Popen(
                command.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            ) as process:
                assert process.stdout is not None
                for line in process.stdout:
                    self.echo.write(line)
                    self.echo.flush()
                    kept.append(line)
            return Result(process.returncode, "".join(kept))
        except FileNotFoundError:
            raise OpsError(
                f"{command.argv[0]!r} not found on PATH (install the Pulumi CLI, or `source scripts/dev/env.sh`)"
            ) from None


def run_checked(runner: Runner, command: Command, what: str) -> Result:
    result = runner.run(command)
    if not result.ok:
        raise OpsError(f"{what} failed (exit {result.returncode}): {command.argv[0]} {' '.join(command.argv[1:3])}\n"
                       f"{result.tail()}")
    return result


def read_json(runner: Runner, command: Command, what: str) -> Any:
    result = run_checked(runner, command, what)
    try:
        return json.loads(result.stdout or "null")
    except json.JSONDecodeError as error:
        raise OpsError(f"{what}: pulumi printed something that is not JSON ({error})") from None


def read_config(runner: Runner, cli: PulumiCli) -> StackConfig:
    data = read_json(runner, cli.config_json(), "reading the stack config")
    if not isinstance(data, Mapping):
        raise OpsError("reading the stack config: expected a JSON object from `pulumi config --json`")
    return StackConfig.from_pulumi(data)


def read_outputs(runner: Runner, cli: PulumiCli) -> dict[str, Any]:
    data = read_json(runner, cli.stack_outputs(), "reading the stack outputs")
    return dict(cast(Mapping[str, Any], data)) if isinstance(data, Mapping) else {}


def apply_edit(runner: Runner, cli: PulumiCli, change: ConfigEdit, log: Any) -> None:
    for line in change.describe():
        print(f"  {line}", file=log)
    for command in cli.apply(change):
        run_checked(runner, command, "changing the stack config")


def image_refs(outputs: Mapping[str, Any]) -> dict[Color, str | None]:
    """The `imageRefs` stack output: the image ref each color runs (None when it runs none)."""
    raw = outputs.get("imageRefs")
    refs: dict[Color, str | None] = {"blue": None, "green": None}
    if isinstance(raw, Mapping):
        for color in COLORS:
            value = raw.get(color)
            refs[color] = value if isinstance(value, str) and value else None
    return refs


def describe_outputs(outputs: Mapping[str, Any], colors: Sequence[Color] = COLORS) -> list[str]:
    """Summary lines: live color, each color's image ref and id, public URL."""
    if not outputs:
        return []
    refs = image_refs(outputs)
    ids = outputs.get("images") if isinstance(outputs.get("images"), Mapping) else {}
    live = outputs.get("liveColor")
    lines = [f"live color: {live}"]
    for color in colors:
        role = "live" if color == live else "idle"
        image_id = cast(Mapping[str, Any], ids).get(color)
        suffix = f" ({image_id})" if isinstance(image_id, str) else ""
        lines.append(f"{color} ({role}): {refs[color] or '-'}{suffix}")
    if isinstance(outputs.get("publicUrl"), str):
        lines.append(f"public URL: {outputs['publicUrl']}")
    return lines
