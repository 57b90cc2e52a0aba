"""Field types of the settings, each validating itself with a message that names the fix.

Messages never include a secret's value. A secret field is marked explicitly with
`secret_field()`, which is how loading knows not to echo or decode it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

# A field whose value is a secret: set with `pulumi config set --secret`, never echoed.
SECRET = "secret"


def secret_field(default: Any = None) -> Any:
    return Field(default=default, json_schema_extra={SECRET: True})


SECRET_LOOKING_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL)")

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


def _ip_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network (e.g. 203.0.113.7 or 173.245.48.0/20)"
        ) from None


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError(f"{value!r} is not an email address (e.g. ops@shop.example.com)")
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


def _postgres_url(value: SecretStr) -> SecretStr:
    url = value.get_secret_value()
    if not re.match(r"^postgres(ql)?://[^\s]+$", url):
        raise ValueError("must start with postgres:// or postgresql:// and contain no spaces")
    if "ssl_mode=" in url:
        raise ValueError("uses 'ssl_mode'; the Postgres driver reads 'sslmode'")
    return value


def _redis_url(value: SecretStr) -> SecretStr:
    url = value.get_secret_value()
    if not re.match(r"^rediss?://[^\s]+$", url):
        raise ValueError("must start with redis:// or rediss:// and contain no spaces")
    if re.search(r"[?&]password=", url):
        raise ValueError(
            "carries the password as '?password=', which Redis clients ignore; "
            "put it in the user info: redis://default:<percent-encoded password>@host:6379/0"
        )
    if "'" in url or '"' in url:
        raise ValueError("contains quote characters; percent-encode them (%27, %22)")
    return value


def _not_empty_command(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("must not be empty, e.g. [\"npx\", \"medusa\", \"db:migrate\"]")
    return value


ImageRef = Annotated[str, AfterValidator(_image_ref)]
HostName = Annotated[str, AfterValidator(_hostname)]
Origin = Annotated[str, AfterValidator(_origin)]
OriginList = Annotated[list[Origin], BeforeValidator(_comma_list)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
IpAddress = Annotated[str, AfterValidator(_ip)]
IpNetworkList = Annotated[list[Annotated[str, AfterValidator(_ip_network)]], BeforeValidator(_comma_list)]
EmailAddress = Annotated[str, AfterValidator(_email)]
Port = Annotated[int, Field(ge=1, le=65535)]
Password = Annotated[SecretStr, _secret_text(12)]
AppSecret = Annotated[SecretStr, _secret_text(32)]
ApiKey = Annotated[SecretStr, _secret_text(8)]
LongToken = Annotated[SecretStr, _secret_text(16)]
PostgresUrl = Annotated[SecretStr, AfterValidator(_postgres_url)]
RedisUrl = Annotated[SecretStr, AfterValidator(_redis_url)]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
Command = Annotated[list[str], AfterValidator(_not_empty_command)]
BuildArgName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SecretId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
RepositoryName = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")]
PgIdentifier = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
