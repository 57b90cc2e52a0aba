"""Reading raw stack config (key -> Pulumi's string form) into Settings, or every problem."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from core.naming import PROJECT
from core.settings.checks import cross_key_problems
from core.settings.model import KNOWN_KEYS, OBJECT_KEYS, SECRET_KEYS, Settings, keys_beside
from core.settings.problems import SettingsError, closest, problem_from

# The Docker provider this program uses is its own, made from `dockerHost` (components/stack.py):
# `docker:*` config configures only Pulumi's default provider, which no resource here uses.
DOCKER_NAMESPACE = "docker"


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
    if value[:1] in "[{" and key not in SECRET_KEYS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    if value in ("true", "false") and key not in SECRET_KEYS:
        return value == "true"
    return value


def _foreign_key_problem(key: str) -> str | None:
    """A key in another namespace (`docker:host`, `medusa:domain`): refused when the user meant one
    of ours, else left to whoever reads it (a provider's or Pulumi's own config)."""
    namespace, _, name = key.partition(":")
    if namespace == DOCKER_NAMESPACE:
        if name == "host":
            return (f"{key}: not read: this program makes its own Docker provider from dockerHost; "
                    "`pulumi config rm docker:host && pulumi config set dockerHost ssh://user@host`")
        return (f"{key}: not read: this program makes its own Docker provider from dockerHost and takes no "
                f"other docker:* setting; remove it (`pulumi config rm {key}`)")
    if name in KNOWN_KEYS:
        return (f"{key}: set in the namespace '{namespace}', which this program does not read; "
                f"`pulumi config rm {key}`, then `pulumi config set {name} ...` (no namespace)")
    return None


def _set_in_plain_text(key: str, value: Any) -> str:
    if key == "extraSecretEnv" and isinstance(value, dict) and value:
        commands = " and ".join(f"`pulumi config set --secret --path extraSecretEnv.{name} <value>`"
                                for name in sorted(value))
    else:
        commands = f"`pulumi config set --secret {key} <value>`"
    return (f"{key}: is a secret but was set without --secret, so it is stored in plain text in the stack's "
            f"config file; set it again with {commands} (and rotate it if that file was shared)")


def load_settings(raw: Mapping[str, str], secret_keys: Collection[str] | None = None) -> Settings:
    """Validate raw stack config (top-level key -> Pulumi's string form) into Settings.

    `secret_keys`: the keys Pulumi holds encrypted (read_pulumi_secret_keys); a secret setting
    missing from it was set without --secret. None: not known, not checked.
    """
    problems: list[str] = []
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if ":" in key:
            foreign = _foreign_key_problem(key)
            if foreign:
                problems.append(foreign)
            continue
        if value == "":
            continue  # `pulumi config set greenImage ""` clears a key
        if key not in KNOWN_KEYS:
            hint = closest(key, KNOWN_KEYS)
            suggestion = f"; did you mean '{hint}'?" if hint else "; see README.md 'Config reference'"
            problems.append(f"{key}: unknown config key{suggestion}")
            continue
        try:
            decoded[key] = _decode(key, value)
        except SettingsError as error:
            problems.extend(error.problems)
            continue
        if secret_keys is not None and key in SECRET_KEYS and key not in secret_keys:
            problems.append(_set_in_plain_text(key, decoded[key]))
    try:
        settings = Settings.model_validate(decoded)
    except ValidationError as error:
        problems.extend(problem_from(e, SECRET_KEYS, keys_beside) for e in error.errors(include_url=False))
        raise SettingsError(problems) from None
    problems.extend(cross_key_problems(settings))
    if problems:
        raise SettingsError(problems)
    return settings


def read_pulumi_config() -> dict[str, str]:
    """The stack config as {key: raw string}; the one place that reads it.

    The project's own keys lose their `medusa-bluegreen:` prefix; a key of any other namespace
    (`docker:host`) keeps it, so load_settings can tell a user who meant one of ours.
    `get_config_env` is the SDK's public reader of the config the engine hands the program
    (the language host passes it in PULUMI_CONFIG); unlike pulumi.Config it lists every key,
    which is what lets a misspelt key be refused instead of ignored.
    """
    import pulumi.runtime

    prefix = f"{PROJECT}:"
    return {key.removeprefix(prefix): str(value) for key, value in pulumi.runtime.get_config_env().items()}


def read_pulumi_secret_keys() -> frozenset[str] | None:
    """The project's keys Pulumi holds encrypted (set with --secret), as read_pulumi_config names
    them; None where no engine says (the unit tests' mocks), so nothing is checked then.

    The language host passes them in PULUMI_CONFIG_SECRET_KEYS beside PULUMI_CONFIG (`[]` when
    there are none); an object with one entry set with --secret (`--secret --path
    extraSecretEnv.NAME`) is listed as a whole.
    """
    import os

    import pulumi.runtime

    if "PULUMI_CONFIG_SECRET_KEYS" not in os.environ:
        return None
    keys = pulumi.runtime.get_config_secret_keys_env()
    if not isinstance(keys, list):
        return None
    prefix = f"{PROJECT}:"
    return frozenset(key.removeprefix(prefix) for key in keys if key.startswith(prefix))
