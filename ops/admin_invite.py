"""`bluegreen admin-invite EMAIL`: an invite to the admin dashboard, made by the live server.

    bin/bluegreen admin-invite ops@shop.example.com
    bin/bluegreen --stack production admin-invite ops@shop.example.com

Runs Medusa's own `medusa user --email EMAIL --invite` in the live color's server container and
prints the dashboard page that accepts it (`<publicUrl>/app/invite?token=...`), where the invited
person chooses their password. No password is made up here or passed on any command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TextIO

from core.naming import server_container
from ops.docker_host import DockerHost
from ops.environment import Target
from ops.pulumi_cli import OpsError, PulumiCli, Runner, as_color, read_config, read_outputs

MEDUSA = "node_modules/.bin/medusa"
# What `medusa user --invite` logs (@medusajs/medusa dist/commands/user.js); a JWT, and in
# production the logger prints JSON, so the line break after it arrives as the two characters `\n`.
_TOKEN = re.compile(r"Invite token: ([A-Za-z0-9._~-]+)")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def invite_argv(email: str) -> tuple[str, ...]:
    return (MEDUSA, "user", "--email", email, "--invite")


def invite_url(public_url: str, said: str) -> str:
    found = _TOKEN.search(said)
    if found is None:
        raise OpsError(f"`medusa user --invite` printed no invite token:\n{said.strip()[-1000:]}")
    return f"{public_url.rstrip('/')}/app/invite?token={found.group(1)}"


def live_server(outputs: Mapping[str, Any], prefix: str, target: Target) -> str:
    color = outputs.get("liveColor")
    if color is None:
        deploy = target.make("up") if target.local else target.command("pulumi", "up")
        raise OpsError(f"the stack has no live color yet; deploy it first: `{deploy}`")
    return server_container(prefix, as_color(str(color), "liveColor"))


def admin_invite(runner: Runner, cli: PulumiCli, target: Target, email: str, out: TextIO) -> int:
    if not _EMAIL.match(email):
        raise OpsError(f"{email!r} is not an email address")
    config = read_config(runner, cli)
    outputs = read_outputs(runner, cli)
    server = live_server(outputs, config.prefix(), target)
    docker = DockerHost(config.docker_host())
    made = runner.run(docker.exec(server, *invite_argv(email)))
    said = made.stdout + made.stderr
    if not made.ok and "already exist" in said:
        # Medusa keeps one invite per address and its CLI cannot print one again.
        raise OpsError(f"{email} is invited already (or is a user): the invite link was printed when it was made; "
                       f"a user logs in at {str(outputs['publicUrl']).rstrip('/')}/app, and another admin can "
                       "resend the invite from the dashboard (Settings > Users)")
    if not made.ok:
        raise OpsError(f"inviting {email} in {server} failed (exit {made.returncode}):\n{made.tail(15)}")
    print(f"admin invite for {email}: open {invite_url(str(outputs['publicUrl']), said)}",
          file=out)
    print("  (choose the password there; then log in at "
          f"{str(outputs['publicUrl']).rstrip('/')}/app)", file=out)
    return 0
