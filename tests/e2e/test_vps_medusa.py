"""A real Medusa release (examples/medusa-app) on the production path: built by `pulumi up` on the
simulated VPS over ssh (the build context travels from the runner), migrated, gated from inside
the router, made live behind a certificate from Pebble; then a code-only change to the other
color under HTTPS load. Same topology as test_vps_release.py, with a stack of its own on a fresh
host (a Medusa database must not meet the test app's tables).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.component.acme import Pebble
from tests.e2e.conftest import measure
from tests.e2e.project import PulumiStack, copy_example_app
from tests.e2e.test_medusa_release import HELLO, build_config
from tests.e2e.test_vps_release import (
    CA_ON_HOST,
    DOMAIN,
    SERVICE_IMAGES,
    assert_clean,
    domain_points_at_the_vps,
    https_load,
    pebble,
    stack_config,
    vps,
)
from tests.e2e.vps import Vps

__all__ = ["domain_points_at_the_vps", "pebble", "vps"]  # the fixtures, shared with the module above

PREFIX = "med"
NODE = "medusa-bg/node:22"
VPS_IMAGES = [*SERVICE_IMAGES.values(), NODE]
MEDUSA = {"serverMemoryMb": 1024, "workerMemoryMb": 1024, "stopTimeoutSeconds": 10}
GATE = {"deadlineSeconds": 180, "initialBackoffSeconds": 1, "maxBackoffSeconds": 3}


@pytest.fixture(scope="module")
def vps_images() -> list[str]:
    return VPS_IMAGES


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example_app(tmp_path_factory.mktemp("medusa-app"))


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], vps: Vps, pebble: Pebble, workdir: Path) -> Iterator[PulumiStack]:
    env = {**engine, "PATH": f"{vps.ssh_wrapper_dir}:{engine['PATH']}", "DOCKER_HOST": vps.docker_host}
    stack = PulumiStack(workdir, env, stack=PREFIX)
    yield stack
    stack.run("destroy", "--yes", check=False, timeout=600)


def medusa_config(vps: Vps, pebble: Pebble, **changes: Any) -> dict[str, Any]:
    base = stack_config(vps, pebble, prefix=PREFIX, medusa=MEDUSA, healthGate=GATE)
    base.pop("blueImage")
    return {**base, **changes}


def hello(pebble: Pebble) -> dict[str, Any]:
    response = requests.get(f"https://{DOMAIN}/hello", verify=str(pebble.root_cert), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_medusa_built_over_ssh_then_a_code_change_under_https_load(
    stack: PulumiStack, vps: Vps, pebble: Pebble, app: Path
) -> None:
    assert CA_ON_HOST  # the ACME client trusts Pebble through the file the `pebble` fixture put there
    stack.set_config(medusa_config(vps, pebble, activeColor="blue", blueBuild=build_config(app)))
    first = stack.up()
    measure(f"vps medusa 1. built over ssh, migrated, gated, live with ACME: pulumi up {first.seconds:.1f}s")
    assert hello(pebble) == {"message": "Hello from Medusa", "color": "blue", "mode": "server"}
    blue_ref: str = stack.outputs()["imageRefs"]["blue"]

    source = app / HELLO
    source.write_text(source.read_text().replace('"Hello from Medusa"', '"Hello from Medusa v2"'))
    stack.set_config(medusa_config(vps, pebble, activeColor="green", blueImage=blue_ref,
                                   greenBuild=build_config(app)))
    with https_load(pebble, "/health") as load:
        second = stack.up()
        time.sleep(1)
    assert_clean(load, f"vps medusa 2. code-only change to green over ssh under HTTPS load: "
                       f"pulumi up {second.seconds:.1f}s")
    assert hello(pebble) == {"message": "Hello from Medusa v2", "color": "green", "mode": "server"}
