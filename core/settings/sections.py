"""The sections of the stack config, one small model each, validating what is theirs alone.

A rule that needs two sections is a named check in checks.py instead.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from core.medusa_env import PROGRAM_ENV
from core.naming import MAX_SERVER_REPLICAS, POSTGRES_ADMIN_ROLE, POSTGRES_BOOTSTRAP_ROLE
from core.settings.types import (
    BuildArgName,
    Command,
    EmailAddress,
    EnvName,
    HostOrIp,
    HostPath,
    HttpUrl,
    ImageRef,
    IpAddress,
    IpNetworkList,
    MigrationName,
    OriginList,
    PgIdentifier,
    PlainText,
    PlainValue,
    Port,
    RepositoryName,
    SecretId,
    looks_like_a_secret,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


def _program_env_name(where: str, fix: str) -> Any:
    def check(name: str) -> str:
        if name in PROGRAM_ENV:
            owner = PROGRAM_ENV[name]
            if owner is None:
                raise ValueError(f"set by the program from its own settings; {fix}")
            raise ValueError(f"set by the program from {owner}; set {owner} instead and remove it from {where}")
        return name

    return AfterValidator(check)


def _plain_env_name(name: str) -> str:
    if looks_like_a_secret(name):
        raise ValueError(
            "looks like a secret but medusa.env is stored in plain text; move it to extraSecretEnv "
            f"(`pulumi config set --secret --path extraSecretEnv.{name} ...`)"
        )
    return name


# Names a user may add to Medusa's environment: never one the program sets (core/medusa_env.py).
PlainEnvName = Annotated[
    EnvName, _program_env_name("medusa.env", "remove it from medusa.env"), AfterValidator(_plain_env_name)
]
SecretEnvName = Annotated[EnvName, _program_env_name("extraSecretEnv", "remove it")]


class MedusaSettings(Section):
    store_cors: OriginList = []
    admin_cors: OriginList = []
    auth_cors: OriginList = []
    backend_url: HttpUrl | None = None  # default: the public URL
    storefront_url: HttpUrl | None = None
    env: dict[PlainEnvName, PlainValue] = {}
    server_memory_mb: int = Field(default=1024, ge=256)
    # Server containers per color (rule 7b): Node serves on one core, so a multi-core host needs
    # more than one to use them. Each one has server_memory_mb.
    server_replicas: int = Field(default=1, ge=1, le=MAX_SERVER_REPLICAS)
    worker_memory_mb: int = Field(default=1024, ge=256)
    stop_timeout_seconds: int = Field(default=30, ge=1, le=600)
    migrate_command: Command = ["npx", "medusa", "db:migrate"]
    # Skip migrate_command when its inputs are those of the database's last migration
    # (core/migrate_once.py); false: run it on every new image.
    migrate_only_when_changed: bool = True


def _not_a_program_role(name: str) -> str:
    if name in (POSTGRES_ADMIN_ROLE, POSTGRES_BOOTSTRAP_ROLE):
        raise ValueError(
            f"{name!r} is a role the program keeps for itself in the bundled Postgres (the superuser "
            "it maintains the database with); choose another name, e.g. medusa"
        )
    return name


class DatabaseSettings(Section):
    mode: Literal["bundled", "external"] = "bundled"
    name: PgIdentifier = "medusa"
    user: Annotated[PgIdentifier, AfterValidator(_not_a_program_role)] = "medusa"
    # Passed to Medusa as DATABASE_DRIVER_OPTIONS, e.g. {"connection": {"ssl": {...}}} for Supabase.
    driver_options: dict[str, Any] = {}
    # Applied migrations an older image may run against (written expand/contract): the schema
    # check (core/schema_check.py) lets traffic flip to code that does not know these.
    acknowledged_migrations: list[MigrationName] = []


class RedisSettings(Section):
    mode: Literal["bundled", "external"] = "bundled"


class ServiceSettings(Section):
    """How the bundled data services run (Postgres, Redis, Meilisearch).

    hardened: on a network of their own (internal: no route out) that only the Medusa containers
    and migrations join, so the router and the ACME client cannot reach them (Meilisearch stays
    on the shared network too: the router serves its search API under /search/); Redis runs as
    its own user, not root. Off by default only because turning it on replaces the data
    services' containers once (their volumes are kept): a stack made before it existed must
    not have its database restarted by an upgrade of this program. The shipped stack files set it.
    """

    hardened: bool = False


class MeilisearchSettings(Section):
    enabled: bool = True


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value):
        bare = re.sub(r"^[a-z0-9]+://", "", value.strip()).split("/", 1)[0]
        hint = f"; did you mean {bare!r}?" if bare != value and _BUCKET.fullmatch(bare) else ""
        raise ValueError(
            f"{value!r} is not a bucket name (3-63 lowercase letters, digits, dots and hyphens; no s3:// "
            f"or path: the endpoint is a key of its own){hint}"
        )
    return value


class S3Settings(Section):
    bucket: Annotated[str, AfterValidator(_bucket)] | None = None
    region: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")] | None = None
    endpoint: HttpUrl | None = None
    file_url: HttpUrl | None = None


LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def _renew_days(value: int) -> int:
    if value >= 90:
        raise ValueError(
            f"must be less than 90, got {value}: a certificate lasts 90 days, so it would be renewed on every "
            "check until the CA's rate limit refuses it; keep the default 30"
        )
    return value


class AcmeSettings(Section):
    """Certificates from an ACME CA over HTTP-01, renewed on the Docker host (components/acme.py)."""

    directory_url: HttpUrl = LETS_ENCRYPT
    email: EmailAddress | None = None
    # Renew when fewer days than this are left (Let's Encrypt certificates last 90 days).
    renew_days: Annotated[int, Field(ge=1), AfterValidator(_renew_days)] = 30
    check_seconds: int = Field(default=43200, ge=60)
    # A PEM file on the Docker host that the ACME client trusts besides the system CAs: only for
    # a test CA (Pebble) whose directory is served with its own certificate.
    ca_certificates_path: HostPath | None = None


class TlsSettings(Section):
    enabled: bool = False
    # Bring your own certificate: files on the Docker host. Without them, TLS uses `acme`.
    cert_path: HostPath | None = None
    key_path: HostPath | None = None
    acme: AcmeSettings = AcmeSettings()

    @model_validator(mode="after")
    def _both_files_or_none(self) -> TlsSettings:
        if bool(self.cert_path) != bool(self.key_path):
            raise ValueError(
                "certPath and keyPath go together (files on the Docker host); set both, or neither "
                "to get certificates from tls.acme"
            )
        if self.cert_path and not self.enabled:
            raise ValueError(
                "certPath and keyPath are set but enabled is false, so the site would be served over plain "
                "HTTP; turn TLS on (`pulumi config set --path tls.enabled true`) or remove them "
                "(`pulumi config rm --path tls.certPath && pulumi config rm --path tls.keyPath`)"
            )
        if self.cert_path and self.cert_path == self.key_path:
            raise ValueError("certPath and keyPath name the same file; keyPath is the private key's own file")
        return self

    @property
    def acme_enabled(self) -> bool:
        return self.enabled and not self.cert_path


class RouterSettings(Section):
    bind_address: IpAddress = "0.0.0.0"
    http_port: Port = 80
    https_port: Port = 443
    # The idle color's route for people (an ssh tunnel); loopback keeps it private. The health gate
    # does not use it: it probes from inside the router (docs/rules.md, rule 6b).
    preview_bind_address: IpAddress = "127.0.0.1"
    preview_port: Port = 9080
    # The host name in the `previewUrl` output.
    probe_host: HostOrIp = "127.0.0.1"
    rate_limit_per_second: int = Field(default=50, ge=1)
    rate_limit_burst: int = Field(default=100, ge=0)
    max_body_size: Annotated[str, Field(pattern=r"^[0-9]+[kKmMgG]?$")] = "50m"
    # Open connections one client address may hold on a public server; beyond it nginx answers 503
    # at once, so one slow client cannot use up the router's connections.
    max_connections_per_client: int = Field(default=100, ge=1, le=10000)
    # How long a client may take to send a request's headers or body, or to read a response.
    client_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    # Proxies or a CDN in front of the router: only from these is X-Forwarded-For taken as the
    # client address (for the rate limit) and X-Forwarded-Proto as the scheme.
    trusted_proxies: IpNetworkList = []


def _url_path(value: str) -> str:
    if not value.startswith("/") or "://" in value:
        raise ValueError(f"{value!r} is not a path; write the path only, starting with /, e.g. /health")
    # RFC 3986 path and query characters, without the quote and `$` a config or shell line would choke on.
    if not re.fullmatch(r"/[A-Za-z0-9._~!*+,;=:@%/?&-]*", value):
        raise ValueError(
            f"{value!r} contains a character a URL path cannot carry as it is (space, quote, `$`, `#` "
            "(a fragment is never sent), `<>`, `{}` or a control character); percent-encode it or remove it"
        )
    return value


UrlPath = Annotated[str, AfterValidator(_url_path)]


class GateCheck(Section):
    """One more thing the gate proves through the preview route: `path` answers `expectStatus`
    with a body that contains `expectBody` (any body when unset)."""

    path: UrlPath
    expect_status: int = Field(default=200, ge=100, le=599)
    expect_body: PlainText | None = None


class HealthGateSettings(Section):
    """How a color is proven healthy. Every field but `path`, `checks` and `worker_check` is a field of
    core.health_poll's PollSpec of the same name (core/component_inputs.py passes them on as
    they are)."""

    path: UrlPath = "/health"
    # Checked after `path` passes, each with the same timing, all before the flip (rule 6c).
    checks: list[GateCheck] = Field(default=[], max_length=10)
    # A worker has no HTTP API, so its proof is a server route that answers only once a worker of
    # the same color has processed something the route asked for (rule 7d); checked through the
    # live route after the worker starts, with the gate's timing. None: the worker is not checked.
    worker_check: GateCheck | None = None
    timeout_seconds: float = Field(default=5.0, gt=0)
    deadline_seconds: float = Field(default=300.0, gt=0)
    initial_backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=15.0, gt=0)
    # "" accepts any body; a line break would never match a one-line body.
    expect_body: PlainText | None = "OK"

    @field_validator("deadline_seconds")
    @classmethod
    def _deadline_covers_one_try(cls, value: float, info: Any) -> float:
        timeout = info.data.get("timeout_seconds")
        if timeout is not None and value < timeout:
            raise ValueError("must be at least healthGate.timeoutSeconds")
        return value

    @field_validator("max_backoff_seconds")
    @classmethod
    def _backoff_grows(cls, value: float, info: Any) -> float:
        initial = info.data.get("initial_backoff_seconds")
        if initial is not None and value < initial:
            raise ValueError("must be at least healthGate.initialBackoffSeconds")
        return value


# The router's upstream blocks re-resolve a color's name while nginx runs (`server ... resolve`),
# which open-source nginx has since 1.27.3 (core/router_config.py).
ROUTER_NGINX_MINIMUM = (1, 27, 3)
_OFFICIAL_NGINX_TAG = re.compile(
    r"^(?:(?:docker\.io/)?library/|docker\.io/)?nginx:(?P<version>[0-9]+\.[0-9]+(?:\.[0-9]+)?)(?:-[a-z0-9.-]+)?$"
)


def _router_nginx(value: str) -> str:
    """Refuses an official nginx tag older than the router needs. A tag without a patch number
    (nginx:1.27) names the newest patch of that line; other images are the user's to vouch for
    (an nginx without `resolve` fails `nginx -t` and the router keeps its previous config)."""
    match = _OFFICIAL_NGINX_TAG.match(value)
    if match:
        parts = tuple(int(n) for n in match["version"].split("."))
        newest = parts if len(parts) == 3 else (*parts, 999)
        if newest < ROUTER_NGINX_MINIMUM:
            minimum = ".".join(str(n) for n in ROUTER_NGINX_MINIMUM)
            raise ValueError(
                f"{value!r} is older than the router needs: nginx >= {minimum} (its upstream blocks re-resolve "
                f"a color's address with `server ... resolve`); use nginx:1.28-bookworm or newer"
            )
    return value


class ServiceImages(Section):
    postgres: ImageRef = "postgres:15.10-bookworm"
    redis: ImageRef = "redis:7.4-bookworm"
    meilisearch: ImageRef = "getmeili/meilisearch:v1.12"
    # 1.27.5, the last of its line, has `resolve`. A new default tag would recreate the router
    # container of every stack that upgrades the program, so the default moves only with a reason.
    nginx: Annotated[ImageRef, AfterValidator(_router_nginx)] = "nginx:1.27-bookworm"
    # The ACME client (lego) that obtains and renews the certificate when tls.acme is in use.
    acme: ImageRef = "goacme/lego:v5.6.0"


class MaintenanceSettings(Section):
    """The storefront answers 503 with a page while `enabled`; operators keep /health, the admin
    (/app, /admin/, /auth/) and every release step. On and off is a state-file rename in the
    router (no reload, no color changed): `bin/bluegreen maintenance on|off`."""

    enabled: bool = False
    # The Retry-After a client and a crawler are told (seconds): search engines keep a page
    # indexed through a 503 that says when to come back.
    retry_after_seconds: int = Field(default=300, ge=1, le=86400)


class AnalysisSettings(Section):
    """After the live flip, the new color's real traffic is watched for `window_seconds`
    (0: off): a 5xx share above `max_error_ratio` or a p95 above `max_p95_seconds`, judged once
    `min_requests` have been answered, flips traffic back to the warm color and fails the run
    with the figures. The defaults are the brief's: 5 % and 1 s."""

    window_seconds: float = Field(default=0.0, ge=0, le=3600)
    max_error_ratio: float = Field(default=0.05, gt=0, lt=1)
    max_p95_seconds: float = Field(default=1.0, gt=0, le=60)
    # Below this many requests in the window a ratio says little: no verdict, the release stands.
    min_requests: int = Field(default=20, ge=1, le=1_000_000)
    interval_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("interval_seconds")
    @classmethod
    def _interval_fits_the_window(cls, value: float, info: Any) -> float:
        window = info.data.get("window_seconds")
        if window and value > window:
            raise ValueError("must be at most analysis.windowSeconds (one look at the traffic per interval)")
        return value


