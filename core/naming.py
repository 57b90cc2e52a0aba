"""Names of containers, volumes and networks, derived from the stack's prefix.

Kept in one place because the router config, the URLs and the components must agree on
them: a color's server is found by its container name through Docker's DNS.
"""

from typing import Literal

# The Pulumi project name (Pulumi.yaml) and so the namespace of every stack config key.
PROJECT = "medusa-bluegreen"

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


def worker_container(prefix: str, color: Color) -> str:
    return f"{prefix}-{color}-worker"


def service_container(prefix: str, service: DataService) -> str:
    return f"{prefix}-{service}"


def postgres_container(prefix: str) -> str:
    return service_container(prefix, "postgres")


def migrate_container(prefix: str) -> str:
    """One name for both colors: at most one migration of a stack can exist at a time."""
    return f"{prefix}-migrate"


def router_container(prefix: str) -> str:
    return f"{prefix}-router"


def acme_container(prefix: str) -> str:
    return f"{prefix}-acme"


def network(prefix: str) -> str:
    return f"{prefix}-net"


def volume(prefix: str, purpose: str) -> str:
    return f"{prefix}-{purpose}"
