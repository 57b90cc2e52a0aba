"""ops/admin_invite.py: Medusa's own invite, made in the live server, as a dashboard URL."""

from __future__ import annotations

import io

import pytest

from ops import admin_invite
from ops.environment import Target
from ops.pulumi_cli import OpsError, PulumiCli, Result
from tests.unit.ops.fakes import FakePulumi, pulumi_config

# What `medusa user --invite` logs, around the token.
SAID = ("info:    \n      Invite token: tok.abc-123\n"
        "      Open the invite in Medusa Admin at: [your-admin-url]/invite?token=tok.abc-123\n")
OUTPUTS = {"liveColor": "green", "publicUrl": "https://api.shop.example.com"}


def test_the_live_server_makes_the_invite_and_the_dashboard_url_is_printed() -> None:
    fake = FakePulumi(pulumi_config(activeColor="green", prefix="shop", dockerHost="ssh://d@vps"), outputs=OUTPUTS)
    fake.docker.replies[("exec",)] = Result(0, SAID)
    out = io.StringIO()
    assert admin_invite.admin_invite(fake, PulumiCli("production"), Target(stack="production"), "ops@shop.example.com",
                                     out) == 0
    assert fake.commands[-1].argv == ("docker", "--host", "ssh://d@vps", "exec", "shop-green-server",
                                      "node_modules/.bin/medusa", "user", "--email", "ops@shop.example.com", "--invite")
    assert "open https://api.shop.example.com/app/invite?token=tok.abc-123" in out.getvalue()


def test_not_an_email_is_refused_before_anything_runs() -> None:
    fake = FakePulumi(pulumi_config(activeColor="green"), outputs=OUTPUTS)
    with pytest.raises(OpsError, match="'ops' is not an email address"):
        admin_invite.admin_invite(fake, PulumiCli("production"), Target(stack="production"), "ops", io.StringIO())
    assert fake.commands == []


def test_a_stack_never_deployed_says_how_to_deploy_it() -> None:
    fake = FakePulumi(pulumi_config(activeColor="blue"), outputs={})
    deploy = "`bin/bluegreen --stack production pulumi up`"
    with pytest.raises(OpsError, match=f"no live color yet; deploy it first: {deploy}"):
        admin_invite.admin_invite(fake, PulumiCli("production"), Target(stack="production"), "a@b.c", io.StringIO())


def test_the_token_ends_where_a_json_logger_escaped_the_line_break() -> None:
    said = '{"level":"info","message":"\\n      Invite token: eyJ.abc_-9\\n      Open the invite"}'
    assert admin_invite.invite_url("http://localhost:8080", said) == "http://localhost:8080/app/invite?token=eyJ.abc_-9"


def test_no_token_in_what_medusa_said_is_an_error_with_its_words() -> None:
    with pytest.raises(OpsError, match="printed no invite token:\nerror: User account for following email"):
        admin_invite.invite_url("https://x", "error: User account for following email(s) already exist: a@b.c")


def test_an_address_invited_before_is_told_where_its_link_went() -> None:
    fake = FakePulumi(pulumi_config(activeColor="green", prefix="shop"), outputs=OUTPUTS)
    fake.docker.replies[("exec",)] = Result(1, "", "{ message: 'Invite with email: a@b.c, already exists.' }")
    with pytest.raises(OpsError, match=r"a@b\.c is invited already .* logs in at https://api\.shop\.example\.com/app"):
        admin_invite.admin_invite(fake, PulumiCli("production"), Target(stack="production"), "a@b.c", io.StringIO())
