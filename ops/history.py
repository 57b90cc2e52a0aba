"""The stack's history (`pulumi stack history --json`) as deployments: what each update left live.

Every history entry carries the stack config of that update (secrets blinded), so a past
deployment is its activeColor, blueImage and greenImage. Used by `rollback` (which update to
go back to) and `status` (the last update).

Update numbers: Pulumi Cloud numbers updates; self-managed backends (file://, s3://) record
version 0 for all of them, so there an update's number is its position in the history, oldest
first (1 = the first update).

A color released with `--build` has no image ref in its own history entry (`release` pins it
right after the update); it is read from the next newer entry, which carries the pin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.naming import BUILD_TAG_PREFIX, COLORS, Color
from ops.pulumi_cli import OpsError, PulumiCli, Runner, StackConfig, as_color, build_key, image_key, read_json

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
    end_time: str
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
    if pinned and pinned.rsplit(":", 1)[-1].startswith(BUILD_TAG_PREFIX):
        return pinned
    raise OpsError(
        f"{color} was built from {built.get('context')!r} and the image it was built as is not in the history"
    )


def parse_history(raw: Sequence[Mapping[str, Any]], current: StackConfig | None = None) -> list[HistoryEntry]:
    """Entries of `pulumi stack history --json` (newest first, as printed) into HistoryEntry.

    `current`, the stack config now, is what came after the newest entry (it holds the pin
    `release` made after that update).
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
                end_time=str(item.get("endTime", "")),
                message=str(item.get("message", "")),
                deployment=deployment,
                problem=problem,
                signature=signature,
            )
        )
    return entries


def read_raw_history(runner: Runner, cli: PulumiCli) -> list[Mapping[str, Any]]:
    """All of the stack's history, a page at a time (the CLI's default page is 10 entries)."""
    raw: list[Mapping[str, Any]] = []
    for page in range(1, 1000):
        data = read_json(runner, cli.history(page, PAGE_SIZE), "reading the stack history")
        items = [item for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []
        raw.extend(items)
        if len(items) < PAGE_SIZE:
            break
    return raw


def read_history(runner: Runner, cli: PulumiCli, current: StackConfig) -> list[HistoryEntry]:
    return parse_history(read_raw_history(runner, cli), current)


def last_update(entries: Sequence[HistoryEntry], succeeded: bool = False) -> HistoryEntry | None:
    """The newest update (of any result, or only a successful one)."""
    for entry in entries:
        if entry.kind == "update" and (entry.result == "succeeded" or not succeeded):
            return entry
    return None
