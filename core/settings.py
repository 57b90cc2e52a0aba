"""The stack's settings: the only reader of Pulumi stack config.

`load_settings(raw)` validates a plain mapping (key -> string as Pulumi stores it) into a
typed `Settings`, or raises `SettingsError` listing every problem: which key, what is wrong
and how to fix it, never a secret's value. Nothing here creates a resource, so `pulumi
preview` fails before anything is touched and the rules are unit-testable.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from difflib import get_close_matches
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from core.naming import COLORS, PROJECT, Color

# Medusa env names the program sets itself; users must not override them through `medusa.env`.
RESERVED_ENV = frozenset(
    {
        "NODE_ENV", "PORT", "DATABASE_URL", "DATABASE_DRIVER_OPTIONS", "REDIS_URL",
        "JWT_SECRET", "COOKIE_SECRET", "STORE_CORS", "ADMIN_CORS", "AUTH_CORS",
        "MEDUSA_BACKEND_URL", "STOREFRONT_URL", "MEDUSA_WORKER_MODE", "DISABLE_MEDUSA_ADMIN",
        "DEPLOY_COLOR", "MEILISEARCH_HOST", "MEILISEARCH_API_KEY",
    }
)
SECRET_LOOKING_ENV = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL)")


class SettingsError(ValueError):
    """Every problem found in the stack config, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")


# --- field validators (messages never include a secret's value) -----------------------------

_IMAGE_NAME = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def _image_ref(value: str) -> str:
    match = _IMAGE_NAME.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a valid image reference (name[:tag][@sha256:digest])")
    if not match["tag"] and not match["digest"]:
        raise ValueError(
            f"{value!r} has no tag or digest; pin a release, e.g. '{value}:1.4.2' or "
            f"'{value}@sha256:<digest>'"
        )
    if match["tag"] == "latest" and not match["digest"]:
        raise ValueError(
            f"{value!r} uses the floating tag 'latest', which makes rollback from history "
            "impossible; pin a release tag or digest"
        )
    return value


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _hostname(value: str) -> str:
    labels = value.split(".")
    if len(value) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(
            f"{value!r} is not a valid host name (lowercase letters, digits and hyphens in "
            "dot-separated labels, no scheme, port or path)"
        )
    return value


_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(?::[0-9]{1,5})?$")


def _origin(value: str) -> str:
    if not _ORIGIN.match(value):
        raise ValueError(
            f"{value!r} is not an origin; write scheme://host[:port] with no path or "
            "trailing slash, e.g. 'https://shop.example.com'"
        )
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)") from None
    return value


