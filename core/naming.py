"""Names of containers, volumes and networks, derived from the stack's prefix.

Kept in one place because the router config, the URLs and the components must agree on
them: a color's server is found by its container name through Docker's DNS.
"""

from typing import Literal

# The Pulumi project name (Pulumi.yaml) and so the namespace of every stack config key.
PROJECT = "medusa-bluegreen"
# The stack `make up` makes; commands printed for it need no --stack.
LOCAL_STACK = "local"

Color = Literal["blue", "green"]
COLORS: tuple[Color, Color] = ("blue", "green")

# Tag prefix of images the program builds from an app directory (`<repository>:src-<digest>`);
# image retention and rollback tell built images from pulled ones by it.
BUILD_TAG_PREFIX = "src-"

MEDUSA_PORT = 9000
MEILISEARCH_PORT = 7700
POSTGRES_HOST = "postgres"
REDIS_HOST = "redis"
MEILISEARCH_HOST = "meilisearch"

# Roles the bundled Postgres gets besides database.user (docker_cli.sync_postgres_password):
# the superuser for this program's own maintenance over the container's socket (no password,
# so no TCP login), and the image's bootstrap superuser, renamed and without login.
POSTGRES_ADMIN_ROLE = "bluegreen_admin"
POSTGRES_BOOTSTRAP_ROLE = "bluegreen_bootstrap"


# The shared services, each one container named after it (and reached by that name as its
# network alias).
DataService = Literal["postgres", "redis", "meilisearch"]
DATA_SERVICES: tuple[DataService, ...] = ("postgres", "redis", "meilisearch")


def other_color(color: Color) -> Color:
    return "green" if color == "blue" else "blue"


def server_container(prefix: str, color: Color) -> str:
    return f"{prefix}-{color}-server"


MAX_SERVER_REPLICAS = 8


def server_replica_container(prefix: str, color: Color, replica: int) -> str:
    """Replica 1 keeps the single server's name, so a stack that adds replicas recreates nothing;
    the others carry that name as their network alias, and Docker's DNS answers it with every
    replica's address (the router's `resolve` spreads requests over them)."""
    if not 1 <= replica <= MAX_SERVER_REPLICAS:
        raise ValueError(f"replica {replica} is outside 1..{MAX_SERVER_REPLICAS}")
    base = server_container(prefix, color)
    return base if replica == 1 else f"{base}-{replica}"


def server_replica_containers(prefix: str, color: Color, replicas: int) -> list[str]:
    return [server_replica_container(prefix, color, replica) for replica in range(1, replicas + 1)]


def all_server_containers(prefix: str, color: Color) -> list[str]:
    """Every name a replica of `color` can have, for the verbs that look a stack's containers up
    without its settings (status, recover)."""
    return server_replica_containers(prefix, color, MAX_SERVER_REPLICAS)


def worker_container(prefix: str, color: Color) -> str:
    return f"{prefix}-{color}-worker"


def service_container(prefix: str, service: DataService) -> str:
    return f"{prefix}-{service}"


def postgres_container(prefix: str) -> str:
    return service_container(prefix, "postgres")


def migrate_container(prefix: str) -> str:
    """One name for both colors: at most one migration of a stack can exist at a time."""
    return f"{prefix}-migrate"


def backup_copy_container(prefix: str) -> str:
    """One name for both colors, like the migration: one release step runs at a time."""
    return f"{prefix}-backup-copy"


def backups_volume(prefix: str) -> str:
    return volume(prefix, "backups")


def router_container(prefix: str) -> str:
    return f"{prefix}-router"


def acme_container(prefix: str) -> str:
    return f"{prefix}-acme"


def network(prefix: str) -> str:
    return f"{prefix}-net"


def data_network(prefix: str) -> str:
    """The internal network of the data services (services.hardened)."""
    return f"{prefix}-data"


def volume(prefix: str, purpose: str) -> str:
    return f"{prefix}-{purpose}"
