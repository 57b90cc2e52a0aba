#!/usr/bin/env python3
"""Roll back to an earlier deployment from `pulumi stack history`, or sync config to what is live.

    scripts/rollback.py --stack production                 the previous deployment
    scripts/rollback.py --stack production --to 12         the deployment of update 12
    scripts/rollback.py --stack production --dry-run       show the history and the plan only
    scripts/rollback.py --stack production --to latest --config-only
                                                           set the config to what is live, no up

Every history entry carries the stack config of that update (secrets blinded), so a past
deployment is: its activeColor, blueImage and greenImage. Rolling back serves that
deployment's live image again, and never touches the color that is live now: the image goes to
the idle color (reused as it is when the idle color already runs it, so a warm rollback is just
a flip), the usual gate proves it, and traffic flips to it. The color that was live stays
warm, so the rollback itself can be undone at once. Without `--to`, the target is the newest
successful update whose activeColor or images differ from the latest successful update (what
is live). (Replacing the live color's image instead would replace the container that is
serving: measured, 18 of 900 requests failed.)

Update numbers: Pulumi Cloud numbers updates; self-managed backends (file://, s3://) record
version 0 for all of them, so there an update's number is its position in the history, oldest
first (1 = the first update). `--dry-run` lists them.

A color released with `--build` has no image ref in its own history entry (release.py pins it
right after the update); it is read from the next newer entry, which carries the pin.

`--config-only` is for CI, where the stack config file is a fresh checkout that does not know
which color is live: `--to latest --config-only` copies the live deployment's activeColor and
images into it before a release, preview or switch (and does nothing on a stack never updated).

Exit codes: 0 done, 1 `pulumi up` failed (config restored), 2 usage, history or config problem
(config unchanged or restored), 3 the config could not be restored (the message lists the keys).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from bluegreen_ops import (
    COLORS,
    RELEASE_KEYS,
    Color,
    ConfigEdit,
    Entry,
    OpsError,
    PulumiCli,
    Runner,
    StackConfig,
    SubprocessRunner,
    apply_edit,
    as_color,
    build_key,
    describe_outputs,
    edit,
    image_key,
    other_color,
    read_config,
    read_json,
    read_outputs,
    restore_edit,
    string_entry,
)

# Tag prefix of images built from an app directory (core/naming.py: BUILD_TAG_PREFIX).
BUILT_TAG_PREFIX = "src-"
PAGE_SIZE = 100


class NoHistoryError(OpsError):
    pass


@dataclass(frozen=True)
class Deployment:
    """What a successful update left live: the active color and each color's image ref."""

    active: Color
    blue: str | None
    green: str | None

    def image(self, color: Color) -> str | None:
        return self.blue if color == "blue" else self.green

    def describe(self) -> str:
        return f"{self.active} live; blue={self.blue or '-'} green={self.green or '-'}"


@dataclass(frozen=True)
class HistoryEntry:
    number: int  # Pulumi's version, or the position (oldest = 1) where the backend records 0
    kind: str  # update, refresh, destroy, ...
    result: str  # succeeded, failed, in-progress
    start_time: str
    message: str
    deployment: Deployment | None  # None when it cannot be read from the entry's config
    problem: str | None  # why `deployment` is None
    signature: tuple[str, ...]  # activeColor and both colors' image refs (or build settings), to compare

    @property
    def succeeded_update(self) -> bool:
        return self.kind == "update" and self.result == "succeeded"

    def describe(self) -> str:
        state = self.deployment.describe() if self.deployment else f"({self.problem})"
        return f"#{self.number} {self.start_time} {self.kind} {self.result}: {state}"


# --- pure logic: history -----------------------------------------------------------------------


def _source(config: StackConfig, color: Color) -> str:
    """How the entry's config gives the color its image: 'ref', 'build:{...}', or ''."""
    ref = config.text(image_key(color))
    if ref:
        return ref
    built = config.object(build_key(color))
    return f"build:{sorted(built.items())}" if built is not None else ""


def _resolve(config: StackConfig, newer: StackConfig | None, color: Color) -> str | None:
    """The color's image ref in this entry; a build is resolved through the pin in `newer`."""
    ref = config.text(image_key(color))
    if ref:
        return ref
    built = config.object(build_key(color))
    if built is None:
        return None
    pinned = newer.text(image_key(color)) if newer is not None and build_key(color) not in newer else None
    if pinned and pinned.rsplit(":", 1)[-1].startswith(BUILT_TAG_PREFIX):
        return pinned
    raise OpsError(
        f"{color} was built from {built.get('context')!r} and the image it was built as is not in the history"
    )