class CanarySettings(Section):
    """A release in steps: with `weight` 0-99 the released color (activeColor) gets that share of
    clients on the live route, each client sticky to its color, and everyone else stays on the
    other color, which stays live (its worker keeps running; the released color's does not
    start). Each step is a `pulumi up` (the health gate and, if set, the post-flip analysis
    judge it); 0 sends everyone back at once. Unset or 100: the release flips everyone."""

    weight: int | None = Field(default=None, ge=0, le=100)

    @property
    def partial(self) -> bool:
        """A canary step: the live route stays on the other color."""
        return self.weight is not None and self.weight < 100


def _bare_endpoint(value: str) -> str:
    # The copy addresses objects path-style (ENDPOINT/BUCKET/KEY), which every S3-compatible
    # store answers; a path here is most often the bucket put in the wrong key.
    host, _, path = value.partition("://")[2].partition("/")
    if path:
        first = path.split("/", 1)[0]
        hint = f"; if {first!r} is the bucket, set it as backups.copyTo.bucket" if _BUCKET.fullmatch(first) else ""
        raise ValueError(f"has a path (/{path}); give the service's address only, e.g. "
                         f"https://{host}{hint}")
    return value


def _key_prefix(value: str) -> str:
    # Characters that need no percent-encoding in the object's URL or its signature.
    if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", value):
        raise ValueError(f"{value!r} is not a key prefix: path segments of letters, digits, `.`, `_` and `-` "
                         "joined by `/`, with no slash at either end (e.g. shop/backups)")
    return value