def _comma_list(value: Any) -> Any:
    # Accept a YAML list or the seed system's comma-separated string.
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _secret_text(min_length: int) -> Any:
    def check(value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise ValueError("contains a control character or line break; remove it")
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            raise ValueError(
                "is wrapped in quotes, which would become part of the value (the seed "
                "system's quote bug); set it without the surrounding quotes"
            )
        if len(text) < min_length:
            raise ValueError(f"is shorter than {min_length} characters; use a longer random value")
        return value

    return AfterValidator(check)


ImageRef = Annotated[str, AfterValidator(_image_ref)]
HostName = Annotated[str, AfterValidator(_hostname)]
Origin = Annotated[str, AfterValidator(_origin)]
OriginList = Annotated[list[Origin], BeforeValidator(_comma_list)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
IpAddress = Annotated[str, AfterValidator(_ip)]
Port = Annotated[int, Field(ge=1, le=65535)]
Password = Annotated[SecretStr, _secret_text(12)]
AppSecret = Annotated[SecretStr, _secret_text(32)]
ApiKey = Annotated[SecretStr, _secret_text(8)]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


# --- sections -------------------------------------------------------------------------------


class MedusaSettings(_Model):
    store_cors: OriginList = []
    admin_cors: OriginList = []
    auth_cors: OriginList = []
    backend_url: HttpUrl | None = None  # default: the public URL
    storefront_url: HttpUrl | None = None
    env: dict[EnvName, str] = {}
    server_memory_mb: int = Field(default=1024, ge=256)
    worker_memory_mb: int = Field(default=1024, ge=256)
    stop_timeout_seconds: int = Field(default=30, ge=1, le=600)
    migrate_command: list[str] = ["npx", "medusa", "db:migrate"]


class DatabaseSettings(_Model):
    mode: Literal["bundled", "external"] = "bundled"
    name: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "medusa"
    user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "medusa"
    # Passed to Medusa as DATABASE_DRIVER_OPTIONS, e.g. {"connection": {"ssl": {...}}} for Supabase.
    driver_options: dict[str, Any] = {}


class RedisSettings(_Model):
    mode: Literal["bundled", "external"] = "bundled"


class MeilisearchSettings(_Model):
    enabled: bool = True


class S3Settings(_Model):
    bucket: str | None = None
    region: str | None = None
    endpoint: HttpUrl | None = None
    file_url: HttpUrl | None = None


class TlsSettings(_Model):
    enabled: bool = False
    cert_path: str | None = None  # on the Docker host
    key_path: str | None = None


class RouterSettings(_Model):
    bind_address: IpAddress = "0.0.0.0"
    http_port: Port = 80
    https_port: Port = 443
    # The preview route reaches the idle color for the health gate; loopback keeps it private.
    preview_bind_address: IpAddress = "127.0.0.1"
    preview_port: Port = 9080
    # Where the machine running `pulumi up` reaches the router's published ports.
    probe_host: str = "127.0.0.1"
    rate_limit_per_second: int = Field(default=50, ge=1)
    rate_limit_burst: int = Field(default=100, ge=0)
    max_body_size: Annotated[str, Field(pattern=r"^[0-9]+[kKmMgG]?$")] = "50m"


class HealthGateSettings(_Model):
    path: Annotated[str, Field(pattern=r"^/[^\s]*$")] = "/health"
    timeout_seconds: float = Field(default=5.0, gt=0)
    deadline_seconds: float = Field(default=300.0, gt=0)
    initial_backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=15.0, gt=0)
    expect_body: str | None = "OK"


class ServiceImages(_Model):
    postgres: ImageRef = "postgres:15.10-bookworm"
    redis: ImageRef = "redis:7.4-bookworm"
    meilisearch: ImageRef = "getmeili/meilisearch:v1.12"
    nginx: ImageRef = "nginx:1.27-bookworm"


class BackupSettings(_Model):
    enabled: bool = True


def _keep_releases(value: int) -> int:
    if value < 1:
        raise ValueError(
            f"must be at least 1 (the number of earlier releases whose images stay on the Docker "
            f"host for scripts/rollback.py), got {value}"
        )
    return value


class ReleaseSettings(_Model):
    # Besides the two colors' own images, which are always kept.
    keep: Annotated[int, AfterValidator(_keep_releases)] = 3


class TimeoutSettings(_Model):
    """How long each long-running release step may take before it is killed and the run fails.

    A hung build, dump or migration would otherwise hold the stack's lock forever; the step's
    whole process group is killed, so nothing it started keeps running into the next run.
    """

    build_seconds: int = Field(default=1800, ge=10, le=86400)
    backup_seconds: int = Field(default=1800, ge=10, le=86400)
    migrate_seconds: int = Field(default=900, ge=10, le=86400)


BuildArgName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SecretId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
RepositoryName = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")]


class ImageBuild(_Model):
    """Build the color's image from an app directory on this machine (instead of an image ref).

    The build runs on the Docker host (BuildKit) and is tagged with a digest of the context,
    so an unchanged directory builds nothing and `pulumi preview` shows no change.
    """

    context: Annotated[str, Field(min_length=1, pattern=r"^[^\x00\n]+$")]
    args: dict[BuildArgName, str] = {}
    # BuildKit secrets (id -> file on this machine), e.g. a CA bundle for npm; never in the image.
    secret_files: dict[SecretId, str] = {}
    repository: RepositoryName | None = None
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None


class Settings(_Model):
    active_color: Color
    blue_image: ImageRef | None = None
    green_image: ImageRef | None = None
    blue_build: ImageBuild | None = None
    green_build: ImageBuild | None = None
    other_color: Literal["warm", "stopped"] = "warm"
    domain: HostName
    prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")] = "medusa"
    docker_host: Annotated[str, Field(pattern=r"^(unix|ssh|tcp)://\S+$")] = (
        "unix:///var/run/docker.sock"
    )
    medusa: MedusaSettings = MedusaSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    meilisearch: MeilisearchSettings = MeilisearchSettings()
    s3: S3Settings = S3Settings()
    tls: TlsSettings = TlsSettings()
    router: RouterSettings = RouterSettings()
    health_gate: HealthGateSettings = HealthGateSettings()
    images: ServiceImages = ServiceImages()
    backups: BackupSettings = BackupSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    releases: ReleaseSettings = ReleaseSettings()

    # Secrets: set with `pulumi config set --secret KEY`. The passwords of bundled services and
    # the app secrets are generated (pulumi-random) when absent.
    jwt_secret: AppSecret | None = None
    cookie_secret: AppSecret | None = None
    postgres_password: Password | None = None
    redis_password: Password | None = None
    meilisearch_master_key: Annotated[SecretStr, _secret_text(16)] | None = None
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    preview_token: Annotated[SecretStr, _secret_text(16)] | None = None
    stripe_api_key: ApiKey | None = None
    resend_api_key: ApiKey | None = None
    s3_access_key_id: ApiKey | None = None
    s3_secret_access_key: ApiKey | None = None
    extra_secret_env: dict[EnvName, SecretStr] = {}

    def image_for(self, color: Color) -> str | None:
        """The color's image reference from config (None if it is built or absent)."""
        return self.blue_image if color == "blue" else self.green_image

    def build_for(self, color: Color) -> ImageBuild | None:
        return self.blue_build if color == "blue" else self.green_build

    @property
    def public_url(self) -> str:
        if self.tls.enabled:
            port = "" if self.router.https_port == 443 else f":{self.router.https_port}"
            return f"https://{self.domain}{port}"
        port = "" if self.router.http_port == 80 else f":{self.router.http_port}"
        return f"http://{self.domain}{port}"

    @property
    def preview_url(self) -> str:
        return f"http://{self.router.probe_host}:{self.router.preview_port}"


SECRET_KEYS = frozenset(
    to_camel(name)
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
)
OBJECT_KEYS = frozenset(
    to_camel(name)
    for name, field in Settings.model_fields.items()
    if isinstance(field.default, BaseModel) or name in ("extra_secret_env", "blue_build", "green_build")
)
KNOWN_KEYS = frozenset(to_camel(name) for name in Settings.model_fields)


# --- loading --------------------------------------------------------------------------------


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]"
        elif parts and part in ("function-after[check(), str]",):
            continue
        else:
            parts.append(str(part))
    return ".".join(p for p in parts if not p.startswith(("function-", "json-or-python")))


