"""The post-flip analysis: a dynamic provider that watches the new color's real traffic after
the live flip (core.traffic_analysis) and, when it fails, flips the router back before the run
fails (rule 9d).

Like the post-switch check it runs once per flip (`triggers` holds the live route's command) and
not on a no-op `pulumi up`; its verdict (counts, 5xx share, p95, how long it watched) is its
output.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

from core.router_control import metrics_scrape_argv
from core.traffic_analysis import AnalysisFailedError, AnalysisSpec, failure_message, watch
from core.traffic_metrics import Scrape, parse
from providers.health_gate import run_rollback

_SPEC_KEYS = tuple(f.name for f in fields(AnalysisSpec))
_GUARDED = (*_SPEC_KEYS, "triggers")


def _scraper(spec: AnalysisSpec) -> Scrape:
    env = {**os.environ, **({"DOCKER_HOST": spec.docker_host} if spec.docker_host else {})}
    done = subprocess.run(
        metrics_scrape_argv(spec.via_router), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[:300]}")
    return parse(done.stdout)


def run_analysis(props: Mapping[str, Any]) -> dict[str, Any]:
    values = {key: props[key] for key in _SPEC_KEYS if props.get(key) is not None}
    values["min_requests"] = int(values["min_requests"])  # protobuf numbers arrive as floats
    spec = AnalysisSpec(**values)
    rollback = props.get("rollback")
    try:
        verdict = watch(spec, lambda: _scraper(spec))
    except AnalysisFailedError as exc:
        message = f"post-flip analysis of {spec.color}: {exc}"
        raise AnalysisFailedError(f"{message}; {run_rollback(rollback)}" if rollback else message) from None
    if not verdict.healthy:
        message = failure_message(verdict)
        raise AnalysisFailedError(f"{message}; {run_rollback(rollback)}" if rollback else message)
    return {**verdict.summary(), "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}


class TrafficAnalysisProvider(dynamic.ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [key for key in _GUARDED if olds.get(key) != news.get(key)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=uuid.uuid4().hex, outs={**props, "result": run_analysis(props)})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, "result": run_analysis(news)})


class TrafficAnalysis(dynamic.Resource):
    """Watches `spec.color`'s live traffic for the window after the flip; flips back on failure."""

    result: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        *,
        spec: AnalysisSpec,
        triggers: Sequence[pulumi.Input[str]],
        rollback: pulumi.Input[Mapping[str, Any] | None] = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        props: dict[str, Any] = {
            **{key: getattr(spec, key) for key in _SPEC_KEYS},
            "triggers": list(triggers),
            "rollback": rollback,
            "result": None,
        }
        super().__init__(TrafficAnalysisProvider(), name, props, opts)