class BackupCopySettings(Section):
    """An off-host copy of every pre-migration dump, in an S3-compatible bucket (AWS S3, R2, B2,
    MinIO, ...). Credentials are the secrets backupsAccessKeyId and backupsSecretAccessKey."""

    endpoint: Annotated[HttpUrl, AfterValidator(_bare_endpoint)]
    bucket: Annotated[str, AfterValidator(_bucket)]
    region: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")] = "us-east-1"
    # Objects are PREFIX/<backup name>; default: the stack's prefix setting.
    prefix: Annotated[str, AfterValidator(_key_prefix)] | None = None


class BackupSettings(Section):
    enabled: bool = True
    # Pre-migration dumps kept in the backups volume; older ones are removed after each new dump.
    # The copies in copyTo's bucket are never removed by the program: a bucket lifecycle rule is
    # the place for their retention, and a host that can delete them could lose them with itself.
    keep: int = Field(default=10, ge=1, le=1000)
    copy_to: BackupCopySettings | None = None


def _keep_releases(value: int) -> int:
    if value < 1:
        raise ValueError(
            f"must be at least 1 (the number of earlier releases whose images stay on the Docker "
            f"host for `bin/bluegreen rollback`), got {value}"
        )
    return value


class ReleaseSettings(Section):
    # Besides the two colors' own images, which are always kept.
    keep: Annotated[int, AfterValidator(_keep_releases)] = 3


