"""Stack config, pulumi command lines and the runner: what every verb of the CLI builds on.

- pure data: `StackConfig` (what `pulumi config --json` prints), `ConfigEdit` (keys to set and
  keys to remove) and `ConfigChange` (an edit and the edit that undoes it exactly);
- command builders: `PulumiCli` turns intents into `Command`s (argv lists) and runs nothing;
- the runner: `SubprocessRunner` runs a `Command` in the stack's environment, capturing it,
  streaming it (long runs such as `pulumi up`) or attaching it to the terminal (`docker logs -f`);
- `apply_and_up`: the one home of "change the config, run `pulumi up`, put the config back
  exactly if anything fails" that release, switch and rollback share.

Secrets: config is read without `--show-secrets`, so a secret's value never reaches this code
(its entry is `{"secret": true}`); the keys these tools edit are refused if they are secret.
"""

from __future__ import annotations

import collections
import functools
import json
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO, cast

from core.naming import COLORS, PROJECT, Color

# One config entry in the format `pulumi config --json` prints and `pulumi config set-all
# --json` reads: {"value": "<string>", "secret": false} or, for an object,
# {"value": "<json>", "objectValue": {...}, "secret": false}; a secret is {"secret": true}.
Entry = Mapping[str, Any]



@functools.cache
def program_default(field_name: str) -> str:
    """The program's own default of a top-level key (core/settings), for a stack that leaves it
    unset. Imported on use: the settings models take a while to build, and --help needs none."""
    from core.settings import Settings

    return str(Settings.model_fields[field_name].default)


class OpsError(Exception):
    """A problem the user has to fix; the message says what and how (never a secret)."""

    exit_code = 2


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
MAINTENANCE_KEY = "maintenance"
# The only keys the CLI's verbs ever edit; everything else in the stack config is the user's.
OPS_KEYS = (*RELEASE_KEYS, MAINTENANCE_KEY)


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

    def prefix(self) -> str:
        return self.text("prefix") or program_default("prefix")

    def docker_host(self) -> str:
        return self.text("dockerHost") or program_default("docker_host")

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
            raise OpsError(f"{key} is a secret in the stack config; these tools only edit plain keys")
        else:
            to_set[key] = dict(entry)
    return ConfigEdit(to_set, tuple(to_remove))


@dataclass(frozen=True)
class ConfigChange:
    """A config edit and the edit that undoes it exactly."""

    forward: ConfigEdit
    undo: ConfigEdit

    @classmethod
    def of(cls, config: StackConfig, values: Mapping[str, Entry | None]) -> ConfigChange:
        forward = edit(config, values)
        assert set(forward.keys()) <= set(OPS_KEYS), forward.keys()
        return cls(forward, restore_edit(config, forward.keys()))


def pin_values(color: Color, ref: str | None) -> dict[str, Entry | None]:
    """The values that pin `color` to the image ref it runs (its build removed)."""
    return {image_key(color): string_entry(ref) if ref else None, build_key(color): None}


def pin_if_built(config: StackConfig, color: Color, refs: Mapping[Color, str | None]) -> dict[str, Entry | None]:
    """Only the active color may be built: the values that pin `color`, about to go idle, to
    the ref it runs (stack output imageRefs); none when it is not built."""
    if build_key(color) not in config:
        return {}
    ref = refs.get(color)
    if ref is None:
        raise OpsError(
            f"{color} is built from {build_key(color)} and the stack output imageRefs has no ref for it; "
            f"pin it first: set {image_key(color)} to the ref it runs and remove {build_key(color)}"
        )
    return pin_values(color, ref)


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stream: bool = False  # echo the output live and keep its end (long runs such as `pulumi up`)
    attach: bool = False  # the terminal's own stdout/stderr, nothing captured (`docker logs -f`)

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

    def version(self) -> Command:
        return Command((self.binary, "version"))


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


MISSING_TOOL_HINTS = {
    "pulumi": "install the Pulumi CLI, or build this repo's engine: scripts/engine/bootstrap.sh",
    "docker": "install the Docker CLI (the docker client; the engine may be remote)",
    "ssh": "install an OpenSSH client",
}


class SubprocessRunner:
    """Runs commands for real, in `env` (None: this process's). Streamed ones are echoed line by
    line and their last lines kept; attached ones write to the terminal directly."""

    def __init__(self, env: Mapping[str, str] | None = None, echo: TextIO | None = None,
                 keep_lines: int = 400) -> None:
        self.env = dict(env) if env is not None else None
        self.echo = echo if echo is not None else sys.stdout
        self.keep_lines = keep_lines

    def run(self, command: Command) -> Result:
        try:
            if command.attach:
                return Result(subprocess.run(command.argv, env=self.env, check=False).returncode, "")
            if not command.stream:
                done = subprocess.run(command.argv, env=self.env, capture_output=True, text=True, check=False)
                return Result(done.returncode, done.stdout, done.stderr)
            kept: collections.deque[str] = collections.deque(maxlen=self.keep_lines)
            with subprocess.Popen(
                command.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            ) as process:
                assert process.stdout is not None
                for line in process.stdout:
                    self.echo.write(line)
                    self.echo.flush()
                    kept.append(line)
            return Result(process.returncode, "".join(kept))
        except FileNotFoundError:
            tool = command.argv[0]
            hint = MISSING_TOOL_HINTS.get(tool.rsplit("/", 1)[-1], "install it")
            raise OpsError(f"{tool!r} not found on PATH: {hint}") from None


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