def parse_history(raw: Sequence[Mapping[str, Any]], current: StackConfig | None = None) -> list[HistoryEntry]:
    """Entries of `pulumi stack history --json` (newest first, as printed) into HistoryEntry.

    `current`, the stack config now, is what came after the newest entry (it holds the pin
    release.py made after that update).
    """
    configs = [StackConfig.from_pulumi(item.get("config") or {}) for item in raw]
    entries = []
    for index, item in enumerate(raw):
        version = item.get("version")
        number = version if isinstance(version, int) and version > 0 else len(raw) - index
        config = configs[index]
        newer = configs[index - 1] if index > 0 else current
        deployment: Deployment | None = None
        problem: str | None = None
        signature: tuple[str, ...] = ()
        try:
            active = as_color(config.text("activeColor"), "activeColor")
            signature = (active, *(_source(config, color) for color in COLORS))
            deployment = Deployment(active, _resolve(config, newer, "blue"), _resolve(config, newer, "green"))
            signature = (active, deployment.blue or "", deployment.green or "")
        except OpsError as error:
            problem = str(error)
        entries.append(
            HistoryEntry(
                number=number,
                kind=str(item.get("kind", "")),
                result=str(item.get("result", "")),
                start_time=str(item.get("startTime", "")),
                message=str(item.get("message", "")),
                deployment=deployment,
                problem=problem,
                signature=signature,
            )
        )
    return entries


def choose_target(entries: Sequence[HistoryEntry], to: int | str | None) -> tuple[HistoryEntry, HistoryEntry]:
    """(what is live: the latest successful update, the update to go back to)."""
    succeeded = [e for e in entries if e.succeeded_update]
    if not succeeded:
        raise NoHistoryError("the stack history has no successful update")
    current = succeeded[0]
    if to == "latest":
        target = current
    elif isinstance(to, int):
        found = [e for e in entries if e.number == to]
        if not found:
            raise OpsError(f"update {to} is not in the stack history (see --dry-run for the list)")
        target = found[0]
        if not target.succeeded_update:
            raise OpsError(f"update {to} is not a successful update ({target.kind}, {target.result}); choose another")
    else:
        older = [e for e in succeeded[1:] if e.signature != current.signature]
        if not older:
            raise OpsError("no earlier successful update differs in activeColor or images; nothing to roll back to")
        target = older[0]
    if target.deployment is None:
        raise OpsError(f"update {target.number}: {target.problem}; choose another with --to")
    return current, target


def plan_rollback(config: StackConfig, live: Deployment, target: Deployment) -> tuple[ConfigEdit, ConfigEdit]:
    """(the edit that serves `target`'s live image without touching the live color, its undo).

    `live` is what runs now. Both colors end up pinned to image refs (builds removed): only the
    active color may be built, and a rollback builds nothing.
    """
    want = target.image(target.active)
    serving, idle = live.active, other_color(live.active)
    if want == live.image(serving):
        active, images = serving, {serving: want, idle: live.image(idle)}
    else:  # the idle color gets it (already has it, for a warm rollback) and goes live
        active, images = idle, {serving: live.image(serving), idle: want}
    values: dict[str, Entry | None] = {"activeColor": string_entry(active)}
    for color in COLORS:
        ref = images[color]
        values[image_key(color)] = string_entry(ref) if ref else None
        values[build_key(color)] = None
    forward = edit(config, values)
    assert set(forward.keys()) <= set(RELEASE_KEYS)
    return forward, restore_edit(config, forward.keys())


def plan_config_sync(config: StackConfig, target: Deployment) -> tuple[ConfigEdit, ConfigEdit]:
    """(the edit that makes the config describe `target` exactly, the edit that undoes it)."""
    values: dict[str, Entry | None] = {"activeColor": string_entry(target.active)}
    for color in COLORS:
        ref = target.image(color)
        values[image_key(color)] = string_entry(ref) if ref else None
        values[build_key(color)] = None
    forward = edit(config, values)
    assert set(forward.keys()) <= set(RELEASE_KEYS)
    return forward, restore_edit(config, forward.keys())


