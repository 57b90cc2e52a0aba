"""ops/docker_host.py: docker command lines and what docker prints, recorded from a real stack."""

from __future__ import annotations

import json

import pytest

from ops import docker_host
from ops.pulumi_cli import OpsError, Result
from tests.unit.ops.fakes import OPS_FIXTURES, ops_fixture

HOST = docker_host.DockerHost("ssh://deploy@vps")


def test_every_command_names_the_stacks_docker_host() -> None:
    assert HOST.inspect(["a", "b"]).argv == ("docker", "--host", "ssh://deploy@vps", "inspect", "--type",
                                              "container", "a", "b")
    logs = HOST.logs("shop-blue-server", follow=True, tail=20)
    assert logs.argv == ("docker", "--host", "ssh://deploy@vps", "logs", "--follow", "--tail", "20", "shop-blue-server")
    assert logs.attach and not logs.stream
    assert HOST.logs("x", follow=False, tail=None).argv[-2:] == ("logs", "x")
    assert str(HOST.rm(["a"])) == "docker --host ssh://deploy@vps rm --force a"


def test_inspect_of_a_real_stack_with_one_container_missing() -> None:
    names = docker_host.stack_containers("e2ecli")
    roles = {"blue-server": "e2ecli-blue-server", "blue-worker": "e2ecli-blue-worker",
             "green-server": "e2ecli-green-server", "green-worker": "e2ecli-green-worker",
             "router": "e2ecli-router"}
    assert {role: names[role] for role in roles} == roles
    # Every replica name there can be, from -2 on (rule 7b).
    assert names["green-server-2"] == "e2ecli-green-server-2" and names["blue-server-8"] == "e2ecli-blue-server-8"
    assert len(names) == len(roles) + 2 * 7
    result = Result(1, json.dumps(ops_fixture("e2ecli_inspect.json")), "Error: No such container: e2ecli-blue-worker")
    states = docker_host.parse_inspect(result, names.values())
    assert states["e2ecli-blue-worker"] == docker_host.ContainerState("e2ecli-blue-worker")
    assert not states["e2ecli-blue-worker"].exists and states["e2ecli-blue-worker"].describe() == "absent"
    server = states["e2ecli-green-server"]
    assert (server.status, server.health, server.image_label) == ("running", "healthy", "medusa-bg/testapp:v2")
    assert server.image_id == "sha256:a39177017d2a572b5dce6297f19b8b33b4ad3f7e1b954498e60e5ab5f8bcd208"
    assert states["e2ecli-green-worker"].describe() == "running, starting"


def test_a_host_that_does_not_answer_is_an_error_not_absent_containers() -> None:
    down = Result(1, "", "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?")
    with pytest.raises(OpsError, match=r"did not answer `docker inspect` .*Is the docker daemon running"):
        docker_host.parse_inspect(down, ["a"])


def test_published_ports_from_docker_ps() -> None:
    held = docker_host.parse_published((OPS_FIXTURES / "docker_ps_ports.txt").read_text())
    assert docker_host.Published("e2ecli-router", "127.0.0.1", 58180) in held
    assert docker_host.Published("e2epol-router", "127.0.0.1", 59080) in held
    assert all(p.container.endswith("router") for p in held), "unpublished ports (9000/tcp) hold nothing"
    both = docker_host.parse_published("web\t0.0.0.0:80->80/tcp, :::80->80/tcp\n")
    assert [(p.address, p.port) for p in both] == [("0.0.0.0", 80), ("::", 80)]


def test_bind_addresses_overlap_through_wildcards() -> None:
    assert docker_host.overlaps("0.0.0.0", "127.0.0.1") and docker_host.overlaps("127.0.0.1", "::")
    assert docker_host.overlaps("127.0.0.1", "127.0.0.1")
    assert not docker_host.overlaps("127.0.0.1", "10.0.0.5")
