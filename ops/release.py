"""`bluegreen release`: release to the idle color and flip to it, in one `pulumi up`; undo the
config if it fails.

    bin/bluegreen --stack production release --image ghcr.io/acme/shop:1.4.2
    bin/bluegreen release --build ./app

1. reads the stack config (`pulumi config --json`); idle = the color that is not activeColor;
2. sets the idle color's image (`--image`) or build context (`--build`; other build settings
   such as args are taken from the live color's build, if it has one), removes the other of
   the two, sets activeColor to the idle color. If the live color is itself built (not yet
   pinned), it is first pinned to the ref it runs (stack output `imageRefs`), because only the
   active color may be built;
3. runs `pulumi up --yes --skip-preview` (the program health-gates the new color before the
   flip, and flips back if the post-switch check fails);
4. success: pins the now-live color to the ref it runs (`<color>Image` = stack output
   `imageRefs.<color>`, `<color>Build` removed) and prints a summary;
   failure: puts every key it changed back exactly as it was, so the config again describes
   what is live, prints the tail of pulumi's output and exits 1.

Exit codes: 0 released, 1 `pulumi up` failed (config restored), 2 usage or config problem
(config unchanged or restored), 3 the config could not be restored (the message lists the keys).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from core.naming import Color, other_color
from ops.environment import Target
from ops.pulumi_cli import (
    DONE,
    ConfigChange,
    ConfigEdit,
    Entry,
    OpsError,
    PulumiCli,
    Runner,
    StackConfig,
    apply_and_up,
    apply_edit,
    build_key,
    describe_outputs,
    edit,
    image_key,
    image_refs,
    object_entry,
    pin_if_built,
    pin_values,
    read_config,
    read_outputs,
    string_entry,
)

WHO = "bluegreen release"


@dataclass(frozen=True)
class ImageSource:
    ref: str


@dataclass(frozen=True)
class BuildSource:
    context: str  # as it goes into config: relative to the project directory


Source = ImageSource | BuildSource


@dataclass(frozen=True)
class ReleasePlan:
    live: Color  # live before the release
    target: Color  # the idle color, live after it
    change: ConfigChange  # its undo puts the config back exactly
    message: str  # the update message recorded in `pulumi stack history`


# --- pure logic -----------------------------------------------------------------------------


def check_image_ref(ref: str) -> str:
    """A light check; the program validates refs fully before touching anything."""
    pinned = ":" in ref.rsplit("/", 1)[-1] or "@" in ref
    if not ref or any(ch.isspace() for ch in ref) or not pinned:
        raise OpsError(f"--image {ref!r} is not a pinned image reference (name:tag or name@sha256:...)")
    return ref


def plan_release(config: StackConfig, source: Source, live_refs: Mapping[Color, str | None]) -> ReleasePlan:
    """The config change of a release. `live_refs`: stack output imageRefs."""
    live = config.active_color()
    target = other_color(live)
    values: dict[str, Entry | None] = {"activeColor": string_entry(target)}

    if isinstance(source, ImageSource):
        values[image_key(target)] = string_entry(check_image_ref(source.ref))
        values[build_key(target)] = None
        what = source.ref
    else:
        inherited = config.object(build_key(live)) or {}
        values[build_key(target)] = object_entry({**inherited, "context": source.context})
        values[image_key(target)] = None
        what = f"build of {source.context}"
    values.update(pin_if_built(config, live, live_refs))

    return ReleasePlan(
        live=live,
        target=target,
        change=ConfigChange.of(config, values),
        message=f"{WHO}: {target} <- {what}, flip {live} -> {target}",
    )


def plan_pin(config: StackConfig, outputs: Mapping[str, Any]) -> ConfigEdit:
    """After a successful up: the live color's image set to the ref it runs, its build removed."""
    color = config.active_color()
    if outputs.get("liveColor") != color:
        raise OpsError(f"stack output liveColor is {outputs.get('liveColor')!r}, expected {color!r}; not pinning")
    ref = image_refs(outputs)[color]
    if ref is None:
        raise OpsError(f"stack output imageRefs has no ref for {color}; {build_key(color)} left as it is")
    return edit(config, pin_values(color, ref))


def build_source(directory: str, project_dir: Path, caller_dir: Path) -> BuildSource:
    """--build DIR (relative to where the user is) as the config stores it: relative to the
    project directory, where the program resolves it, so the config stays valid elsewhere."""
    path = (caller_dir / directory).resolve()
    if not path.is_dir():
        raise OpsError(f"--build {directory!r} is not a directory")
    return BuildSource(os.path.relpath(path, project_dir.resolve()))


def rollback_hint(config: StackConfig, previous: Color, target: Target) -> str:
    """How to undo the release: a flip back when the previous color stays warm."""
    if config.text("otherColor") == "stopped":
        return f"  roll back: {target.command('rollback')}   (otherColor=stopped: {previous} was removed)"
    return f"  instant rollback: {target.command('switch', previous)}   (or {target.command('rollback')})"


# --- running it -----------------------------------------------------------------------------


def release(runner: Runner, cli: PulumiCli, target: Target, source: Source, out: TextIO, log: TextIO) -> int:
    config = read_config(runner, cli)
    refs = image_refs(read_outputs(runner, cli)) if build_key(config.active_color()) in config else {}
    plan = plan_release(config, source, refs)

    print(f"{WHO}: stack {cli.stack}: {plan.live} is live; releasing to {plan.target}", file=log)
    code = apply_and_up(runner, cli, plan.change, cli.up(plan.message), log, WHO, still_live=plan.live)
    if code != DONE:
        return code

    # Released: from here on a problem is a warning, not a failure.
    outputs: dict[str, Any] = {}
    try:
        outputs = read_outputs(runner, cli)
        pin = plan_pin(config.apply(plan.change.forward), outputs)
        if pin:
            print(f"{WHO}: pinning {plan.target} to the image it runs", file=log)
            apply_edit(runner, cli, pin, log)
    except OpsError as error:
        print(f"{WHO}: warning: {error}", file=log)

    print(f"released: {plan.target} is live on stack {cli.stack} (was {plan.live})", file=out)
    for line in describe_outputs(outputs):
        print(f"  {line}", file=out)
    print(rollback_hint(config, plan.live, target), file=out)
    return 0
