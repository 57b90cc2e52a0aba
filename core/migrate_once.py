"""The migrate step's wrapper: the release's migrate command runs only when its inputs changed
since the last migration of the database (core/migrate_once.js says what the inputs are).

A code-only Medusa release spends most of `medusa db:migrate`'s 7 s booting Medusa three times to
find nothing to do (the migrations, then a child process each for search indexes and migration
scripts); comparing fingerprints takes well under a second, and any doubt migrates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from core.medusa_env import COLOR_ENV

SCRIPT = (Path(__file__).with_name("migrate_once.js")).read_text()
TABLE = "bluegreen_migrated"


def env_digest(plain: Mapping[str, str], secret_names: Iterable[str]) -> str:
    """The env's part of the fingerprint: plain values count (a feature flag changes migrations),
    secrets by name only (a rotated password does not, and no value of theirs is hashed into the
    database), the color not at all."""
    # The color differs between the colors' migrations and changes nothing they do: a code-only
    # release to the other color must find the one before it.
    lines = [f"{name}={plain[name]}" for name in sorted(plain) if name != COLOR_ENV]
    lines += sorted(set(secret_names))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def wrapped(command: Sequence[str], digest: str) -> list[str]:
    """The container's command: node runs the wrapper, which runs `command` when needed."""
    return ["node", "-e", SCRIPT, digest, *command]
