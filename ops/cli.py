"""bin/bluegreen: one CLI for day 2 (click). Parses, sets up the stack's environment, calls the
verb's module; every verb's logic is in its own module (ops/<verb>.py).

    bin/bluegreen [--stack local|NAME] [--cwd PROJECT_DIR] VERB ...

Exit codes: 0 done; 1 the operation failed (its output says why); 2 bad usage, a refusal or a
config problem (nothing changed, or the config was put back); 3 (release, switch, rollback)
the config could not be put back: the message lists the keys to fix.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from core.naming import COLORS, LOCAL_STACK, Color
from ops import admin_invite as admin_invite_verb
from ops import doctor as doctor_verb
from ops import logs as logs_verb
from ops import maintenance as maintenance_verb
from ops import recover as recover_verb
from ops import release as release_verb
from ops import renew_cert as renew_cert_verb
from ops import restore as restore_verb
from ops import rollback as rollback_verb
from ops import status as status_verb
from ops import switch as switch_verb
from ops.environment import REPO, Target, caller_dir, resolve_environment
from ops.pulumi_cli import Command, OpsError, PulumiCli, SubprocessRunner

# Verbs that change the stack: on the local stack they start the harness dockerd first, as
# `make up` does (status, logs and doctor report a stopped one instead).
CHANGES_THE_STACK = {"release", "switch", "rollback", "recover", "maintenance", "restore", "pulumi"}


@dataclass
class Session:
    """One invocation: where it acts, the environment its commands run in (set up on first use)."""

    target: Target
    environ: dict[str, str]
    verb: str = ""
    _env: dict[str, str] | None = field(default=None, repr=False)

    @property
    def who(self) -> str:
        return f"bluegreen {self.verb}".strip()

    def env(self) -> dict[str, str]:
        if self._env is None:
            self._env = resolve_environment(
                self.target, self.environ, lambda env: SubprocessRunner(env), self.verb in CHANGES_THE_STACK
            )
        return self._env

    def runner(self, **extra: str) -> SubprocessRunner:
        return SubprocessRunner({**self.env(), **extra}, echo=sys.stdout)

    def pulumi(self) -> PulumiCli:
        return PulumiCli(stack=self.target.stack, cwd=str(self.target.project_dir))


F = TypeVar("F", bound=Callable[..., Any])


def verb(function: F) -> F:
    """Runs a verb: an OpsError becomes its message on stderr and its exit code."""

    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        session = click.get_current_context().find_object(Session)
        assert session is not None
        session.verb = click.get_current_context().info_name or ""
        try:
            return function(session, *args, **kwargs)
        except OpsError as error:
            message = str(error)
            if session.target.local and f"no stack named '{session.target.stack}'" in message:
                message += f"\nthe local stack does not exist yet: create it with `{session.target.make('up')}`"
            click.echo(f"{session.who}: {message}", err=True)
            return error.exit_code

    return cast(F, run)


class UpdateNumber(click.ParamType[int | str, Any]):
    """An update number of the stack history (1, 2, ...) or `latest`."""

    name = "N|latest"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or value == "latest":
            return cast(int | str, value)
        if not re.fullmatch(r"[0-9]+", str(value)):
            self.fail(f"{value!r} is not an update number or 'latest' (see `rollback --dry-run`)", param, ctx)
        number = int(value)
        if number < 1:
            self.fail("update numbers start at 1", param, ctx)
        return number


def _prog(environ: dict[str, str], caller: Path) -> str:
    """How to invoke this CLI again, for the commands it prints: as the user did."""
    given = environ.get("BLUEGREEN_PROG")
    if given:
        return given
    wrapper = REPO / "bin" / "bluegreen"
    try:
        return str(wrapper.relative_to(caller))
    except ValueError:
        return str(wrapper)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--stack", default=LOCAL_STACK, show_default=True, metavar="NAME",
              help="The stack: `local` (the embedded one `make up` made) or a stack of your backend "
                   "(PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE from your environment).")
@click.option("--cwd", "project_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="The Pulumi project directory (default: this repo).")
@click.pass_context
def bluegreen(ctx: click.Context, stack: str, project_dir: str | None) -> None:
    """Day-2 operations of a medusa-bluegreen stack: status, release, switch, rollback, logs,
    doctor, recover, maintenance, restore, admin-invite. Every command it prints works as printed."""
    environ = {k: v for k, v in os.environ.items() if k not in ("BLUEGREEN_CALLER_DIR", "BLUEGREEN_PROG")}
    caller = caller_dir(os.environ)
    directory = (caller / project_dir).resolve() if project_dir else REPO
    if project_dir and not (directory / "Pulumi.yaml").is_file():
        raise click.BadParameter(f"{directory} has no Pulumi.yaml", param_hint="--cwd")
    target = Target(stack=stack, project_dir=directory, prog=_prog(dict(os.environ), caller), caller=caller)
    ctx.obj = Session(target=target, environ=environ)


@bluegreen.command()
@click.option("--json", "machine", is_flag=True, help="JSON for machines instead of text.")
@verb
def status(session: Session, machine: bool) -> int:
    """Live color, each color's image and containers, last release, last backup."""
    code, text = status_verb.status(session.runner(), session.pulumi(), session.target, machine)
    click.echo(text)
    return code