class TimeoutSettings(Section):
    """How long each long-running release step may take before it is killed and the run fails.

    A hung build, dump or migration would otherwise hold the stack's lock forever; the step's
    whole process group is killed, so nothing it started keeps running into the next run.
    """

    build_seconds: int = Field(default=1800, ge=10, le=86400)
    backup_seconds: int = Field(default=1800, ge=10, le=86400)
    migrate_seconds: int = Field(default=900, ge=10, le=86400)


class BuildDefaults(Section):
    """What every app-directory build of the stack shares, set once (`buildDefaults`): a color's
    own build (blueBuild / greenBuild) adds to `args` and `secretFiles` and wins on a name both
    set. `bluegreen release --build DIR` sets only a context, so these are what keep a base image
    or a CA bundle from one release to the next."""

    args: dict[BuildArgName, PlainText] = {}
    secret_files: dict[SecretId, PlainText] = {}
    repository: RepositoryName | None = None
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None


class ImageBuild(Section):
    """Build the color's image from an app directory on this machine (instead of an image ref).

    The build runs on the Docker host (BuildKit) and is tagged with a digest of the context,
    so an unchanged directory builds nothing and `pulumi preview` shows no change.
    """

    context: Annotated[str, Field(min_length=1, pattern=r"^[^\x00\n]+$")]
    args: dict[BuildArgName, PlainText] = {}
    # BuildKit secrets (id -> file on this machine), e.g. a CA bundle for npm; never in the image.
    # Relative paths are relative to the project directory, like `context` (checks.py checks both).
    secret_files: dict[SecretId, PlainText] = {}
    repository: RepositoryName | None = None
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
