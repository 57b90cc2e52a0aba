"""One color of the Medusa backend: its image, release steps, server and worker.

Server and worker run the same image (rule 7); MEDUSA_WORKER_MODE picks the role and the
worker never serves the admin. Resource names depend only on the color, so a warm color that
becomes the target again keeps its containers: same inputs, nothing recreated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.release import BackupCopyArgs, Release, ReleaseArgs, step_timeouts
from components.stack_secrets import as_secret
from core import docker_cli, migrate_once, naming
from core.app_build import BuildPlan
from core.container_defaults import (
    LOG_DRIVER,
    LOG_OPTS,
    MEDUSA_HEALTHCHECK,
    go_duration,
    memory_swap_mb,
)
from core.medusa_env import Role, docker_envs
from core.settings import BackupSettings, MedusaSettings, TimeoutSettings


@dataclass(frozen=True)
class ColorStackArgs:
    prefix: str
    color: naming.Color
    image: str
    network_name: pulumi.Input[str]
    data_network_name: pulumi.Input[str] | None  # services.hardened: joined besides network_name
    server_env: Mapping[str, str]
    worker_env: Mapping[str, str]
    secret_env: pulumi.Output[dict[str, str]]
    medusa: MedusaSettings  # memory limits, stop timeout, migrate command
    postgres_container: str | None
    docker_host: str
    timeouts: TimeoutSettings
    backups: BackupSettings
    backup_copy: BackupCopyArgs | None = None
    base_services: Sequence[pulumi.Resource] = ()
    build: BuildPlan | None = None  # build `image` from an app directory first
    # What the server waits for besides its release steps: for the color that is not being
    # released, the flip, so a change that replaces it (a new env) never hits it while it is live.
    serve_after: Sequence[pulumi.Resource] = ()


class ColorStack(pulumi.ComponentResource):
    image: docker.RemoteImage
    release: Release
    server: docker.Container

    def __init__(
        self,
        name: str,
        args: ColorStackArgs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("medusa-bluegreen:index:ColorStack", name, None, opts)
        self._args = args
        self.build = self._build(args.build) if args.build else None
        self.image = docker.RemoteImage(
            f"{args.color}-image",
            name=args.image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.build] if self.build else []),
        )
        self.release = Release(
            f"{args.color}-release",
            ReleaseArgs(
                color=args.color,
                image_ref=args.image,
                image_id=self.image.image_id,
                network_name=args.network_name,
                data_network_name=args.data_network_name,
                postgres_container=args.postgres_container,
                migrate_command=self._migrate_command(),
                migrate_container=naming.migrate_container(args.prefix),
                migrate_env=as_secret(
                    args.secret_env.apply(lambda secrets: {**args.worker_env, **secrets})
                ),
                docker_host=args.docker_host,
                backup_timeout_seconds=args.timeouts.backup_seconds,
                migrate_timeout_seconds=args.timeouts.migrate_seconds,
                backups_keep=args.backups.keep,
                backup_copy=args.backup_copy,
                after=args.base_services,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Replica 1 is `self.server`, with the inputs a single server always had (rule 7b).
        self.servers = [
            self._container("server", args.server_env, args.medusa.server_memory_mb,
                            [self.release, *args.serve_after], replica=replica)
            for replica in range(1, args.medusa.server_replicas + 1)
        ]
        self.server = self.servers[0]
        self.register_outputs({"image_id": self.image.image_id, "server_id": self.server.id})

    def _build(self, plan: BuildPlan) -> command.local.Command:
        # The tag carries the context digest: an unchanged app builds nothing.
        return command.local.Command(
            f"{self._args.color}-build",
            create=docker_cli.build_image(plan.context, plan.image_ref, plan.args, plan.secret_files, plan.target),
            triggers=[plan.image_ref],
            environment={"DOCKER_HOST": self._args.docker_host, "DOCKER_BUILDKIT": "1"},
            # Build args and RUN lines can echo values: the output kept in state is secret. (No
            # `logging` input here: a changed input re-runs a build, which could replace the live color.)
            opts=pulumi.ResourceOptions(
                parent=self, custom_timeouts=step_timeouts(self._args.timeouts.build_seconds),
                additional_secret_outputs=["stdout", "stderr"],
            ),
        )

    def start_worker(self, after: Sequence[pulumi.Resource], handover: bool = True) -> docker.Container:
        """The worker starts after the flip, and only once the other color's worker has stopped
        (rule 7c): two versions never consume the same queues or run the same scheduled jobs.
        `handover=False` (a canary step: this is the live color's worker, the other has none)."""
        args = self._args
        stopped: list[pulumi.Resource] = []
        if handover:
            other = naming.worker_container(args.prefix, naming.other_color(args.color))
            stopped.append(command.local.Command(
                f"{args.color}-worker-handover",
                create=docker_cli.stop_container(other, args.medusa.stop_timeout_seconds),
                environment={"DOCKER_HOST": args.docker_host},
                triggers=[self.image.image_id],
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(after),
                    custom_timeouts=step_timeouts(args.medusa.stop_timeout_seconds + 60),
                ),
            ))
        return self._container(
            "worker", args.worker_env, args.medusa.worker_memory_mb, [self.release, *after, *stopped]
        )

    def _migrate_command(self) -> pulumi.Input[list[str]]:
        args = self._args
        command = list(args.medusa.migrate_command)
        if not args.medusa.migrate_only_when_changed:
            return command
        return args.secret_env.apply(
            lambda secrets: migrate_once.wrapped(command, migrate_once.env_digest(args.worker_env, secrets))
        )

    def _container(
        self, role: Role, env: Mapping[str, str], memory_mb: int, after: Sequence[pulumi.Resource],
        replica: int = 1,
    ) -> docker.Container:
        args = self._args
        name = (
            naming.server_replica_container(args.prefix, args.color, replica)
            if role == "server"
            else naming.worker_container(args.prefix, args.color)
        )
        labels = [
            docker.ContainerLabelArgs(label="medusa-bluegreen.color", value=args.color),
            docker.ContainerLabelArgs(label="medusa-bluegreen.role", value=role),
            docker.ContainerLabelArgs(label="medusa-bluegreen.image", value=args.image),
        ]
        network = docker.ContainerNetworksAdvancedArgs(name=args.network_name)
        if replica > 1:
            labels.append(docker.ContainerLabelArgs(label="medusa-bluegreen.replica", value=str(replica)))
            network = docker.ContainerNetworksAdvancedArgs(
                name=args.network_name, aliases=[naming.server_container(args.prefix, args.color)]
            )
        networks = [network]
        if args.data_network_name is not None:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=args.data_network_name))
        return docker.Container(
            f"{args.color}-{role}" if replica == 1 else f"{args.color}-{role}-{replica}",
            name=name,
            image=self.image.image_id,
            envs=as_secret(args.secret_env.apply(lambda secrets: docker_envs({**env, **secrets}))),
            labels=labels,
            networks_advanced=networks,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=MEDUSA_HEALTHCHECK,
                interval=go_duration(10),
                timeout=go_duration(5),
                retries=3,
                start_period=go_duration(120),
            ),
            memory=memory_mb,
            memory_swap=memory_swap_mb(memory_mb),
            restart="unless-stopped",
            stop_timeout=args.medusa.stop_timeout_seconds,
            destroy_grace_seconds=args.medusa.stop_timeout_seconds,
            log_driver=LOG_DRIVER,
            log_opts=LOG_OPTS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
