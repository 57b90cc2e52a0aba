"""`bluegreen rollback [N]`: roll back to an earlier deployment from `pulumi stack history`, or
sync the config to what is live.

    bin/bluegreen --stack production rollback              the previous deployment
    bin/bluegreen --stack production rollback 12           the deployment of update 12
    bin/bluegreen --stack production rollback --dry-run    show the history and the plan only
    bin/bluegreen --stack production rollback latest --config-only
                                                           set the config to what is live, no up

Rolling back serves that deployment's live image again, and never touches the color that is
live now: the image goes to the idle color (reused as it is when the idle color already runs
it, so a warm rollback is just a flip), the usual gate proves it, and traffic flips to it. The
color that was live stays warm, so the rollback itself can be undone at once. Without N, the
target is the newest successful update whose activeColor or images differ from the latest
successful update (what is live). (Replacing the live color's image instead would replace the
container that is serving: measured, 18 of 900 requests failed.) Update numbers: see
ops/history.py; `--dry-run` lists them.

`--config-only` is for CI, where the stack config file is a fresh checkout that does not know
which color is live: `rollback latest --config-only` copies the live deployment's activeColor
and images into it before a release, preview or switch (and does nothing on a stack never
updated).

Exit codes: 0 done, 1 `pulumi up` failed (config restored), 2 usage, history or config problem
(config unchanged or restored), 3 the config could not be restored (the message lists the keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TextIO

from core.naming import COLORS, Color, other_color
from ops.environment import Target
from ops.history import Deployment, HistoryEntry, NoHistoryError, read_history
from ops.pulumi_cli import (
    DONE,
    ConfigChange,
    Entry,
    OpsError,
    PulumiCli,
    Runner,
    StackConfig,
    apply_and_up,
    build_key,
    describe_outputs,
    image_key,
    read_config,
    read_outputs,
    string_entry,
)

WHO = "bluegreen rollback"
To = int | Literal["latest"] | None


# --- pure logic -----------------------------------------------------------------------------


def choose_target(entries: Sequence[HistoryEntry], to: To) -> tuple[HistoryEntry, HistoryEntry]:
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
        raise OpsError(f"update {target.number}: {target.problem}; choose another update number")
    return current, target


def _deployment_values(active: Color, images: Mapping[Color, str | None]) -> dict[str, Entry | None]:
    """Both colors pinned to image refs (builds removed): only the active color may be built,
    and a rollback builds nothing."""
    values: dict[str, Entry | None] = {"activeColor": string_entry(active)}
    for color in COLORS:
        ref = images[color]
        values[image_key(color)] = string_entry(ref) if ref else None
        values[build_key(color)] = None
    return values


def plan_rollback(config: StackConfig, live: Deployment, target: Deployment) -> ConfigChange:
    """The change that serves `target`'s live image without touching the live color. `live` is
    what runs now."""
    want = target.image(target.active)
    serving, idle = live.active, other_color(live.active)
    if want == live.image(serving):
        active, images = serving, {serving: want, idle: live.image(idle)}
    else:  # the idle color gets it (already has it, for a warm rollback) and goes live
        active, images = idle, {serving: live.image(serving), idle: want}
    return ConfigChange.of(config, _deployment_values(active, images))


def plan_config_sync(config: StackConfig, target: Deployment) -> ConfigChange:
    """The change that makes the config describe `target` exactly."""
    return ConfigChange.of(config, _deployment_values(target.active, {c: target.image(c) for c in COLORS}))


# --- running it -----------------------------------------------------------------------------


def rollback(runner: Runner, cli: PulumiCli, target: Target, to: To, dry_run: bool, config_only: bool,
             out: TextIO, log: TextIO) -> int:
    config = read_config(runner, cli)
    entries = read_history(runner, cli, config)
    try:
        current, goal = choose_target(entries, to)
    except NoHistoryError:
        if config_only and to == "latest":
            print(f"{WHO}: stack {cli.stack} has no successful update yet; config left as it is", file=log)
            return 0
        raise
    assert goal.deployment is not None and current.deployment is not None
    if config_only:
        change = plan_config_sync(config, goal.deployment)
    else:
        change = plan_rollback(config, current.deployment, goal.deployment)
    up = None if config_only else cli.up(f"{WHO}: back to update {goal.number} ({goal.deployment.describe()})")

    print(f"{WHO}: stack {cli.stack}", file=log)
    print(f"  live:   {current.describe()}", file=log)
    print(f"  target: {goal.describe()}", file=log)
    if dry_run:
        print("recent updates (newest first):", file=out)
        for entry in entries[:15]:
            print(f"  {entry.describe()}", file=out)
        print("config changes:" if change.forward else "config changes: none", file=out)
        for line in change.forward.describe():
            print(f"  {line}", file=out)
        for command in [*cli.apply(change.forward), *([up] if up else [])]:
            print(f"  would run: {target.pulumi_command(command)}", file=out)
        return 0

    code = apply_and_up(runner, cli, change, up, log, WHO)
    if code != DONE:
        return code
    if config_only:
        print(f"{WHO}: config set to update {goal.number} ({goal.deployment.describe()}); no pulumi up",
              file=out)
        return 0
    print(f"rolled back: stack {cli.stack} is at update {goal.number}'s deployment", file=out)
    try:
        for line in describe_outputs(read_outputs(runner, cli)):
            print(f"  {line}", file=out)
    except OpsError as error:
        print(f"{WHO}: warning: {error}", file=log)
    return 0
