"""Reading raw stack config (key -> Pulumi's string form) into Settings, or every problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any

from pydantic import ValidationError

from core.naming import PROJECT
from core.settings.checks import cross_key_problems
from core.settings.model import KNOWN_KEYS, OBJECT_KEYS, SECRET_KEYS, Settings
from core.settings.problems import SettingsError, problem_from


def _decode(key: str, value: str) -> Any:
    if key in OBJECT_KEYS:
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            decoded = None
        if not isinstance(decoded, dict):
            raise SettingsError([f"{key}: must be an object (set it with --path, e.g. "
                                 f"`pulumi config set --path {key}.name value`)"])
        return decoded
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    if value in ("true", "false") and key not in SECRET_KEYS:
        return value == "true"
    return value


def load_settings(raw: Mapping[str, str]) -> Settings:
    """Validate raw stack config (top-level key -> Pulumi's string form) into Settings."""
    problems: list[str] = []
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if value == "":
            continue  # `pulumi config set greenImage ""` clears a key
        if key not in KNOWN_KEYS:
            hint = get_close_matches(key, sorted(KNOWN_KEYS), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else "; see README.md 'Config reference'"
            problems.append(f"{key}: unknown config key{suggestion}")
            continue
        try:
            decoded[key] = _decode(key, value)
        except SettingsError as error:
            problems.extend(error.problems)
    try:
        settings = Settings.model_validate(decoded)
    except ValidationError as error:
        problems.extend(problem_from(e, SECRET_KEYS) for e in error.errors(include_url=False))
        raise SettingsError(problems) from None
    problems.extend(cross_key_problems(settings))
    if problems:
        raise SettingsError(problems)
    return settings


def read_pulumi_config() -> dict[str, str]:
    """The project's stack config as {key: raw string}; the one place that reads it.

    `get_config_env` is the SDK's public reader of the config the engine hands the program
    (the language host passes it in PULUMI_CONFIG); unlike pulumi.Config it lists every key,
    which is what lets a misspelt key be refused instead of ignored.
    """
    import pulumi.runtime

    prefix = f"{PROJECT}:"
    return {
        key.removeprefix(prefix): str(value)
        for key, value in pulumi.runtime.get_config_env().items()
        if key.startswith(prefix)
    }
