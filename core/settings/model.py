"""The whole stack config: the sections, the per-color release keys and the secrets."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from pydantic.alias_generators import to_camel

from core.naming import Color
from core.settings.sections import (
    AnalysisSettings,
    BackupSettings,
    BuildDefaults,
    CanarySettings,
    DatabaseSettings,
    HealthGateSettings,
    ImageBuild,
    MaintenanceSettings,
    MedusaSettings,
    MeilisearchSettings,
    RedisSettings,
    ReleaseSettings,
    RouterSettings,
    S3Settings,
    SecretEnvName,
    Section,
    ServiceImages,
    ServiceSettings,
    TimeoutSettings,
    TlsSettings,
)
from core.settings.types import (
    SECRET,
    ApiKey,
    AppSecret,
    DockerHost,
    HostName,
    ImageRef,
    LongToken,
    Password,
    PostgresUrl,
    PreviewToken,
    RedisUrl,
    SecretValue,
    secret_field,
)


class Settings(Section):
    active_color: Color
    blue_image: ImageRef | None = None
    green_image: ImageRef | None = None
    blue_build: ImageBuild | None = None
    green_build: ImageBuild | None = None
    build_defaults: BuildDefaults = BuildDefaults()
    other_color: Literal["warm", "stopped"] = "warm"
    domain: HostName
    prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")] = "medusa"
    docker_host: DockerHost = "unix:///var/run/docker.sock"
    medusa: MedusaSettings = MedusaSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    services: ServiceSettings = ServiceSettings()
    meilisearch: MeilisearchSettings = MeilisearchSettings()
    s3: S3Settings = S3Settings()
    tls: TlsSettings = TlsSettings()
    router: RouterSettings = RouterSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    canary: CanarySettings = CanarySettings()
    health_gate: HealthGateSettings = HealthGateSettings()
    images: ServiceImages = ServiceImages()
    backups: BackupSettings = BackupSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    releases: ReleaseSettings = ReleaseSettings()

    # Secrets: set with `pulumi config set --secret KEY`. The passwords of bundled services and
    # the app secrets are generated (pulumi-random) when absent.
    jwt_secret: AppSecret | None = secret_field()
    cookie_secret: AppSecret | None = secret_field()
    postgres_password: Password | None = secret_field()
    redis_password: Password | None = secret_field()
    meilisearch_master_key: LongToken | None = secret_field()
    database_url: PostgresUrl | None = secret_field()
    redis_url: RedisUrl | None = secret_field()
    preview_token: PreviewToken | None = secret_field()
    stripe_api_key: ApiKey | None = secret_field()
    resend_api_key: ApiKey | None = secret_field()
    s3_access_key_id: ApiKey | None = secret_field()
    s3_secret_access_key: ApiKey | None = secret_field()
    # For backups.copyTo (a key of its own: the backups bucket is best not writable by the app).
    backups_access_key_id: ApiKey | None = secret_field()
    backups_secret_access_key: ApiKey | None = secret_field()
    extra_secret_env: dict[SecretEnvName, SecretValue] = secret_field(default={})

    def image_for(self, color: Color) -> str | None:
        """The color's image reference from config (None if it is built or absent)."""
        return self.blue_image if color == "blue" else self.green_image

    def build_for(self, color: Color) -> ImageBuild | None:
        """The color's build with buildDefaults under it (rule in BuildDefaults' docstring)."""
        build = self.blue_build if color == "blue" else self.green_build
        if build is None:
            return None
        shared = self.build_defaults
        return build.model_copy(update={
            "args": {**shared.args, **build.args},
            "secret_files": {**shared.secret_files, **build.secret_files},
            "repository": build.repository or shared.repository,
            "target": build.target or shared.target,
        })

    @property
    def public_url(self) -> str:
        if self.tls.enabled:
            port = "" if self.router.https_port == 443 else f":{self.router.https_port}"
            return f"https://{self.domain}{port}"
        port = "" if self.router.http_port == 80 else f":{self.router.http_port}"
        return f"http://{self.domain}{port}"

    @property
    def preview_url(self) -> str:
        host = self.router.probe_host
        if ":" in host and ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
        return f"http://{host}:{self.router.preview_port}"


def _is_secret(name: str) -> bool:
    extra = Settings.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and extra.get(SECRET) is True


def _is_object(name: str) -> bool:
    annotation = Settings.model_fields[name].annotation
    candidates = getattr(annotation, "__args__", ()) or (annotation,)
    return any(isinstance(c, type) and issubclass(c, BaseModel) for c in candidates) or name == "extra_secret_env"


# Top-level config keys as they are spelled in Pulumi.<stack>.yaml.
KNOWN_KEYS = frozenset(to_camel(name) for name in Settings.model_fields)
SECRET_KEYS = frozenset(to_camel(name) for name in Settings.model_fields if _is_secret(name))
OBJECT_KEYS = frozenset(to_camel(name) for name in Settings.model_fields if _is_object(name))


def keys_beside(loc: tuple[int | str, ...]) -> list[str]:
    """The keys of the section at loc (config aliases, e.g. ('router',) -> httpPort, ...): what a
    misspelt nested key is compared with. Empty where loc is not a section."""
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):  # an item of a list of sections: the list's field chose the model
            continue
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            return []
        candidates = getattr(field.annotation, "__args__", ()) or (field.annotation,)
        sections = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not sections:
            return []
        model = sections[0]
    return [f.alias or name for name, f in model.model_fields.items()]
