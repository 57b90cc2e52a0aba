"""services.hardened turned on for a running stack, on the real engine and dockerd: one
`pulumi up` moves Postgres and Redis onto the internal data network and Redis off root, their data
kept; afterwards the router cannot reach them, the app and its migrations can, and a release works.

The stack starts without the key, as every stack made before it did (and the upgrade tests keep
such stacks untouched by an upgrade of the program).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import measure
from tests.e2e.project import (
    PulumiStack,
    container_id,
    destroy_with_data,
    docker,
    local_stack_config,
    remove_leftovers,
)

PREFIX = "e2ehard"
HTTP_PORT, PREVIEW_PORT = 4080, 5080
CONFIG: dict[str, Any] = local_stack_config(
    PREFIX, HTTP_PORT, PREVIEW_PORT, hardened=False,
    activeColor="blue", blueImage="medusa-bg/testapp:v1",
    healthGate={"deadlineSeconds": 30, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 2},
    medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5},
)
POSTGRES, REDIS, ROUTER = f"{PREFIX}-postgres", f"{PREFIX}-redis", f"{PREFIX}-router"


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], workdir: Path) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    stack = PulumiStack(workdir, engine, stack="hardening")
    stack.set_config({**CONFIG, "dockerHost": engine["DOCKER_HOST"]})
    yield stack
    destroy_with_data(stack, PREFIX)


def uid_of_pid_1(container: str) -> int:
    status = docker("exec", container, "cat", "/proc/1/status")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))


def reaches(container: str, host: str, port: int) -> bool:
    """A TCP connection from inside `container`, bounded (bash's /dev/tcp; the router image is Debian's)."""
    return docker_ok("exec", container, "timeout", "4", "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}")


def docker_ok(*args: str) -> bool:
    try:
        docker(*args)
    except AssertionError:
        return False
    return True


def node_reaches(container: str, host: str, port: int) -> bool:
    script = (f"const s=require('net').connect({port},'{host}');s.setTimeout(3000);"
              "s.on('connect',()=>{console.log('ok');s.destroy()});s.on('error',()=>process.exit(2));"
              "s.on('timeout',()=>process.exit(3))")
    return docker("exec", container, "node", "-e", script, check=False) == "ok"


def address_on(container: str, network: str) -> str:
    fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
    return docker("inspect", "--format", fmt, container)


def test_turning_hardened_on_moves_the_data_services_and_keeps_their_data(stack: PulumiStack) -> None:
    first = stack.up()
    advice = "services.hardened is off, so the router can reach Postgres and Redis, and Redis runs as root."
    assert advice in first.output, "the up without services.hardened did not warn"
    # Preconditions, so the assertions after the change can fail: today the router reaches both.
    assert reaches(ROUTER, "postgres", 5432) and reaches(ROUTER, "redis", 6379)
    assert uid_of_pid_1(REDIS) == 0
    docker("exec", POSTGRES, "psql", "-U", "medusa", "-d", "medusa", "-Xqc",
           "create table kept (note text); insert into kept values ('written before the change')")
    docker("exec", REDIS, "redis-cli", "set", "kept", "written before the change")
    before = {name: container_id(name) for name in (POSTGRES, REDIS)}
    volumes = docker("volume", "ls", "-q", "--filter", f"name=^{PREFIX}-").split()

    # As the warning says: the config key, then one up.
    stack.run("config", "set", "--path", "services.hardened", "true")
    changed = stack.up()
    measure(f"services.hardened on a running stack: one pulumi up {changed.seconds:.1f}s")
    assert advice not in changed.output
    assert all(container_id(name) not in (None, old) for name, old in before.items()), "not replaced"
    assert docker("volume", "ls", "-q", "--filter", f"name=^{PREFIX}-").split() == volumes
    assert docker("exec", POSTGRES, "psql", "-U", "medusa", "-d", "medusa", "-XtAc",
                  "select note from kept") == "written before the change"
    assert docker("exec", REDIS, "redis-cli", "get", "kept") == "written before the change"
    assert uid_of_pid_1(REDIS) != 0, "Redis still runs as root"

    data = f"{PREFIX}-data"
    assert json.loads(docker("network", "inspect", "--format", "{{json .Internal}}", data)) is True
    for service, port in ((POSTGRES, 5432), (REDIS, 6379)):
        assert docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", service).count('"Aliases"') == 1
        address = address_on(service, data)
        assert not reaches(ROUTER, address, port), f"the router reaches {service} at {address}"
    assert not reaches(ROUTER, "postgres", 5432) and not reaches(ROUTER, "redis", 6379)
    for host, port in (("postgres", 5432), ("redis", 6379)):
        assert node_reaches(f"{PREFIX}-blue-server", host, port), f"the app cannot reach {host}"

    # A release after the change: its migration (run from the new image on both networks)
    # reaches Postgres, the gate passes, traffic flips.
    configure_release = {**CONFIG, "dockerHost": stack.env["DOCKER_HOST"], "services": {"hardened": True},
                         "activeColor": "green", "greenImage": "medusa-bg/testapp:v2"}
    stack.set_config(configure_release)
    released = stack.up()
    measure(f"services.hardened: the release after it {released.seconds:.1f}s")
    answer = requests.get(f"http://127.0.0.1:{HTTP_PORT}/whoami", timeout=5)
    assert answer.status_code == 200 and "green" in answer.text, answer.text
    again = stack.run("preview", "--expect-no-changes", check=False)
    assert again.returncode == 0, again.output[-4000:]