def apply_edit(runner: Runner, cli: PulumiCli, change: ConfigEdit, log: TextIO) -> None:
    for line in change.describe():
        print(f"  {line}", file=log)
    for command in cli.apply(change):
        run_checked(runner, command, "changing the stack config")


# Exit codes of a config change + `pulumi up` (release, switch, rollback).
DONE, UP_FAILED, EDIT_FAILED, RESTORE_FAILED = 0, 1, 2, 3


def restore(runner: Runner, cli: PulumiCli, undo: ConfigEdit, log: TextIO, who: str) -> bool:
    """Puts the config back; on failure lists the keys to restore by hand."""
    try:
        apply_edit(runner, cli, undo, log)
    except OpsError as error:
        print(f"{who}: could not restore the config: {error}", file=log)
        print(f"{who}: restore these keys by hand:\n  " + "\n  ".join(undo.describe()), file=log)
        return False
    return True


def apply_and_up(runner: Runner, cli: PulumiCli, change: ConfigChange, up: Command | None, log: TextIO,
                 who: str, still_live: str | None = None) -> int:
    """Applies `change.forward`, then runs `up` (None: config only). When the edit or the up
    fails, applies `change.undo`, so the config again describes what is live.

    DONE; UP_FAILED (config restored, pulumi's diagnostics printed); EDIT_FAILED (config
    restored); RESTORE_FAILED (the keys to fix by hand are printed).
    """
    try:
        apply_edit(runner, cli, change.forward, log)
    except OpsError as error:
        print(f"{who}: {error}", file=log)
        return EDIT_FAILED if restore(runner, cli, change.undo, log, who) else RESTORE_FAILED
    if up is None:
        return DONE
    result = runner.run(up)
    if result.ok:
        return DONE
    print(f"{who}: pulumi up failed (exit {result.returncode}); restoring the config", file=log)
    if not restore(runner, cli, change.undo, log, who):
        return RESTORE_FAILED
    live = f"{still_live} is still live; " if still_live else ""
    print(f"{who}: {live}config restored. Last lines of pulumi up:", file=log)
    print(result.tail(), file=log)
    return UP_FAILED


# --- outputs --------------------------------------------------------------------------------


def image_refs(outputs: Mapping[str, Any]) -> dict[Color, str | None]:
    """The `imageRefs` stack output: the image ref each color runs (None when it runs none)."""
    raw = outputs.get("imageRefs")
    refs: dict[Color, str | None] = {"blue": None, "green": None}
    if isinstance(raw, Mapping):
        for color in COLORS:
            value = raw.get(color)
            refs[color] = value if isinstance(value, str) and value else None
    return refs


def image_ids(outputs: Mapping[str, Any]) -> dict[Color, str | None]:
    """The `images` stack output: the image id of each color that has a server."""
    raw = outputs.get("images")
    ids: dict[Color, str | None] = {"blue": None, "green": None}
    if isinstance(raw, Mapping):
        for color in COLORS:
            value = raw.get(color)
            ids[color] = value if isinstance(value, str) and value else None
    return ids


def describe_analysis(verdict: Mapping[str, Any]) -> str:
    """One line for the stack output postFlipAnalysis: the verdict and its figures."""
    ratio, p95 = verdict.get("error_ratio"), verdict.get("p95_seconds")
    figures = (
        f"{verdict.get('color')}: {verdict.get('requests')} live requests in {verdict.get('watched_seconds')} s, "
        f"5xx {'-' if ratio is None else f'{ratio:.1%}'}, p95 {'-' if p95 is None else f'{p95:.3f} s'}"
    )
    note = f" ({verdict['reason']})" if verdict.get("reason") else ""
    return f"{'passed' if verdict.get('healthy') else 'failed'}, {figures}{note}"


def describe_outputs(outputs: Mapping[str, Any], colors: Sequence[Color] = COLORS) -> list[str]:
    """Summary lines: live color, each color's image ref and id, public URL."""
    if not outputs:
        return []
    refs, ids = image_refs(outputs), image_ids(outputs)
    live = outputs.get("liveColor")
    lines = [f"live color: {live}"]
    for color in colors:
        role = "live" if color == live else "idle"
        suffix = f" ({ids[color]})" if ids[color] else ""
        lines.append(f"{color} ({role}): {refs[color] or '-'}{suffix}")
    if isinstance(outputs.get("publicUrl"), str):
        lines.append(f"public URL: {outputs['publicUrl']}")
    if isinstance(outputs.get("postFlipAnalysis"), Mapping):
        lines.append(f"post-flip analysis: {describe_analysis(outputs['postFlipAnalysis'])}")
    return lines
