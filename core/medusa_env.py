"""The environment of a Medusa container, split into plain and secret halves.

Server and worker run the same image; MEDUSA_WORKER_MODE picks the role and the worker never
serves the admin. The secret half only ever reaches Pulumi wrapped as a secret.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from core.naming import MEDUSA_PORT, MEILISEARCH_HOST, Color

Role = Literal["server", "worker"]


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


def plain_env(spec: MedusaEnvInput, role: Role) -> dict[str, str]:
    backend = spec.backend_url or spec.public_url
    env = {
        "NODE_ENV": "production",
        "PORT": str(MEDUSA_PORT),
        "DEPLOY_COLOR": spec.color,
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
        env["MEILISEARCH_HOST"] = f"http://{MEILISEARCH_HOST}:7700"
    s3_names = {"bucket": "S3_BUCKET", "region": "S3_REGION", "endpoint": "S3_ENDPOINT", "file_url": "S3_FILE_URL"}
    for key, name in s3_names.items():
        if spec.s3.get(key):
            env[name] = str(spec.s3[key])
    env.update(spec.extra_env)
    return env


def secret_env(secrets: MedusaSecrets) -> dict[str, str]:
    env = {
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
    env.update(secrets.extra)
    return env


def docker_envs(env: Mapping[str, str]) -> list[str]:
    """Docker's NAME=value list, sorted so an unchanged env never shows as a diff."""
    return [f"{name}={value}" for name, value in sorted(env.items())]
