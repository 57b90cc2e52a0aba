"""What an app-directory build is: its content digest, its image tag, its docker command line.

Pure apart from reading the build context. The digest decides whether a build runs at all:
the same directory content (minus what the ignore file excludes) and the same build arguments
give the same tag, so `pulumi preview` on an unchanged app shows no change. The other way round
matters more: whenever the bytes `docker build` sends change, the digest must change, or the
change ships without a rebuild. So where Docker versions disagree on what a .dockerignore
excludes, a file counts if any of them sends it (an extra rebuild is harmless, a missed one not).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# docker-py's port of Docker's .dockerignore rules (pattern cleaning, `**` and glob translation,
# the classic walk). The package ships no type information.
from docker.utils.build import Pattern, PatternMatcher  # type: ignore[import-untyped]
from docker.utils.fnmatch import fnmatchcase, translate  # type: ignore[import-untyped]

from core.naming import BUILD_TAG_PREFIX


@dataclass(frozen=True)
class BuildPlan:
    context: str  # absolute path on the machine running pulumi
    image_ref: str  # repository:src-<digest>
    digest: str
    args: Mapping[str, str] = field(default_factory=dict)
    secret_files: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None


# BuildKit reads the ignore file next to the Dockerfile (`<Dockerfile>.dockerignore`) in place of
# the context's .dockerignore when it exists; the program always builds ./Dockerfile with BuildKit.
IGNORE_FILES = ("Dockerfile.dockerignore", ".dockerignore")

# Always part of the digest, even when the ignore file lists them: BuildKit reads them outside the
# context (the classic builder even sends them in it), and they decide what the build does.
ALWAYS_COUNTED = ("Dockerfile", *IGNORE_FILES)

# Glob syntax where the SDK's translation (Python re) and Docker's (Go regexp) part ways: `\`
# escapes in Go and is a plain character in the SDK; `[!a]` is "! or a" in Go and "not a" in the
# SDK, `[^a]` the other way round; a bare `^` anchors in Go; `[[:alpha:]]` is a class only in Go.
# A pattern using any of these could exclude a file Docker sends, so the ignore file is not
# trusted at all then: everything counts.
_UNPORTABLE = re.compile(r"\\|\^|\[!|\[\[|\[:")


def ignore_patterns(context: Path) -> list[str] | None:
    """The ignore file's patterns as Docker reads them (moby ignorefile.ReadAll), in file order.

    None when a pattern uses glob syntax the SDK cannot match as Docker does (_UNPORTABLE).
    Comments are lines starting with `#` in the first column only (" # x" is a pattern, as in
    Docker); patterns are trimmed and cleaned (`./a/`, `/a`, `a//b` are all `a`). A pattern that
    climbs out of the context (`../x`) can never match in Docker, while the SDK would fold it
    into `x`, so it is dropped.
    """
    path = next((context / name for name in IGNORE_FILES if (context / name).is_file()), None)
    if path is None:
        return []
    text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
    patterns = []
    for line in text.split("\n"):
        if line.startswith("#"):
            continue
        negated = line.strip().startswith("!")
        body = line.strip().removeprefix("!").strip()
        if not body:
            continue
        body = posixpath.normpath(body).lstrip("/")
        if body in ("", ".", "..") or body.startswith("../"):
            continue
        if _UNPORTABLE.search(body):
            return None
        pattern = f"!{body}" if negated else body
        try:
            re.compile(translate(body))
        except re.error as error:
            raise ValueError(f"{path}: bad pattern {pattern!r}: {error}") from error
        patterns.append(pattern)
    return patterns


class _CaseSensitivePattern(Pattern):  # type: ignore[misc]
    # docker-py lower-cases both the path and the pattern; Docker on Linux matches case-sensitively,
    # so with the SDK as it is `*.log` would drop ERROR.LOG (and `docs` drop Docs/) that a build sends.
    def match(self, filepath: str) -> bool:
        return bool(fnmatchcase(filepath, self.cleaned_pattern))


def _classic_sent(context: Path, patterns: list[str]) -> set[str]:
    """What Docker up to 20.10 sends (its built-in BuildKit, which the harness runs): docker-py's walk.

    Each pattern matches a path or the ancestor with as many components as the pattern; an
    excluded directory is not entered unless a `!` pattern starts with its path. The SDK as it
    is stands for this, but for its case folding (_CaseSensitivePattern) and the ignore file it
    reads (ignore_patterns).
    """
    matcher = PatternMatcher(patterns)
    matcher.patterns = [_CaseSensitivePattern(("!" if p.exclusion else "") + p.cleaned_pattern)
                        for p in matcher.patterns]
    return set(matcher.walk(str(context)))


def _buildkit_glob(pattern: str) -> str:
    # patternmatcher compiles `**X` with no other wildcard to "path ends with X" (`**.log` excludes
    # a.log and sub/b.log), while the SDK reads it as a name equal to X; `**/*X` is the SDK spelling.
    if pattern.startswith("**") and pattern[2:3] not in ("", "/") and not re.search(r"[*?\[\]\\]", pattern[2:]):
        return "**/*" + pattern[2:]
    return pattern


def _buildkit_sent(context: Path, patterns: list[str]) -> set[str]:
    """What current BuildKit (buildx) sends: tonistiigi/fsutil's filtered walk over moby/patternmatcher.

    The rules Docker's docs state (last matching pattern wins; a pattern matching a directory
    matches all under it) as fsutil evaluates them: each directory passes down, per pattern,
    whether that pattern matched it, and a pattern the walk did not need to look at for the
    directory (an exclude once the path is excluded, a `!` while it is included) passes down
    "no". So after `docs`, `!docs/**/*.md`, `docs/private`, docs/private/x.md is sent. An
    excluded directory is entered whenever a `!` pattern exists (fsutil does whenever one has a
    wildcard; entering more only adds files).
    """
    rules = [(p.exclusion, re.compile(translate(_buildkit_glob(p.cleaned_pattern))).match)
             for p in map(Pattern, patterns)]
    reincludes = any(reinclude for reinclude, _ in rules)
    sent: set[str] = set()

    def visit(folder: str, prefix: str, parent_hits: list[bool]) -> None:
        for entry in os.scandir(folder):
            relative = prefix + entry.name
            excluded = False
            hits = []
            for index, (reinclude, matches) in enumerate(rules):
                hit = bool(parent_hits) and parent_hits[index]
                if not hit and reinclude == excluded:
                    hit = matches(relative) is not None
                hits.append(hit)
                if hit:
                    excluded = not reinclude
            if not excluded:
                sent.add(relative)
            if entry.is_dir(follow_symlinks=False) and (reincludes or not excluded):
                visit(entry.path, relative + "/", hits)

    visit(str(context), "", [])
    return sent


def _everything(context: Path) -> Iterable[str]:
    for folder, dirs, names in os.walk(context):
        base = Path(folder).relative_to(context)
        for name in dirs + names:
            yield (base / name).as_posix()


def context_entries(context: Path) -> list[str]:
    """Relative paths a build may send (files, symlinks, directories) plus ALWAYS_COUNTED, sorted.

    The union of what Docker <= 20.10 and current BuildKit send: they disagree on re-includes
    (`!`) and on `**X`, in both directions (tests/unit/core/test_app_build.py shows each case).
    """
    patterns = ignore_patterns(context)
    if patterns is None:
        entries = set(_everything(context))
    else:
        entries = _classic_sent(context, patterns) | _buildkit_sent(context, patterns)
    entries |= {name for name in ALWAYS_COUNTED if os.path.lexists(context / name)}
    return sorted(entries)


def context_files(context: Path) -> list[str]:
    """Relative paths of the files and symlinks a build would send (plus ALWAYS_COUNTED), sorted."""
    return [relative for relative in context_entries(context)
            if not stat.S_ISDIR((context / relative).lstat().st_mode)]


# Regular files with these modes are recorded exactly as before any other kind or mode was
# counted, so an app whose context did not change keeps its tag (and its stack sees no release)
# across that change; any other mode is recorded in full.
_USUAL_MODES = {0o644: 0, 0o755: 1}


def _entry_record(context: Path, relative: str) -> bytes | None:
    """What of one entry ends up in the image: name, permission bits, content or link target.

    Permission bits, not just the executable bit: COPY keeps them, so 0600 -> 0644 changes the
    image. Symlinks are sent as links, so their target counts, not the content behind them. A
    directory only counts when empty: the files inside name the others.
    """
    path = context / relative
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISREG(info.st_mode):
        with path.open("rb") as content:
            checksum = hashlib.file_digest(content, "sha256").digest()
        if mode in _USUAL_MODES:
            return f"{relative}\0{_USUAL_MODES[mode]}\0".encode("utf-8", "surrogateescape") + checksum
        return f"{relative}\0mode={mode:o}\0".encode("utf-8", "surrogateescape") + checksum
    if stat.S_ISLNK(info.st_mode):
        fields = ["link", relative, os.readlink(path)]
    elif stat.S_ISDIR(info.st_mode):
        if any(path.iterdir()):
            return None
        fields = ["empty-dir", relative, f"{mode:o}"]
    else:  # a fifo, socket or device: never read (a fifo would block), its kind and mode count
        fields = ["special", relative, f"{info.st_mode:o}"]
    return hashlib.sha256("\0".join(fields).encode("utf-8", "surrogateescape")).digest()


def context_digest(
    context: Path, args: Mapping[str, str], target: str | None = None
) -> str:
    """sha256 over the sent entries (names, permission bits, contents, link targets, empty
    directories), plus build args and target."""
    if not context.is_dir():
        raise FileNotFoundError(f"build context {context} is not a directory")
    digest = hashlib.sha256()
    for relative in context_entries(context):
        record = _entry_record(context, relative)
        if record is not None:
            digest.update(record)
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
