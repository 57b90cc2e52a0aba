"""What an app-directory build is: its content digest, its image tag, its docker command line.

Pure apart from reading the build context. The digest decides whether a build runs at all:
the same directory content (minus what .dockerignore excludes) and the same build arguments
give the same tag, so `pulumi preview` on an unchanged app shows no change.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.naming import BUILD_TAG_PREFIX

# Tag prefix of built images: tells them apart from release tags pushed by CI.


@dataclass(frozen=True)
class BuildPlan:
    context: str  # absolute path on the machine running pulumi
    image_ref: str  # repository:src-<digest>
    digest: str
    args: Mapping[str, str] = field(default_factory=dict)
    secret_files: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None


def _ignore_rules(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, pattern) from .dockerignore, in file order (the last match wins, as in Docker)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        pattern = pattern.removeprefix("./")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`), anchored at the context root."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relative.split("/")
    # A pattern matching a directory excludes everything under it.
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


# Docker reads these even when .dockerignore lists them, so they always count.
ALWAYS_COUNTED = ("Dockerfile", ".dockerignore")


def context_files(context: Path) -> list[str]:
    """Relative paths of the files a build would send (plus ALWAYS_COUNTED), sorted."""
    rules = _ignore_rules(context)
    files = []
    for folder, dirs, names in os.walk(context):
        dirs.sort()
        base = Path(folder)
        for name in names:
            relative = (base / name).relative_to(context).as_posix()
            if relative in ALWAYS_COUNTED or not _ignored(relative, rules):
                files.append(relative)
    return sorted(files)


def context_digest(
    context: Path, args: Mapping[str, str], target: str | None = None
) -> str:
    """sha256 over file names, executable bits and contents, plus build args and target."""
    if not context.is_dir():
        raise FileNotFoundError(f"build context {context} is not a directory")
    digest = hashlib.sha256()
    for relative in context_files(context):
        path = context / relative
        executable = os.access(path, os.X_OK)
        digest.update(f"{relative}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for name in sorted(args):
        digest.update(f"arg\0{name}\0{args[name]}\0".encode())
    digest.update(f"target\0{target or ''}".encode())
    return digest.hexdigest()


def plan_build(
    context: str,
    project_dir: Path,
    repository: str,
    args: Mapping[str, str],
    secret_files: Mapping[str, str],
    target: str | None,
) -> BuildPlan:
    root = (project_dir / context).resolve()
    digest = context_digest(root, args, target)
    return BuildPlan(
        context=str(root),
        image_ref=f"{repository}:{BUILD_TAG_PREFIX}{digest[:20]}",
        digest=digest,
        args=dict(args),
        secret_files=dict(secret_files),
        target=target,
    )
