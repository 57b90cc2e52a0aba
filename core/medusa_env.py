"""The environment of a Medusa container, split into plain and secret halves.

Server and worker run the same image; MEDUSA_WORKER_MODE picks the role and the worker never
serves the admin. The secret half only ever reaches Pulumi wrapped as a secret.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from core.naming import MEDUSA_PORT, MEILISEARCH_HOST, MEILISEARCH_PORT, Color

Role = Literal["server", "worker"]

# Every env name the program sets, with the config key it comes from (None: derived by the
# program itself). Settings refuses these names in medusa.env and extraSecretEnv, so a user
# value can never silently replace one the program owns; a unit test proves plain_env and
# secret_env set exactly these.
# The color a container runs as: the one program-set value that differs between the colors.
COLOR_ENV = "DEPLOY_COLOR"

PROGRAM_ENV: Mapping[str, str | None] = {
    "NODE_ENV": None,
    "PORT": None,
    COLOR_ENV: None,
    "MEDUSA_WORKER_MODE": None,
    "DISABLE_MEDUSA_ADMIN": None,
    "MEDUSA_BACKEND_URL": "medusa.backendUrl",
    "STORE_CORS": "medusa.storeCors",
    "ADMIN_CORS": "medusa.adminCors",
    "AUTH_CORS": "medusa.authCors",
    "STOREFRONT_URL": "medusa.storefrontUrl",
    "DATABASE_DRIVER_OPTIONS": "database.driverOptions",
    "MEILISEARCH_HOST": None,
    "S3_BUCKET": "s3.bucket",
    "S3_REGION": "s3.region",
    "S3_ENDPOINT": "s3.endpoint",
    "S3_FILE_URL": "s3.fileUrl",
    "DATABASE_URL": None,
    "REDIS_URL": None,
    "JWT_SECRET": None,
    "COOKIE_SECRET": None,
    "MEILISEARCH_API_KEY": None,
    "STRIPE_API_KEY": "stripeApiKey",
    "RESEND_API_KEY": "resendApiKey",
    "S3_ACCESS_KEY_ID": "s3AccessKeyId",
    "S3_SECRET_ACCESS_KEY": "s3SecretAccessKey",
}
_S3_ENV = {"bucket": "S3_BUCKET", "region": "S3_REGION", "endpoint": "S3_ENDPOINT", "file_url": "S3_FILE_URL"}


@dataclass(frozen=True)
class MedusaEnvInput:
    color: Color
    public_url: str
    backend_url: str | None
    storefront_url: str | None
    store_cors: list[str]
    admin_cors: list[str]
    auth_cors: list[str]
    extra_env: Mapping[str, str]
    database_driver_options: Mapping[str, object]
    meilisearch_enabled: bool
    s3: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class MedusaSecrets:
    database_url: str
    redis_url: str
    jwt_secret: str
    cookie_secret: str
    meilisearch_key: str | None = None
    stripe_api_key: str | None = None
    resend_api_key: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


def _without_program_names(extra: Mapping[str, str]) -> dict[str, str]:
    # Settings already refuses them; this keeps the function right on its own.
    return {name: value for name, value in extra.items() if name not in PROGRAM_ENV}


def plain_env(spec: MedusaEnvInput, role: Role) -> dict[str, str]:
    backend = spec.backend_url or spec.public_url
    env = _without_program_names(spec.extra_env)
    env |= {
        "NODE_ENV": "production",
        "PORT": str(MEDUSA_PORT),
        COLOR_ENV: spec.color,
        "MEDUSA_WORKER_MODE": role,
        "DISABLE_MEDUSA_ADMIN": "true" if role == "worker" else "false",
        "MEDUSA_BACKEND_URL": backend,
        "STORE_CORS": ",".join(spec.store_cors),
        "ADMIN_CORS": ",".join(spec.admin_cors or [backend]),
        "AUTH_CORS": ",".join(spec.auth_cors or [*spec.store_cors, *(spec.admin_cors or [backend])]),
    }
    if spec.storefront_url:
        env["STOREFRONT_URL"] = spec.storefront_url
    if spec.database_driver_options:
        env["DATABASE_DRIVER_OPTIONS"] = json.dumps(spec.database_driver_options, sort_keys=True)
    if spec.meilisearch_enabled:
        env["MEILISEARCH_HOST"] = f"http://{MEILISEARCH_HOST}:{MEILISEARCH_PORT}"
    for key, name in _S3_ENV.items():
        if spec.s3.get(key):
            env[name] = str(spec.s3[key])
    return env


def secret_env(secrets: MedusaSecrets) -> dict[str, str]:
    env = _without_program_names(secrets.extra)
    env |= {
        "DATABASE_URL": secrets.database_url,
        "REDIS_URL": secrets.redis_url,
        "JWT_SECRET": secrets.jwt_secret,
        "COOKIE_SECRET": secrets.cookie_secret,
    }
    optional = {
        "MEILISEARCH_API_KEY": secrets.meilisearch_key,
        "STRIPE_API_KEY": secrets.stripe_api_key,
        "RESEND_API_KEY": secrets.resend_api_key,
        "S3_ACCESS_KEY_ID": secrets.s3_access_key_id,
        "S3_SECRET_ACCESS_KEY": secrets.s3_secret_access_key,
    }
    env.update({name: value for name, value in optional.items() if value})
    return env


def docker_envs(env: Mapping[str, str]) -> list[str]:
    """Docker's NAME=value list, sorted so an unchanged env never shows as a diff."""
    return [f"{name}={value}" for name, value in sorted(env.items())]
