"""Release steps for a color's new image: a database backup, its off-host copy (if set), then
migrations, once.

Both run before the color serves (the server container depends on them) and again only when
the color's image changes (rule 9). Migrations run from the new image in a one-off container,
never from a container's start script, so two colors never migrate at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.stack_secrets import as_secret
from core import docker_cli
from core.backup_copy import CopyTarget, copy_backup_line
from core.naming import Color

# pulumi-command runs `update` (or, without one, `create` again) when an input other than the
# triggers changes: a rotated secret in the env, or a new version of this program's command
# line. A release step must run once per image and never again from an old image, so the
# update only carries the previous output forward (the backup's name lives in it).
KEEP_PREVIOUS_OUTPUT = "printf '%s' \"${PULUMI_COMMAND_STDOUT-}\""


def step_timeouts(seconds: int) -> pulumi.CustomTimeouts:
    return pulumi.CustomTimeouts(create=f"{seconds}s", update=f"{seconds}s")


@dataclass(frozen=True)
class BackupCopyArgs:
    target: CopyTarget
    image: str  # the router's: it has curl (core/backup_copy.py)
    volume: str
    container: str
    credentials: pulumi.Input[dict[str, str]]  # secret
    after: Sequence[pulumi.Resource] = ()  # what makes `image` present on the Docker host


@dataclass(frozen=True)
class ReleaseArgs:
    color: Color
    image_ref: str
    image_id: pulumi.Input[str]
    network_name: pulumi.Input[str]
    data_network_name: pulumi.Input[str] | None  # services.hardened: where the data services are
    postgres_container: str | None  # None: external database, backups are the provider's job
    migrate_command: pulumi.Input[Sequence[str]]  # with the wrapper of core/migrate_once.py, or not
    migrate_container: str
    migrate_env: pulumi.Input[dict[str, str]]  # secret
    docker_host: str
    backup_timeout_seconds: int
    migrate_timeout_seconds: int
    backups_keep: int
    backup_copy: BackupCopyArgs | None = None
    # The shared services the steps talk to (Postgres, the network).
    after: Sequence[pulumi.Resource] = ()


class Release(pulumi.ComponentResource):
    backup: command.local.Command | None
    migrate: command.local.Command
    backup_name: pulumi.Output[str | None]

    def __init__(self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("medusa-bluegreen:index:Release", name, None, opts)
        environment = {"DOCKER_HOST": args.docker_host}
        after: list[pulumi.Resource] = list(args.after)
        self.backup = None
        self.backup_name = pulumi.Output.from_input(None)
        if args.postgres_container:
            self.backup = command.local.Command(
                f"{args.color}-backup",
                create=docker_cli.backup_database(
                    args.postgres_container, args.color, args.image_ref, args.backups_keep
                ),
                update=KEEP_PREVIOUS_OUTPUT,
                environment=environment,
                triggers=[args.image_id],
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=after, custom_timeouts=step_timeouts(args.backup_timeout_seconds),
                    # stdout is only what the script prints (the dump's name); pg_dump talks on stderr.
                    additional_secret_outputs=["stderr"],
                ),
            )
            self.backup_name = self.backup.stdout.apply(_backup_name)
            after = [*after, self.backup]
            if args.backup_copy:
                after.append(self._copy(args, args.backup_copy, environment, after))

        def migrate_line(network_and_env: list[object]) -> str:
            network, env, image_id, data_network, migrate_command = network_and_env
            assert isinstance(env, dict) and isinstance(migrate_command, list)
            return docker_cli.run_migrations(
                args.migrate_container, str(network), str(image_id), list(env), migrate_command,
                data_network=str(data_network) if data_network else None,
            )

        self.migrate = command.local.Command(
            f"{args.color}-migrate",
            # Only the env *names* reach the command line; the values travel in its environment.
            create=pulumi.Output.unsecret(
                pulumi.Output.all(args.network_name, args.migrate_env, args.image_id, args.data_network_name,
                                  args.migrate_command).apply(migrate_line)
            ),
            environment=as_secret(
                pulumi.Output.from_input(args.migrate_env).apply(lambda env: {**env, **environment})
            ),
            update=KEEP_PREVIOUS_OUTPUT,
            triggers=[args.image_id],
            # The migration runs with every secret in its environment, and an app may print its
            # config: its output is neither logged nor kept in plain state. A failure still shows it
            # (the command's error carries the output), which is when it is needed.
            logging=command.local.Logging.NONE,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=after, custom_timeouts=step_timeouts(args.migrate_timeout_seconds),
                additional_secret_outputs=["stdout", "stderr"],
            ),
        )
        self.register_outputs({"backup_name": self.backup_name})

    def _copy(
        self, args: ReleaseArgs, copy: BackupCopyArgs, environment: dict[str, str], after: list[pulumi.Resource]
    ) -> command.local.Command:
        def copy_line(name_and_network: list[object]) -> str:
            name, network = name_and_network
            if not isinstance(name, str):
                raise ValueError(f"the {args.color} backup printed no backup=<name> line, so there is nothing to copy")
            return copy_backup_line(name, copy.target, image=copy.image, network=str(network),
                                    volume=copy.volume, container=copy.container)

        # Once per image, like the backup; a copy that failed is retried by the next `pulumi up`
        # (the dump it copies is the one in the backup's state, still on the volume).
        return command.local.Command(
            f"{args.color}-backup-copy",
            create=pulumi.Output.all(self.backup_name, args.network_name).apply(copy_line),
            update=KEEP_PREVIOUS_OUTPUT,
            environment=as_secret(pulumi.Output.from_input(copy.credentials).apply(
                lambda credentials: {**credentials, **environment})),
            triggers=[args.image_id],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*after, *copy.after],
                custom_timeouts=step_timeouts(args.backup_timeout_seconds),
            ),
        )


def _backup_name(stdout: str) -> str | None:
    for line in stdout.splitlines():
        if line.startswith("backup="):
            return line.removeprefix("backup=")
    return None
