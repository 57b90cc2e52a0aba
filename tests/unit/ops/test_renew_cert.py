"""ops/renew_cert.py: the renewal container's own script, on the stack's Docker host."""

from __future__ import annotations

import pytest

from ops import renew_cert
from ops.environment import Target
from ops.pulumi_cli import OpsError, PulumiCli, Result
from tests.unit.ops.fakes import FakeDocker, FakePulumi, container, pulumi_config

ACME = {"enabled": True, "acme": {"email": "ops@shop.example.com"}}


def test_renews_in_the_acme_container_of_the_stack() -> None:
    fake = FakePulumi(pulumi_config(activeColor="blue", prefix="shop", dockerHost="ssh://d@vps", tls=ACME),
                      docker=FakeDocker([container("shop-acme")]))
    fake.docker.replies[("exec",)] = Result(0, "")
    assert renew_cert.renew_cert(fake, PulumiCli("production"), Target(stack="production")) == 0
    command = fake.commands[-1]
    assert command.argv == ("docker", "--host", "ssh://d@vps", "exec", "shop-acme", "sh", "/tmp/renew.sh", "now")
    assert command.attach


@pytest.mark.parametrize("tls", [None, {"enabled": True, "certPath": "/c.pem", "keyPath": "/k.pem"}])
def test_refused_when_the_certificate_is_not_from_acme(tls: dict[str, object] | None) -> None:
    values = {"activeColor": "blue", **({"tls": tls} if tls else {})}
    fake = FakePulumi(pulumi_config(**values))
    with pytest.raises(OpsError, match="does not come from ACME"):
        renew_cert.renew_cert(fake, PulumiCli("production"), Target(stack="production"))
    assert not any(c.argv[0] == "docker" for c in fake.commands), "nothing ran on the Docker host"


def test_a_missing_renewal_container_is_named() -> None:
    fake = FakePulumi(pulumi_config(activeColor="blue", prefix="shop", tls=ACME))
    with pytest.raises(OpsError, match=r"the renewal container shop-acme does not exist on unix:///var/run/docker\.sock"):
        renew_cert.renew_cert(fake, PulumiCli("production"), Target(stack="production"))
