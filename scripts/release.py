#!/usr/bin/env python3
"""Release to the idle color and flip to it, in one `pulumi up`; undo the config if it fails.

    scripts/release.py --stack production --image ghcr.io/acme/shop:1.4.2
    scripts/release.py --stack local --build ./app [--cwd PROJECT_DIR]

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

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from bluegreen_ops import (
    Color,
    ConfigEdit,
    Entry,
    OpsError,
    PulumiCli,
    Runner,
    StackConfig,
    SubprocessRunner,
    apply_edit,
    build_key,
    describe_outputs,
    edit,
    image_key,
    image_refs,
    object_entry,
    other_color,
    read_config,
    read_outputs,
    restore_edit,
    string_entry,
)


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
    forward: ConfigEdit
    restore: ConfigEdit  # undoes `forward` exactly
    message: str  # the update message recorded in `pulumi stack history`


# --- pure logic -----------------------------------------------------------------------------


def check_image_ref(ref: str) -> str:
    """A light check; the program validates refs fully before touching anything."""
    pinned = ":" in ref.rsplit("/", 1)[-1] or "@" in ref
    if not ref or any(ch.isspace() for ch in ref) or not pinned:
        raise OpsError(f"--image {ref!r} is not a pinned image reference (name:tag or name@sha256:...)")
    return ref


def plan_release(config: StackConfig, source: Source, live_refs: Mapping[Color, str | None]) -> ReleasePlan:
    """The config edit of a release, and the edit that undoes it. `live_refs`: stack output imageRefs."""
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

    # Only the active color may be built: pin the live one to what it runs before it goes idle.
    if build_key(live) in config:
        ref = live_refs.get(live)
        if ref is None:
            raise OpsError(
                f"{live} (live) is built from {build_key(live)} and the stack output imageRefs has no ref for it; "
                f"pin it first: `pulumi config set {image_key(live)} <ref it runs>` and "
                f"`pulumi config rm {build_key(live)}`"
            )
        values[image_key(live)] = string_entry(ref)
        values[build_key(live)] = None

    forward = edit(config, values)
    return ReleasePlan(
        live=live,
        target=target,
        forward=forward,
        restore=restore_edit(config, forward.keys()),
        message=f"release.py: {target} <- {what}, flip {live} -> {target}",
    )


def plan_pin(config: StackConfig, outputs: Mapping[str, Any]) -> ConfigEdit:
    """After a successful up: the live color's image set to the ref it runs, its build removed."""
    color = config.active_color()
    if outputs.get("liveColor") != color:
        raise OpsError(f"stack output liveColor is {outputs.get('liveColor')!r}, expected {color!r}; not pinning")
    ref = image_refs(outputs)[color]
    if ref is None:
        raise OpsError(f"stack output imageRefs has no ref for {color}; {build_key(color)} left as it is")
    return edit(config, {image_key(color): string_entry(ref), build_key(color): None})


# --- running it -----------------------------------------------------------------------------


def release(runner: Runner, cli: PulumiCli, source: Source, out: TextIO, log: TextIO) -> int:
    config = read_config(runner, cli)
    refs = image_refs(read_outputs(runner, cli)) if build_key(config.active_color()) in config else {}
    plan = plan_release(config, source, refs)

    print(f"release.py: stack {cli.stack}: {plan.live} is live; releasing to {plan.target}", file=log)
    try:
        apply_edit(runner, cli, plan.forward, log)
    except OpsError as error:
        print(f"release.py: {error}", file=log)
        return 2 if restore(runner, cli, plan, log) else 3
    up = runner.run(cli.up(plan.message))
    if not up.ok:
        print(f"release.py: pulumi up failed (exit {up.returncode}); restoring the config", file=log)
        if not restore(runner, cli, plan, log):
            return 3
        print(f"release.py: {plan.live} is still live; config restored. Last lines of pulumi up:", file=log)
        print(up.tail(), file=log)
        return 1

    # Released: from here on a problem is a warning, not a failure.
    outputs: dict[str, Any] = {}
    try:
        outputs = read_outputs(runner, cli)
        pin = plan_pin(config.apply(plan.forward), outputs)
        if pin:
            print(f"release.py: pinning {plan.target} to the image it runs", file=log)
            apply_edit(runner, cli, pin, log)
    except OpsError as error:
        print(f"release.py: warning: {error}", file=log)

    print(f"released: {plan.target} is live on stack {cli.stack} (was {plan.live})", file=out)
    for line in describe_outputs(outputs):
        print(f"  {line}", file=out)
    print(
        f"  instant rollback: pulumi config set activeColor {plan.live} --stack {cli.stack} && "
        f"pulumi up --yes --stack {cli.stack}   (or scripts/rollback.py --stack {cli.stack})",
        file=out,
    )
    return 0


def restore(runner: Runner, cli: PulumiCli, plan: ReleasePlan, log: TextIO) -> bool:
    try:
        apply_edit(runner, cli, plan.restore, log)
    except OpsError as error:
        print(f"release.py: could not restore the config: {error}", file=log)
        print("release.py: restore these keys by hand:\n  " + "\n  ".join(plan.restore.describe()), file=log)
        return False
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--stack", required=True, help="stack name, e.g. production")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--image", help="pinned image ref to release (name:tag or name@sha256:...)")
    group.add_argument("--build", metavar="DIR", help="app directory to build the idle color from")
    parser.add_argument("--cwd", default=None, help="the Pulumi project directory (default: current directory)")
    return parser.parse_args(argv)


def source_from_args(args: argparse.Namespace) -> Source:
    if args.image is not None:
        return ImageSource(args.image)
    directory = os.path.abspath(args.build)
    if not os.path.isdir(directory):
        raise OpsError(f"--build {args.build!r} is not a directory")
    # Stored relative to the project directory (where the program resolves it), so the stack
    # config stays valid on another checkout.
    return BuildSource(os.path.relpath(directory, os.path.abspath(args.cwd or ".")))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cli = PulumiCli(stack=args.stack, cwd=args.cwd)
    try:
        return release(SubprocessRunner(echo=sys.stdout), cli, source_from_args(args), sys.stdout, sys.stderr)
    except OpsError as error:
        print(f"release.py: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
