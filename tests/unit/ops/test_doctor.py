"""ops/doctor.py: each check against a fake runner that answers as the real tools do (the
network and `docker ps` answers are recorded from a real stack: tests/unit/ops/fixtures/)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from ops import doctor
from ops.environment import Target
from ops.pulumi_cli import Command, OpsError, PulumiCli, Result
from tests.unit.ops.fakes import OPS_FIXTURES, ops_fixture, pulumi_config

DF = ("Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
      "/dev/vda         264212084 34219140  61282124      36% /root/.cache/medusa-bluegreen/docker/data-root\n")
ROOT = "/root/.cache/medusa-bluegreen/docker/data-root"
E2ECLI = {"activeColor": "blue", "prefix": "e2ecli", "dockerHost": "unix:///run/medusa-bg/docker.sock",
          "router": {"bindAddress": "127.0.0.1", "httpPort": 58180, "previewPort": 59180}}


class Scripted:
    """Answers each command by the longest matching argv prefix; records what ran."""

    def __init__(self, config: Mapping[str, Any], **overrides: Result | Exception) -> None:
        self.ran: list[Command] = []
        inspect = [c for c in ops_fixture("e2ecli_inspect.json") if c["Name"] == "/e2ecli-router"]
        self.answers: dict[str, Result | Exception] = {
            "pulumi version": Result(0, "v3.259.0\n"),
            "pulumi config": Result(0, json.dumps(pulumi_config(**config))),
            "docker version": Result(0, "20.10.24+dfsg1\n"),
            "docker ps": Result(0, (OPS_FIXTURES / "docker_ps_ports.txt").read_text()),
            "docker network": Result(0, json.dumps(ops_fixture("e2ecli_network.json"))),
            "docker inspect": Result(0, json.dumps(inspect)),
            "docker exec": Result(0, "172.20.0.5      e2ecli-blue-server\n"),
            "docker info": Result(0, ROOT + "\n"),
            "df": Result(0, DF),
            "ssh": Result(0, DF),
            **{key.replace("_", " "): value for key, value in overrides.items()},
        }

    def run(self, command: Command) -> Result:
        self.ran.append(command)
        words = [w for w in command.argv if w not in ("--host",) and not w.startswith(("unix://", "ssh://", "tcp://"))]
        key = f"{words[0]} {words[1]}" if len(words) > 1 and f"{words[0]} {words[1]}" in self.answers else words[0]
        answer = self.answers[key]
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(config: Mapping[str, Any] = E2ECLI, probe: doctor.PortProbe = lambda a, p: None, stack: str = "e2ecli",
        **overrides: Result | Exception) -> tuple[list[doctor.Check], Scripted]:
    fake = Scripted(config, **overrides)
    checks = doctor.doctor(fake, PulumiCli(stack), Target(stack=stack), "3.259.0", probe)
    return checks, fake


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.name: check for check in checks}


def test_a_healthy_stack_passes_every_check() -> None:
    checks, fake = run()
    assert [(c.name, c.status) for c in checks] == [
        ("engine", "ok"), ("stack", "ok"), ("docker host", "ok"), ("port http", "ok"), ("port preview", "ok"),
        ("docker dns", "ok"), ("disk", "ok"),
    ]
    found = by_name(checks)
    assert found["engine"].detail == "pulumi v3.259.0"
    assert found["port http"].detail == "127.0.0.1:58180 held by our router (e2ecli-router)"
    assert found["docker dns"].detail == "e2ecli-router resolves e2ecli-blue-server to 172.20.0.5 on e2ecli-net"
    assert found["disk"].detail.startswith("58.4 GiB free of 252.0 GiB on " + ROOT)
    assert doctor.exit_code(checks) == 0
    assert doctor.render(checks)[-1] == "all checks passed"
    exec_ = next(c for c in fake.ran if "exec" in c.argv)
    assert exec_.argv == ("docker", "--host", "unix:///run/medusa-bg/docker.sock", "exec", "e2ecli-router",
                          "getent", "hosts", "e2ecli-blue-server")


def test_a_port_another_container_holds_fails_with_a_fix() -> None:
    config = {**E2ECLI, "router": {"bindAddress": "0.0.0.0", "httpPort": 58080, "previewPort": 59180}}
    checks, _ = run(config)
    port = by_name(checks)["port http"]
    assert port.status == "FAIL" and port.detail == "0.0.0.0:58080 is held by container e2epol-router"
    assert port.fix == ("stop it (`docker --host unix:///run/medusa-bg/docker.sock stop e2epol-router`) "
                        "or set router.httpPort to a free port")
    assert doctor.exit_code(checks) == 1
    lines = doctor.render(checks)
    assert "FAIL  port http     0.0.0.0:58080 is held by container e2epol-router" in lines, lines
    assert lines[-1] == "1 check failed"


def test_a_port_held_outside_docker_on_a_local_engine_is_found_with_a_bind() -> None:
    config = {**E2ECLI, "router": {"bindAddress": "127.0.0.1", "httpPort": 8080, "previewPort": 9080}}
    tried: list[tuple[str, int]] = []

    def probe(address: str, port: int) -> str | None:
        tried.append((address, port))
        return "in use" if port == 8080 else None

    checks, _ = run(config, probe)
    found = by_name(checks)
    assert tried == [("127.0.0.1", 8080), ("127.0.0.1", 9080)]
    assert found["port http"].status == "FAIL" and "in use by a process outside Docker" in found["port http"].detail
    assert found["port http"].fix == "find it: ss -ltnp 'sport = :8080'; stop it or set router.httpPort to a free port"
    assert found["port preview"].detail == "127.0.0.1:9080 free"


def test_defaults_come_from_the_program_and_tls_adds_the_https_port() -> None:
    checks, _ = run({"activeColor": "blue", "tls": {"enabled": True, "certPath": "/c", "keyPath": "/k"}})
    ports = [(c.name, c.detail.split(" ")[0]) for c in checks if c.name.startswith("port")]
    assert ports == [("port http", "0.0.0.0:80"), ("port https", "0.0.0.0:443"), ("port preview", "127.0.0.1:9080")]


def test_an_ssh_host_is_checked_over_ssh_and_its_ports_without_a_bind() -> None:
    config = {**E2ECLI, "dockerHost": "ssh://deploy@api.shop.example.com:2222"}
    checks, fake = run(config, probe=lambda a, p: pytest.fail("no bind for a remote host"))  # type: ignore[arg-type]
    assert all(c.status == "ok" for c in checks), checks
    ssh = next(c for c in fake.ran if c.argv[0] == "ssh")
    assert ssh.argv == ("ssh", "-o", "BatchMode=yes", "-p", "2222", "deploy@api.shop.example.com", "df", "-Pk", ROOT)


def test_a_docker_host_that_does_not_answer() -> None:
    down = Result(1, "", "Cannot connect to the Docker daemon at unix:///run/medusa-bg/docker.sock. "
                         "Is the docker daemon running?")
    checks, _ = run(stack="local", docker_version=down)
    docker = by_name(checks)["docker host"]
    assert docker.status == "FAIL" and "Is the docker daemon running?" in docker.detail
    assert docker.fix == "start the harness dockerd: harness/dockerd.sh start"
    assert checks[-1] == doctor.Check("docker", "skip", "ports, DNS and disk need the Docker host")
    ssh_fix = doctor.docker_fix(Target(stack="production"), "ssh://deploy@vps")
    assert ssh_fix.startswith("check that `ssh deploy@vps docker version` works from here")


def test_a_missing_engine_and_a_missing_stack_fail_with_fixes() -> None:
    missing = OpsError("'pulumi' not found on PATH: install the Pulumi CLI, or build this repo's engine")
    checks, _ = run(stack="local", pulumi_version=missing,
                    pulumi_config=Result(6, "", "error: no stack named 'local' found"))
    assert [(c.name, c.status) for c in checks] == [("engine", "FAIL"), ("stack", "FAIL"), ("docker host", "skip")]
    assert by_name(checks)["stack"].fix == "create the local stack: make up"
    named, _ = run(pulumi_config=Result(6, "", "error: no stack named 'e2ecli' found"))
    assert "bin/bluegreen --stack e2ecli pulumi stack ls" in str(by_name(named)["stack"].fix)


def test_an_engine_other_than_the_pin_is_noted() -> None:
    checks, _ = run(pulumi_version=Result(0, "v3.300.0\n"))
    assert by_name(checks)["engine"] == doctor.Check(
        "engine", "ok", "pulumi v3.300.0; requirements.txt pins 3.259.0 (the SDK the program runs on)")


def test_dns_is_skipped_before_the_network_exists_and_fails_when_it_does_not_resolve() -> None:
    checks, _ = run(docker_network=Result(1, "[]", "Error: No such network: e2ecli-net"))
    assert by_name(checks)["docker dns"].status == "skip"
    checks, _ = run(docker_exec=Result(2, ""))
    dns = by_name(checks)["docker dns"]
    assert dns.status == "FAIL" and dns.detail == "e2ecli-router cannot resolve e2ecli-blue-server on e2ecli-net " \
                                                  "through Docker's DNS"
    checks, _ = run(docker_inspect=Result(1, "[]", "Error: No such container: e2ecli-router"))
    assert by_name(checks)["docker dns"].fix == "bring it back: bin/bluegreen --stack e2ecli recover"


def test_little_disk_left_fails() -> None:
    low = DF.replace("61282124", "1048576")
    checks, _ = run(df=Result(0, low))
    disk = by_name(checks)["disk"]
    assert disk.status == "FAIL" and disk.detail.startswith("1.0 GiB free of 252.0 GiB")
    assert "docker --host unix:///run/medusa-bg/docker.sock system df" in str(disk.fix)
    tcp, _ = run({**E2ECLI, "dockerHost": "tcp://10.0.0.5:2376"})
    assert by_name(tcp)["disk"].status == "skip"


def test_parse_df_and_network_members() -> None:
    assert doctor.parse_df(DF) == (61282124 * 1024, 264212084 * 1024)
    with pytest.raises(OpsError, match="unexpected df output"):
        doctor.parse_df("df: /x: No such file or directory\n")
    assert doctor.network_members(json.dumps(ops_fixture("e2ecli_network.json"))) == [
        "e2ecli-blue-server", "e2ecli-green-server", "e2ecli-green-worker", "e2ecli-postgres", "e2ecli-redis",
        "e2ecli-router"]


def test_bind_probe_finds_a_listening_port() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert doctor.bind_probe("127.0.0.1", port) == "in use"
    assert doctor.bind_probe("127.0.0.1", port) is None