def _pydantic_problem(error: Mapping[str, Any]) -> str:
    key = _location(tuple(error["loc"]))
    kind = error["type"]
    if kind == "missing":
        return f"{key}: required; {_HOW_TO_SET.get(key, f'set it with `pulumi config set {key} ...`')}"
    if kind == "extra_forbidden":
        return f"{key}: unknown setting; see README.md 'Config reference' for the keys"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        got = ""
        if str(error["loc"][0]) not in SECRET_KEYS and isinstance(error.get("input"), str):
            got = f", got {error['input']!r}"
        return f"{key}: {message.replace('Input should be', 'must be')}{got}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if key.endswith(".[key]"):
            return f"{key.removesuffix('.[key]')}: is not a valid name (it must match {pattern})"
        return f"{key}: has an invalid format (it must match {pattern})"
    return f"{key}: {message[0].lower()}{message[1:]}"


_HOW_TO_SET = {
    "activeColor": "set it with `pulumi config set activeColor blue` (blue or green)",
    "domain": "set it with `pulumi config set domain shop.example.com`",
}


def _cross_checks(s: Settings) -> list[str]:
    """Rules that involve more than one key."""
    problems: list[str] = []
    active = s.active_color
    if s.image_for(active) is None and s.build_for(active) is None:
        problems.append(
            f"{active}Image: required because activeColor is {active}; set it with "
            f"`pulumi config set {active}Image registry/app:tag` (or build it from an app "
            f"directory: `pulumi config set --path {active}Build.context ./app`)"
        )
    for color in COLORS:
        if s.image_for(color) is not None and s.build_for(color) is not None:
            problems.append(
                f"{color}Build: set together with {color}Image; keep one (`pulumi config rm {color}Build` "
                f"or `pulumi config rm {color}Image`)"
            )
        elif color != active and s.build_for(color) is not None:
            # Rebuilding the idle color from a changed directory would replace it without a
            # release; pinning keeps it exactly what it was.
            problems.append(
                f"{color}Build: only the color being released (activeColor) is built; pin {color} to "
                f"the image it was built as: `pulumi config set {color}Image <stack output "
                f"imageRefs.{color}>` and `pulumi config rm {color}Build` (scripts/release.py does this)"
            )
    if s.database.mode == "external" and s.database_url is None:
        problems.append(
            "databaseUrl: required because database.mode is external; set it with "
            "`pulumi config set --secret databaseUrl postgres://user:pass@host:5432/db`"
        )
    if s.database.mode == "bundled" and s.database_url is not None:
        problems.append(
            "databaseUrl: set, but database.mode is bundled; remove it or set database.mode to external"
        )
    if s.database_url is not None:
        url = s.database_url.get_secret_value()
        if not re.match(r"^postgres(ql)?://[^\s]+$", url):
            problems.append("databaseUrl: must start with postgres:// or postgresql:// and contain no spaces")
        if "ssl_mode=" in url:
            problems.append("databaseUrl: uses 'ssl_mode'; the Postgres driver reads 'sslmode'")
    if s.redis.mode == "external" and s.redis_url is None:
        problems.append(
            "redisUrl: required because redis.mode is external; set it with "
            "`pulumi config set --secret redisUrl redis://default:pass@host:6379/0`"
        )
    if s.redis_url is not None:
        url = s.redis_url.get_secret_value()
        if not re.match(r"^rediss?://[^\s]+$", url):
            problems.append("redisUrl: must start with redis:// or rediss:// and contain no spaces")
        elif re.search(r"[?&]password=", url):
            problems.append(
                "redisUrl: carries the password as '?password=', which Redis clients ignore; "
                "put it in the user info: redis://default:<percent-encoded password>@host:6379/0"
            )
        elif "'" in url or '"' in url:
            problems.append("redisUrl: contains quote characters; percent-encode them (%27, %22)")
    if s.tls.enabled and not (s.tls.cert_path and s.tls.key_path):
        problems.append(
            "tls: enabled needs certPath and keyPath (files on the Docker host); set them or "
            "set tls.enabled to false"
        )
    ports = {"router.httpPort": s.router.http_port, "router.previewPort": s.router.preview_port}
    if s.tls.enabled:
        ports["router.httpsPort"] = s.router.https_port
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            problems.append(f"{key}: port {port} is already used by {seen[port]}; choose another")
        seen[port] = key
    preview_ip = ipaddress.ip_address(s.router.preview_bind_address)
    if not preview_ip.is_loopback and s.preview_token is None:
        problems.append(
            "previewToken: required because router.previewBindAddress is not loopback, so the "
            "idle color would be public; set it with `pulumi config set --secret previewToken <random>`"
        )
    if s.health_gate.deadline_seconds < s.health_gate.timeout_seconds:
        problems.append("healthGate.deadlineSeconds: must be at least healthGate.timeoutSeconds")
    if s.health_gate.max_backoff_seconds < s.health_gate.initial_backoff_seconds:
        problems.append(
            "healthGate.maxBackoffSeconds: must be at least healthGate.initialBackoffSeconds"
        )
    for color in COLORS:
        build = s.build_for(color)
        for name in build.args if build else {}:
            if SECRET_LOOKING_ENV.search(name.upper()):
                problems.append(
                    f"{color}Build.args.{name}: looks like a secret, but build args reach the docker command "
                    f"line and the image history; pass it as a BuildKit secret file instead "
                    f"(`pulumi config set --path {color}Build.secretFiles.<id> /path/to/file`)"
                )
    for name in s.medusa.env:
        if name in RESERVED_ENV:
            problems.append(
                f"medusa.env.{name}: set by the program from its own settings; remove it from medusa.env"
            )
        elif SECRET_LOOKING_ENV.search(name):
            problems.append(
                f"medusa.env.{name}: looks like a secret but medusa.env is stored in plain text; "
                "move it to extraSecretEnv (`pulumi config set --secret --path extraSecretEnv."
                f"{name} ...`)"
            )
    for name in s.extra_secret_env:
        if name in RESERVED_ENV:
            problems.append(
                f"extraSecretEnv.{name}: set by the program from its own settings; remove it"
            )
    if not s.medusa.migrate_command:
        problems.append("medusa.migrateCommand: must not be empty, e.g. [\"npx\", \"medusa\", \"db:migrate\"]")
    return problems


