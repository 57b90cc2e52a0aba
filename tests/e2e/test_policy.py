"""The guard policy pack (policy/) under the real engine, on a real stack on the harness dockerd.

`pulumi preview --policy-pack policy` must fail, naming the policy and the resource, when the
plan replaces the router (here: a new public port), and pass for a release or a change that
touches no guarded resource. Own prefix and ports, so it shares nothing with the other e2e stacks.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policy.guard import POLICY_NAME, deployed_from_export, parse_urn
from tests.e2e.conftest import measure
from tests.e2e.project import (
    REPO,
    PulumiStack,
    Run,
    container_id,
    destroy_with_data,
    local_stack_config,
    remove_leftovers,
)

PREFIX = "e2epol"
HTTP_PORT, PREVIEW_PORT = 22080, 23080
V1, V2 = "medusa-bg/testapp:v1", "medusa-bg/testapp:v2"
PACK = "medusa-bluegreen-guard"

BASE: dict[str, Any] = local_stack_config(
    PREFIX, HTTP_PORT, PREVIEW_PORT,
    activeColor="blue",
    blueImage=V1,
    healthGate={"deadlineSeconds": 15, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 3},
    medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5},
)
NEW_PUBLIC_PORT = {"router": {**BASE["router"], "httpPort": HTTP_PORT + 1}}  # replaces the router container


def new_stack(workdir: Path, engine: dict[str, str], name: str) -> PulumiStack:
    stack = PulumiStack(workdir, engine, stack=name)
    # As in CI: the pack is `policy/` of the project directory, on the project's .venv.
    shutil.copytree(REPO / "policy", workdir / "policy", ignore=shutil.ignore_patterns("__pycache__"))
    configure(stack)
    return stack


def configure(stack: PulumiStack, **changes: Any) -> None:
    stack.set_config({**BASE, "dockerHost": stack.env["DOCKER_HOST"], **changes})


def guarded_preview(stack: PulumiStack, label: str, **changes: Any) -> Run:
    configure(stack, **changes)
    run = stack.run("preview", "--policy-pack", "policy", check=False)
    measure(f"policy: preview --policy-pack ({label}) {run.seconds:.1f}s, exit {run.returncode}")
    return run


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], workdir: Path) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    stack = new_stack(workdir, engine, PREFIX)
    try:
        run = stack.up("--policy-pack", "policy")
        measure(f"policy: first pulumi up --policy-pack {run.seconds:.1f}s")
        yield stack
    finally:
        destroy_with_data(stack, PREFIX)


def test_a_new_stack_previews_fine_under_the_guard(engine: dict[str, str], tmp_path: Path) -> None:
    # Nothing deployed yet: creating the router, the network and the data services is allowed.
    fresh = new_stack(tmp_path, engine, f"{PREFIX}-new")
    run = guarded_preview(fresh, "new stack")
    assert run.returncode == 0, run.output[-4000:]
    assert f"{PACK}@v" in run.output


def test_the_guard_knows_every_guarded_resource_of_the_real_stack(stack: PulumiStack) -> None:
    export = json.loads(stack.run("stack", "export").stdout)
    names = {parse_urn(resource.urn)[3] for resource in deployed_from_export(export)}
    # services.hardened (the e2e default, as in the shipped stack files) adds the data network.
    assert names == {"router", "router-config-volume", "network", "data-network", "postgres", "postgres-volume",
                     "redis", "redis-volume", "backups-volume"}


def test_a_change_that_replaces_the_router_fails_the_preview(stack: PulumiStack) -> None:
    router = container_id(f"{PREFIX}-router")
    run = guarded_preview(stack, "router replaced", **NEW_PUBLIC_PORT)
    assert run.returncode != 0, run.output[-4000:]
    assert f"[mandatory]  {POLICY_NAME}  (docker:index:Container: router)" in run.output, run.output[-4000:]
    assert f"the plan replaces the router's container 'router' (docker name {PREFIX}-router)" in run.output
    assert f"the deployed id {router[:12] if router else '?'} is not kept" in run.output
    # It is the policy that fails it: the same preview without the pack passes and shows the replace.
    plain = stack.run("preview", check=False)
    assert plain.returncode == 0, plain.output[-4000:]
    assert "docker:index:Container router replace" in plain.output
    assert container_id(f"{PREFIX}-router") == router


def test_pulumi_up_with_the_pack_stops_in_its_preview(stack: PulumiStack) -> None:
    router = container_id(f"{PREFIX}-router")
    configure(stack, **NEW_PUBLIC_PORT)
    run = stack.run("up", "--yes", "--policy-pack", "policy", check=False)
    measure(f"policy: pulumi up --policy-pack (router replaced) {run.seconds:.1f}s, exit {run.returncode}")
    assert run.returncode != 0
    assert POLICY_NAME in run.output
    assert container_id(f"{PREFIX}-router") == router  # nothing was applied


@pytest.mark.parametrize(
    ("label", "changes"),
    [
        ("health gate timeout", {"healthGate": {**BASE["healthGate"], "timeoutSeconds": 9}}),
        ("release of green", {"activeColor": "green", "greenImage": V2}),
    ],
)
def test_a_change_that_keeps_the_guarded_resources_previews_fine(
    stack: PulumiStack, label: str, changes: dict[str, Any]
) -> None:
    run = guarded_preview(stack, label, **changes)
    assert run.returncode == 0, run.output[-4000:]
    assert f"{PACK}@v" in run.output
    assert POLICY_NAME not in run.output