# --- running it -----------------------------------------------------------------------------


def read_history(runner: Runner, cli: PulumiCli, current: StackConfig) -> list[HistoryEntry]:
    """All of the stack's history, a page at a time (the CLI's default page is 10 entries)."""
    raw: list[Mapping[str, Any]] = []
    for page in range(1, 1000):
        data = read_json(runner, cli.history(page, PAGE_SIZE), "reading the stack history")
        items = [item for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []
        raw.extend(items)
        if len(items) < PAGE_SIZE:
            break
    return parse_history(raw, current)


def rollback(
    runner: Runner, cli: PulumiCli, to: int | str | None, dry_run: bool, config_only: bool, out: TextIO, log: TextIO
) -> int:
    config = read_config(runner, cli)
    entries = read_history(runner, cli, config)
    try:
        current, target = choose_target(entries, to)
    except NoHistoryError:
        if config_only and to == "latest":
            print(f"rollback.py: stack {cli.stack} has no successful update yet; config left as it is", file=log)
            return 0
        raise
    assert target.deployment is not None and current.deployment is not None
    if config_only:
        forward, undo = plan_config_sync(config, target.deployment)
    else:
        forward, undo = plan_rollback(config, current.deployment, target.deployment)
    up = cli.up(f"rollback.py: back to update {target.number} ({target.deployment.describe()})")

    print(f"rollback.py: stack {cli.stack}", file=log)
    print(f"  live:   {current.describe()}", file=log)
    print(f"  target: {target.describe()}", file=log)
    if dry_run:
        print("recent updates (newest first):", file=out)
        for entry in entries[:15]:
            print(f"  {entry.describe()}", file=out)
        print("config changes:" if forward else "config changes: none", file=out)
        for line in forward.describe():
            print(f"  {line}", file=out)
        for command in [*cli.apply(forward), *([] if config_only else [up])]:
            print(f"  would run: {command}", file=out)
        return 0

    try:
        apply_edit(runner, cli, forward, log)
    except OpsError as error:
        print(f"rollback.py: {error}", file=log)
        return 2 if restore(runner, cli, undo, log) else 3
    if config_only:
        print(f"rollback.py: config set to update {target.number} ({target.deployment.describe()}); no pulumi up",
              file=out)
        return 0

    result = runner.run(up)
    if not result.ok:
        print(f"rollback.py: pulumi up failed (exit {result.returncode}); restoring the config", file=log)
        if not restore(runner, cli, undo, log):
            return 3
        print("rollback.py: config restored. Last lines of pulumi up:", file=log)
        print(result.tail(), file=log)
        return 1

    print(f"rolled back: stack {cli.stack} is at update {target.number}'s deployment", file=out)
    try:
        for line in describe_outputs(read_outputs(runner, cli)):
            print(f"  {line}", file=out)
    except OpsError as error:
        print(f"rollback.py: warning: {error}", file=log)
    return 0


def restore(runner: Runner, cli: PulumiCli, undo: ConfigEdit, log: TextIO) -> bool:
    try:
        apply_edit(runner, cli, undo, log)
    except OpsError as error:
        print(f"rollback.py: could not restore the config: {error}", file=log)
        print("rollback.py: restore these keys by hand:\n  " + "\n  ".join(undo.describe()), file=log)
        return False
    return True


def parse_to(value: str) -> int | str:
    if value == "latest":
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an update number or 'latest'") from None
    if number < 1:
        raise argparse.ArgumentTypeError("update numbers start at 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--stack", required=True, help="stack name, e.g. production")
    parser.add_argument("--to", type=parse_to, default=None, metavar="VERSION",
                        help="update number to go back to (see --dry-run), or 'latest' (what is live)")
    parser.add_argument("--dry-run", action="store_true", help="show the history and the plan; change nothing")
    parser.add_argument("--config-only", action="store_true", help="set the config but do not run pulumi up")
    parser.add_argument("--cwd", default=None, help="the Pulumi project directory (default: current directory)")
    args = parser.parse_args(argv)
    cli = PulumiCli(stack=args.stack, cwd=args.cwd)
    try:
        return rollback(SubprocessRunner(echo=sys.stdout), cli, args.to, args.dry_run, args.config_only,
                        sys.stdout, sys.stderr)
    except OpsError as error:
        print(f"rollback.py: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
