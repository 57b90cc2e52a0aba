"""The health gate: a dynamic provider that proves a color healthy over HTTP (core.health_poll;
from inside the router container when the spec names it).

It polls (core.health_poll) whenever what it guards changes (the URL, the color, the
image, the container ids passed as `triggers`) and not otherwise, so a no-op `pulumi up`
does not re-check. A failed gate fails `pulumi up` with the full diagnostic, and everything
that consumes its outputs (the flip) never runs. The post-switch check is a gate too; it can
carry a rollback command that flips the router back before the run fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

from components.stack_secrets import as_secret
from core.health_poll import HealthGateFailedError, PollSpec, failure_message, poll

# The resource's inputs are PollSpec's fields, flat (the headers apart: they carry the token).
_SPEC_KEYS = tuple(f.name for f in fields(PollSpec) if f.name != "headers")
# Inputs whose change re-runs the gate. `headers` (the preview token) is compared by digest,
# see _headers_digest.
_GUARDED = (*_SPEC_KEYS, "triggers")


def _headers_digest(headers: Any, salt: str | None) -> str:
    # Diff gets the old *outputs*, which leave the headers out (they carry the preview token), so
    # the outputs keep this digest instead and Diff compares it with the new headers' digest.
    # Salted and stretched: the state is plain text, and an unsalted SHA-256 of a short header
    # set can be looked up or compared across stacks. Gates recorded before salting have no salt
    # and keep their plain digest until they next run.
    text = json.dumps(headers or {}, sort_keys=True, default=str).encode()
    if salt is None:
        return hashlib.sha256(text).hexdigest()
    return hashlib.pbkdf2_hmac("sha256", text, bytes.fromhex(salt), DIGEST_ROUNDS).hex()


DIGEST_ROUNDS = 200_000


def run_rollback(command: Mapping[str, Any]) -> str:
    """Run the router's undo of a flip; what it printed, for the failure message. With a
    `guard` (the schema check of the color it would flip back to), only once that passes; with
    `before` (the worker handed back), only once each of those commands succeeded."""
    guard = command.get("guard")
    if guard:
        checked = subprocess.run(
            list(guard["argv"]), env={**os.environ, **(guard.get("env") or {})}, capture_output=True,
            text=True, timeout=120, check=False,
        )
        if checked.returncode != 0:
            return f"NOT rolled back, traffic stays where it is: {checked.stderr.strip()[:2000]}"
    said = []
    for step in command.get("before") or []:
        ran = subprocess.run(
            list(step["argv"]), env={**os.environ, **(step.get("env") or {})}, capture_output=True,
            text=True, timeout=120, check=False,
        )
        if ran.returncode != 0:
            return f"NOT rolled back, traffic stays where it is: {(ran.stdout + ran.stderr).strip()[:500]}"
        said.append(ran.stdout.strip())
    done = subprocess.run(
        list(command["argv"]), env={**os.environ, **(command.get("env") or {})}, capture_output=True,
        text=True, timeout=120, check=False,
    )
    outcome = "rolled back" if done.returncode == 0 else f"rollback FAILED (exit {done.returncode})"
    return f"{outcome}: {'; '.join([*said, (done.stdout + done.stderr).strip()[:500]])}"


def run_gate(props: Mapping[str, Any]) -> dict[str, Any]:
    values = {key: props[key] for key in _SPEC_KEYS if props.get(key) is not None}
    if "expect_status" in values:  # protobuf carries every number as a float (200.0)
        values["expect_status"] = int(values["expect_status"])
    spec = PollSpec(**values, headers=dict(props.get("headers") or {}))
    result = poll(spec)
    if not result.healthy:
        message = failure_message(spec, result)
        rollback = props.get("rollback")
        if rollback:
            message += f"; {run_rollback(rollback)}"
        raise HealthGateFailedError(message)
    return {
        "healthy": True,
        "color": spec.color,
        "url": spec.url,
        "tries": result.tries,
        "waited_seconds": result.waited_seconds,
        "last_status": result.last_status,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _outputs(props: Mapping[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    # The headers (preview token) are left out of the outputs on purpose.
    salt = secrets.token_hex(16)
    return {
        **{k: v for k, v in props.items() if k != "headers"},
        "headers_salt": salt,
        "headers_digest": _headers_digest(props.get("headers"), salt),
        "result": result,
    }


class HealthGateProvider(dynamic.ResourceProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = []
        if not str(news.get("url", "")).startswith(("http://", "https://")):
            failures.append(dynamic.CheckFailure("url", "must be an http(s) URL"))
        if news.get("color") not in ("blue", "green"):
            failures.append(dynamic.CheckFailure("color", "must be blue or green"))
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [key for key in _GUARDED if olds.get(key) != news.get(key)]
        if olds.get("headers_digest") != _headers_digest(news.get("headers"), olds.get("headers_salt")):
            changed.append("headers")
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=uuid.uuid4().hex, outs=_outputs(props, run_gate(props)))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs=_outputs(news, run_gate(news)))


class HealthGate(dynamic.Resource):
    """Proves `color` healthy at `url` before anything that depends on it runs."""

    result: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        *,
        spec: PollSpec,
        triggers: Sequence[pulumi.Input[str]],
        headers: pulumi.Input[Mapping[str, str]] | None = None,
        rollback: pulumi.Input[Mapping[str, Any] | None] = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`spec` says what healthy means; `headers` (secret) are sent with each try;
        `rollback` is the command run when the gate fails (the router's undo of the flip)."""
        props: dict[str, Any] = {
            **{key: getattr(spec, key) for key in _SPEC_KEYS},
            "triggers": list(triggers),
            "headers": as_secret(headers) if headers is not None else dict(spec.headers),
            "rollback": rollback,
            "result": None,
        }
        super().__init__(HealthGateProvider(), name, props, opts)