def _decode(key: str, value: str) -> Any:
    if key in OBJECT_KEYS:
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            decoded = None
        if not isinstance(decoded, dict):
            raise SettingsError([f"{key}: must be an object (set it with --path, e.g. "
                                 f"`pulumi config set --path {key}.name value`)"])
        return decoded
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    if value in ("true", "false") and key not in SECRET_KEYS:
        return value == "true"
    return value


def load_settings(raw: Mapping[str, str]) -> Settings:
    """Validate raw stack config (top-level key -> Pulumi's string form) into Settings."""
    problems: list[str] = []
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if value == "":
            continue  # `pulumi config set greenImage ""` clears a key
        if key not in KNOWN_KEYS:
            hint = get_close_matches(key, sorted(KNOWN_KEYS), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else "; see README.md 'Config reference'"
            problems.append(f"{key}: unknown config key{suggestion}")
            continue
        try:
            decoded[key] = _decode(key, value)
        except SettingsError as error:
            problems.extend(error.problems)
    try:
        settings = Settings.model_validate(decoded)
    except ValidationError as error:
        problems.extend(_pydantic_problem(e) for e in error.errors(include_url=False))
        raise SettingsError(problems) from None
    problems.extend(_cross_checks(settings))
    if problems:
        raise SettingsError(problems)
    return settings


def read_pulumi_config() -> dict[str, str]:
    """The project's stack config as {key: raw string}; the one place that reads it."""
    from pulumi.runtime.config import CONFIG, get_config_env

    prefix = f"{PROJECT}:"
    # The engine hands config to the program either through the runtime or the environment.
    merged = {**get_config_env(), **CONFIG.get()}
    return {
        key.removeprefix(prefix): str(value)
        for key, value in merged.items()
        if key.startswith(prefix)
    }