@bluegreen.command()
@click.option("--image", metavar="REF", help="Pinned image ref to release (name:tag or name@sha256:...).")
@click.option("--build", metavar="DIR", help="App directory to build the idle color from (on the Docker host).")
@verb
def release(session: Session, image: str | None, build: str | None) -> int:
    """Release to the idle color, gate it, flip to it. A failed run restores the config exactly."""
    if (image is None) == (build is None):
        raise click.UsageError("give exactly one of --image REF or --build DIR")
    source: release_verb.Source = (
        release_verb.ImageSource(image) if image is not None
        else release_verb.build_source(cast(str, build), session.target.project_dir, session.target.caller)
    )
    return release_verb.release(session.runner(), session.pulumi(), session.target, source, sys.stdout, sys.stderr)


@bluegreen.command()
@click.argument("color", type=click.Choice(COLORS))
@verb
def switch(session: Session, color: Color) -> int:
    """Make the warm COLOR live, as it is (refused when it is not warm)."""
    return switch_verb.switch(session.runner(), session.pulumi(), session.target, color, sys.stdout, sys.stderr)


@bluegreen.command()
@click.argument("name", required=False, metavar="[BACKUP]")
@click.option("--list", "list_only", is_flag=True, help="List the backups, newest first; restore nothing.")
@verb
def restore(session: Session, name: str | None, list_only: bool) -> int:
    """Put the bundled database back to BACKUP (a dump of it as it is now is taken first)."""
    if not list_only and name is None:
        raise click.UsageError("name a backup to restore, or list them with --list")
    return restore_verb.restore(
        session.runner(), session.pulumi(), session.target, None if list_only else name, sys.stdout, sys.stderr
    )


@bluegreen.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@verb
def maintenance(session: Session, state: str) -> int:
    """Storefront maintenance on (503 + page; /health and the admin stay up) or off. No reload."""
    return maintenance_verb.maintenance(
        session.runner(), session.pulumi(), session.target, state == "on", sys.stdout, sys.stderr
    )


@bluegreen.command()
@click.argument("to", type=UpdateNumber(), required=False, metavar="[N|latest]")
@click.option("--dry-run", is_flag=True, help="Show the history and the plan; change nothing.")
@click.option("--config-only", is_flag=True,
              help="Set the config, do not run pulumi up (`latest`: sync it to what is live).")
@verb
def rollback(session: Session, to: int | str | None, dry_run: bool, config_only: bool) -> int:
    """Serve the live image of update N again (default: the previous deployment), on the idle color."""
    target: rollback_verb.To = "latest" if to == "latest" else cast(int | None, to)
    return rollback_verb.rollback(session.runner(), session.pulumi(), session.target, target, dry_run, config_only,
                                  sys.stdout, sys.stderr)


@bluegreen.command()
@click.argument("color", type=click.Choice(COLORS))
@click.argument("role", type=click.Choice(logs_verb.ROLES))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--tail", type=click.IntRange(min=0), default=None, metavar="N", help="Only the last N lines.")
@verb
def logs(session: Session, color: Color, role: logs_verb.Role, follow: bool, tail: int | None) -> int:
    """The log of COLOR's server or worker container."""
    return logs_verb.logs(session.runner(), session.pulumi(), session.target, color, role, follow, tail)


@bluegreen.command()
@verb
def doctor(session: Session) -> int:
    """Check the engine, the Docker host, the router's ports, Docker DNS and disk space."""
    pins = re.search(r"(?m)^pulumi==(\S+)", (REPO / "requirements.txt").read_text())
    checks = doctor_verb.doctor(session.runner(), session.pulumi(), session.target, pins.group(1) if pins else None,
                                doctor_verb.bind_probe)
    click.echo("\n".join(doctor_verb.render(checks)))
    return doctor_verb.exit_code(checks)


@bluegreen.command("admin-invite")
@click.argument("email")
@verb
def admin_invite(session: Session, email: str) -> int:
    """Invite EMAIL to the admin dashboard; prints the page where they choose a password."""
    return admin_invite_verb.admin_invite(session.runner(), session.pulumi(), session.target, email, sys.stdout)


@bluegreen.command("renew-cert")
@verb
def renew_cert(session: Session) -> int:
    """Renew the ACME certificate now (the renewal container does it by itself when due)."""
    return renew_cert_verb.renew_cert(session.runner(), session.pulumi(), session.target)


@bluegreen.command()
@click.option("--unlock", is_flag=True,
              help="Release a lock taken on another machine (only when no update runs there).")
@verb
def recover(session: Session, unlock: bool) -> int:
    """Bring the stack back to a clean state after an interrupted or failed run."""
    cli = recover_verb.RecoverCli(stack=session.target.stack, cwd=str(session.target.project_dir))
    return recover_verb.recover(session.runner(), cli, unlock, sys.stderr)


@bluegreen.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, required=True, type=click.UNPROCESSED)
@verb
def pulumi(session: Session, args: tuple[str, ...]) -> int:
    """Run the pulumi CLI on this stack (PULUMI_STACK set, in the project directory), e.g.
    `pulumi config get activeColor`, `pulumi destroy --yes`."""
    command = Command(("pulumi", "--cwd", str(session.target.project_dir), *args), attach=True)
    return session.runner(PULUMI_STACK=session.target.stack).run(command).returncode


def main(argv: list[str] | None = None) -> int:
    caller = caller_dir(os.environ)
    try:
        result = bluegreen.main(args=argv, prog_name=_prog(dict(os.environ), caller), standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0
