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
from core.meilisearch_keys import ensure_keys
from core.settings import DatabaseSettings, MeilisearchSettings, RedisSettings, ServiceImages, ServiceSettings
from core.urls import postgres_url, redis_url

# Reads the password from the environment, so it is on no command line (rule 8); redis.conf
# double-quoted strings understand \\ and \" escapes, which makes any printable password safe.
_REDIS_AUTH_FILE = (
    "set -eu; umask 077; "
    "escaped=$(printf '%s' \"$REDISCLI_AUTH\" | sed 's/[\\\\\"]/\\\\&/g'); "
    "printf 'requirepass \"%s\"\\n' \"$escaped\" > /tmp/redis-auth.conf; "
)
_REDIS_ARGS = "/tmp/redis-auth.conf --appendonly yes --dir /data --protected-mode no"
REDIS_BOOT = _REDIS_AUTH_FILE + "exec redis-server " + _REDIS_ARGS
# services.hardened: the image's own entrypoint, given `redis-server` as root, gives /data to
# user redis and drops to it (gosu in the official image), as `docker run redis` does; a `sh -c`
# command alone bypasses that and runs Redis as root.
REDIS_BOOT_AS_REDIS = (
    _REDIS_AUTH_FILE + "chown redis /tmp/redis-auth.conf; exec docker-entrypoint.sh redis-server " + _REDIS_ARGS
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
    services: ServiceSettings
    postgres_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    meilisearch_key: pulumi.Output[str]
    docker_host: str


class BaseServices(pulumi.ComponentResource):
    network_name: pulumi.Output[str]
    # services.hardened: the data services' internal network, which Medusa containers also join.
    data_network_name: pulumi.Output[str] | None
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
        self.data_network: docker.Network | None = None
        self.data_network_name = None
        bundled = args.database.mode == "bundled" or args.redis.mode == "bundled" or args.meilisearch.enabled
        if args.services.hardened and bundled:
            self.data_network = docker.Network(
                "data-network", name=naming.data_network(args.prefix), driver="bridge", internal=True, opts=child
            )
            self.data_network_name = self.data_network.name
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
            self.ready.append(self._meilisearch_keys(self._meilisearch(child, keep_data)))

        self.register_outputs({"network_name": self.network_name})

    def _attach(self, alias: str, shared_too: bool = False) -> list[docker.ContainerNetworksAdvancedArgs]:
        """A data service on its own network when hardened (`shared_too`: also on the router's)."""
        shared = docker.ContainerNetworksAdvancedArgs(name=self.network.name, aliases=[alias])
        if self.data_network is None:
            return [shared]
        data = docker.ContainerNetworksAdvancedArgs(name=self.data_network.name, aliases=[alias])
        return [data, shared] if shared_too else [data]

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
            command=["sh", "-c", REDIS_BOOT_AS_REDIS if args.services.hardened else REDIS_BOOT],
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
            # The router proxies its public search endpoints (/search/).
            networks_advanced=self._attach(naming.MEILISEARCH_HOST, shared_too=True),
            restart="unless-stopped",
            stop_timeout=30,
            log_driver=LOG_DRIVER, log_opts=LOG_OPTS,
            opts=child,
        )

    def _meilisearch_keys(self, meilisearch: docker.Container) -> command.local.Command:
        # Idempotent (core/meilisearch_keys.py), so it runs again whenever its script or the
        # container changes; the keys live in Meilisearch's volume.
        line = meilisearch.name.apply(ensure_keys)
        return command.local.Command(
            "meilisearch-keys",
            create=line,
            update=line,
            triggers=[meilisearch.id],
            environment=self._docker_env,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[meilisearch]),
        )
