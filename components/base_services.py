"""Shared base services: the private network, data volumes, Postgres, Redis, Meilisearch.

Nothing here depends on the active color (rule 3): a flip or a release changes no input of
these resources, so Pulumi never restarts them. Data volumes outlive `pulumi destroy`
(retain_on_delete) and no data port is published on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.stack_secrets import as_secret
from core import docker_cli, naming
from core.container_defaults import LOG_DRIVER, LOG_OPTS, go_duration
from core.settings import DatabaseSettings, MeilisearchSettings, RedisSettings, ServiceImages
from core.urls import postgres_url, redis_url

# Reads the password from the environment, so it is on no command line (rule 8); redis.conf
# double-quoted strings understand \\ and \" escapes, which makes any printable password safe.
REDIS_BOOT = (
    "set -eu; umask 077; "
    "escaped=$(printf '%s' \"$REDISCLI_AUTH\" | sed 's/[\\\\\"]/\\\\&/g'); "
    "printf 'requirepass \"%s\"\\n' \"$escaped\" > /tmp/redis-auth.conf; "
    "exec redis-server /tmp/redis-auth.conf --appendonly yes --dir /data --protected-mode no"
)

# How long `pulumi up` waits for a new Postgres/Redis container to report healthy.
WAIT_HEALTHY_SECONDS = 120


@dataclass(frozen=True)
class BaseServicesArgs:
    prefix: str
    images: ServiceImages
    database: DatabaseSettings
    redis: RedisSettings
    meilisearch: MeilisearchSettings
    postgres_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    meilisearch_key: pulumi.Output[str]
    docker_host: str


class BaseServices(pulumi.ComponentResource):
    network_name: pulumi.Output[str]
    database_url: pulumi.Output[str] | None
    redis_url: pulumi.Output[str] | None

    def __init__(self, name: str, args: BaseServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("medusa-bluegreen:index:BaseServices", name, None, opts)
        self._args = args
        self._docker_env = {"DOCKER_HOST": args.docker_host}
        child = pulumi.ResourceOptions(parent=self)
        keep_data = pulumi.ResourceOptions(parent=self, retain_on_delete=True)

        self.network = docker.Network(
            "network", name=naming.network(args.prefix), driver="bridge", opts=child
        )
        self.network_name = self.network.name
        self.backups_volume = docker.Volume(
            "backups-volume", name=naming.backups_volume(args.prefix), opts=keep_data
        )

        # What a color must wait for before its release steps run.
        self.ready: list[pulumi.Resource] = []
        self.database_url = None
        if args.database.mode == "bundled":
            postgres = self._postgres(child, keep_data)
            self.ready += [postgres, self._sync_password(postgres)]
            self.database_url = as_secret(
                args.postgres_password.apply(
                    lambda password: postgres_url(
                        args.database.user, password, naming.POSTGRES_HOST, args.database.name
                    )
                )
            )

        self.redis_url = None
        if args.redis.mode == "bundled":
            self.ready.append(self._redis(child, keep_data))
            self.redis_url = as_secret(
                args.redis_password.apply(lambda password: redis_url(password, naming.REDIS_HOST))
            )

        if args.meilisearch.enabled:
            self.ready.append(self._meilisearch(child, keep_data))

        self.register_outputs({"network_name": self.network_name})

    def _attach(self, alias: str) -> list[docker.ContainerNetworksAdvancedArgs]:
        return [docker.ContainerNetworksAdvancedArgs(name=self.network.name, aliases=[alias])]

    def _postgres(self, child: pulumi.ResourceOptions, keep_data: pulumi.ResourceOptions) -> docker.Container:
        args = self._args
        data = docker.Volume("postgres-volume", name=naming.volume(args.prefix, "pgdata"), opts=keep_data)
        image = docker.RemoteImage("postgres-image", name=args.images.postgres, keep_locally=True, opts=child)
        return docker.Container(
            "postgres",
            name=naming.service_container(args.prefix, "postgres"),
            image=image.image_id,
            envs=as_secret(
                args.postgres_password.apply(
                    lambda password: [
                        f"POSTGRES_DB={args.database.name}",
                        f"POSTGRES_PASSWORD={password}",
                        f"POSTGRES_USER={args.database.user}",
                    ]
                )
            ),
            volumes=[
                docker.ContainerVolumeArgs(volume_name=data.name, container_path="/var/lib/postgresql/data"),
                docker.ContainerVolumeArgs(volume_name=self.backups_volume.name, container_path="/backups"),
            ],
            networks_advanced=self._attach(naming.POSTGRES_HOST),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "pg_isready", "-h", "127.0.0.1", "-U", args.database.user, "-d", args.database.name],
                interval=go_duration(2), timeout=go_duration(5), retries=15, start_period=go_duration(60),
            ),
            # The backup and the migration run right after this resource: they need the
            # server accepting connections, not just a started process (initdb takes seconds).
            wait=True,
            wait_timeout=WAIT_HEALTHY_SECONDS,
            restart="unless-stopped",
            stop_timeout=60,
            destroy_grace_seconds=60,
            log_driver=LOG_DRIVER, log_opts=LOG_OPTS,
            opts=child,
        )

    def _sync_password(self, postgres: docker.Container) -> command.local.Command:
        # Once per Postgres container: a new container is what a new password or a kept
        # volume under a fresh stack comes with.
        return command.local.Command(
            "postgres-password",
            create=postgres.name.apply(docker_cli.sync_postgres_password),
            triggers=[postgres.id],
            environment=self._docker_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres]),
        )

    def _redis(self, child: pulumi.ResourceOptions, keep_data: pulumi.ResourceOptions) -> docker.Container:
        args = self._args
        data = docker.Volume("redis-volume", name=naming.volume(args.prefix, "redisdata"), opts=keep_data)
        image = docker.RemoteImage("redis-image", name=args.images.redis, keep_locally=True, opts=child)
        return docker.Container(
            "redis",
            name=naming.service_container(args.prefix, "redis"),
            image=image.image_id,
            command=["sh", "-c", REDIS_BOOT],
            envs=as_secret(args.redis_password.apply(lambda password: [f"REDISCLI_AUTH={password}"])),
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path="/data")],
            networks_advanced=self._attach(naming.REDIS_HOST),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", "redis-cli ping | grep -q PONG"],
                interval=go_duration(2), timeout=go_duration(5), retries=15, start_period=go_duration(30),
            ),
            wait=True,
            wait_timeout=WAIT_HEALTHY_SECONDS,
            restart="unless-stopped",
            stop_timeout=30,
            log_driver=LOG_DRIVER, log_opts=LOG_OPTS,
            opts=child,
        )

    def _meilisearch(self, child: pulumi.ResourceOptions, keep_data: pulumi.ResourceOptions) -> docker.Container:
        args = self._args
        data = docker.Volume("meilisearch-volume", name=naming.volume(args.prefix, "meilidata"), opts=keep_data)
        image = docker.RemoteImage("meilisearch-image", name=args.images.meilisearch, keep_locally=True, opts=child)
        return docker.Container(
            "meilisearch",
            name=naming.service_container(args.prefix, "meilisearch"),
            image=image.image_id,
            envs=as_secret(
                args.meilisearch_key.apply(
                    lambda key: ["MEILI_ENV=production", f"MEILI_MASTER_KEY={key}", "MEILI_NO_ANALYTICS=true"]
                )
            ),
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path="/meili_data")],
            networks_advanced=self._attach(naming.MEILISEARCH_HOST),
            restart="unless-stopped",
            stop_timeout=30,
            log_driver=LOG_DRIVER, log_opts=LOG_OPTS,
            opts=child,
        )
