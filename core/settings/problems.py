"""Turning pydantic's validation errors into our one-line problems: key, what, how to fix."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from difflib import get_close_matches
from typing import Any

# The key a dict-key error is reported under, e.g. ('medusa', 'env', 'bad-name', '[key]').
_DICT_KEY = "[key]"

HOW_TO_SET = {
    "activeColor": "set it with `pulumi config set activeColor blue` (blue or green)",
    "domain": "set it with `pulumi config set domain shop.example.com`",
}


class SettingsError(ValueError):
    """Every problem found in the stack config, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")


def config_key(loc: Iterable[int | str]) -> str:
    """('medusa', 'storeCors', 0) -> 'medusa.storeCors[0]'; a dict key's marker is dropped."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]"
        elif part != _DICT_KEY:
            parts.append(part)
    return ".".join(parts)


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known key a misspelt one most likely meant (case does not count: httpport -> httpPort)."""
    by_lower = {k.lower(): k for k in known}
    match = get_close_matches(name.lower(), sorted(by_lower), n=1)
    return by_lower[match[0]] if match else None


def problem_from(
    error: Mapping[str, Any],
    secret_keys: frozenset[str],
    keys_beside: Callable[[tuple[int | str, ...]], Iterable[str]] = lambda loc: (),
) -> str:
    """`keys_beside(loc)`: the keys valid where loc's last part is, for a "did you mean"."""
    loc = tuple(error["loc"])
    key = config_key(loc)
    kind = error["type"]
    if kind == "missing":
        return f"{key}: required; {HOW_TO_SET.get(key, f'set it with `pulumi config set {key} ...`')}"
    if kind == "extra_forbidden":
        hint = closest(str(loc[-1]), keys_beside(loc[:-1]))
        if hint is not None:
            parent = config_key(loc[:-1])
            return (f"{key}: unknown setting; did you mean '{parent}.{hint}'? "
                    f"(`pulumi config rm --path {key}`, then set `{parent}.{hint}`)")
        return f"{key}: unknown setting; see README.md 'Config reference' for the keys"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        got = ""
        if str(loc[0]) not in secret_keys and isinstance(error.get("input"), str):
            got = f", got {error['input']!r}"
        return f"{key}: {message.replace('Input should be', 'must be')}{got}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if loc[-1] == _DICT_KEY:
            return f"{key}: is not a valid name (it must match {pattern})"
        return f"{key}: has an invalid format (it must match {pattern})"
    return f"{key}: {message[0].lower()}{message[1:]}"
