"""Field types of the settings, each validating itself with a message that names the fix.

Messages never include a secret's value. A secret field is marked explicitly with
`secret_field()`, which is how loading knows not to echo or decode it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

# What nginx can compare a preview token with inside its config: the renderer's own rule.
from core.router_config import NGINX_TOKEN

# A field whose value is a secret: set with `pulumi config set --secret`, never echoed.
SECRET = "secret"


def secret_field(default: Any = None) -> Any:
    return Field(default=default, json_schema_extra={SECRET: True})


# What makes a name look like it holds a secret: the one list, for build args, medusa.env (plain
# text) and anything else that must not carry one. Checked on the upper-cased name, by substring
# (NPMTOKEN) and by underscore-separated word (SENTRY_DSN, NPM_AUTH, ALGOLIA_ADMIN_KEY).
_SECRET_SUBSTRINGS = ("SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "TOKEN", "APIKEY", "PRIVATE_KEY",
                      "CREDENTIAL", "CONNECTION_STRING")
_SECRET_WORDS = frozenset({"DSN", "PASS", "PWD", "KEY", "AUTH"})
# KEY is no secret in these: an id or a path names one, a public/publishable key is public by design.
_KEY_NOT_SECRET_AFTER = frozenset({"ID", "NAME", "PATH", "FILE"})
_KEY_NOT_SECRET_WITH = frozenset({"PUBLIC", "PUBLISHABLE"})
# AUTH is a secret as the last word (NPM_AUTH, BASIC_AUTH, npm's _auth), not in AUTH_URL.
_AUTH_ONLY_LAST = "AUTH"


def looks_like_a_secret(name: str) -> bool:
    upper = name.upper()
    if any(part in upper for part in _SECRET_SUBSTRINGS):
        return True
    words = [word for word in upper.split("_") if word]
    for index, word in enumerate(words):
        if word not in _SECRET_WORDS:
            continue
        following = words[index + 1] if index + 1 < len(words) else None
        if word == _AUTH_ONLY_LAST and following is not None:
            continue
        if word == "KEY" and (following in _KEY_NOT_SECRET_AFTER or _KEY_NOT_SECRET_WITH & set(words)):
            continue
        return True
    return False


# A URL with a password in its user info (scheme://user:password@host): a secret inside a value.
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")


def carries_a_url_password(value: str) -> bool:
    return _URL_WITH_PASSWORD.search(value) is not None


def has_control_character(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


_IMAGE_NAME = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)


def _image_ref(value: str) -> str:
    match = _IMAGE_NAME.fullmatch(value)
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


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _is_hostname(value: str) -> bool:
    return len(value) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in value.split("."))


def _host_suggestion(value: str) -> str:
    """The host name a user most likely meant: no scheme, user, path, port, trailing dot or caps."""
    host = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", value.strip())
    host = host.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    host = re.sub(r":[0-9]*$", "", host).rstrip(".").lower()
    if host != value and _is_hostname(host):
        return f"; did you mean {host!r}?"
    return ""


def _hostname(value: str) -> str:
    if not _is_hostname(value):
        raise ValueError(
            f"{value!r} is not a valid host name (lowercase letters, digits and hyphens in "
            f"dot-separated labels, no scheme, port or path){_host_suggestion(value)}"
        )
    return value


def _host_or_ip(value: str) -> str:
    if _is_hostname(value):
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a host name or IP address (no scheme, port or path: the port is "
            f"router.previewPort), e.g. 127.0.0.1 or api.shop.example.com{_host_suggestion(value)}"
        ) from None
    return value


_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]{1,5})?")


def _origin(value: str) -> str:
    if not _ORIGIN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an origin; write scheme://host[:port] with no path or "
            "trailing slash, e.g. 'https://shop.example.com'"
        )
    return value


# Characters a URL never carries unencoded; quotes, `$`, braces and backslashes also break the
# env files, nginx config and shell lines the URLs end up in.
_URL_UNSAFE = re.compile(r"[\s\"'<>\\^`{}|$\x00-\x1f\x7f]")


def _http_url(value: str) -> str:
    if carries_a_url_password(value):  # before any message that would quote the value
        raise ValueError("carries a password in the URL (user:password@); this setting is stored in plain text, "
                         "so remove the credentials from it")
    if has_control_character(value) or value != value.strip():
        raise ValueError("contains a line break, a control character or surrounding spaces; remove them")
    if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value):
        raise ValueError(f"{value!r} is not an http(s) URL (e.g. https://cdn.shop.example.com)")
    if _URL_UNSAFE.search(value):
        raise ValueError(
            f"{value!r} contains a character a URL cannot carry as it is (space, quote, `$`, `\\`, "
            "`<>`, `{}`, `|`, `^` or a backtick); percent-encode it"
        )
    return value.rstrip("/")


# A path on the Docker host that is mounted into a container: absolute, and only characters that
# survive a docker mount, an nginx config and a shell line unquoted.
_HOST_PATH = re.compile(r"/[A-Za-z0-9._@+=,/-]*")


def _host_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(
            f"{value!r} is not an absolute path; give the full path of the file on the Docker host, "
            "e.g. /etc/ssl/shop/fullchain.pem (`~` and relative paths are not expanded)"
        )
    if not _HOST_PATH.fullmatch(value) or value.endswith("/"):
        raise ValueError(
            f"{value!r} is not a plain file path (letters, digits and . _ @ + = , / - only: no spaces, "
            "quotes, `:`, `;` or `$`, and no trailing /); move or link the file to such a path"
        )
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError(f"{value!r} contains '.' or '..'; give the path without them")
    return value


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


def _secret_shape(text: str) -> str | None:
    """What is wrong with a secret's value as typed (never the value itself), or None."""
    if not text:
        return "is empty; set the value, or remove the key (`pulumi config rm ...`)"
    if has_control_character(text):
        return "contains a control character or line break; remove it"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return (
            "is wrapped in quotes, which would become part of the value (the seed "
            "system's quote bug); set it without the surrounding quotes"
        )
    if text != text.strip():
        return ("starts or ends with whitespace (a copy-paste?), which would become part of the value; "
                "set it again without it")
    return None


def _secret_text(min_length: int) -> Any:
    def check(value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        problem = _secret_shape(text)
        if problem:
            raise ValueError(problem)
        if len(text) < min_length:
            raise ValueError(f"is shorter than {min_length} characters; use a longer random value")
        return value

    return AfterValidator(check)


def _secret_url(value: SecretStr) -> SecretStr:
    problem = _secret_shape(value.get_secret_value())
    if problem:
        raise ValueError(problem)
    return value


def _nginx_token(value: SecretStr) -> SecretStr:
    if not NGINX_TOKEN.fullmatch(value.get_secret_value()):
        raise ValueError(
            "may only contain letters, digits and . _ ~ - (nginx compares it inside its config); "
            "set a random one: `pulumi config set --secret previewToken $(openssl rand -hex 24)`"
        )
    return value


def _postgres_url(value: SecretStr) -> SecretStr:
    url = value.get_secret_value()
    if not re.fullmatch(r"postgres(ql)?://[^\s]+", url):
        raise ValueError("must start with postgres:// or postgresql:// and contain no spaces")
    if "ssl_mode=" in url:
        raise ValueError("uses 'ssl_mode'; the Postgres driver reads 'sslmode'")
    return value


def _redis_url(value: SecretStr) -> SecretStr:
    url = value.get_secret_value()
    if not re.fullmatch(r"rediss?://[^\s]+", url):
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
    if not value[0].strip():
        raise ValueError("starts with an empty program name; give the program first, e.g. [\"npx\", \"medusa\", "
                         "\"db:migrate\"]")
    return value


def _scalar_to_text(value: Any) -> Any:
    # `pulumi config set --path medusa.env.PORT 9000` (or `... true`) stores a number or a bool
    # inside an object; as an environment value or a word it means its text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _plain_text(value: str) -> str:
    # A newline or NUL in an environment value or a command-line word breaks docker's env handling
    # and the command lines the value is put on; a tab is as invisible a mistake.
    if has_control_character(value):
        raise ValueError("contains a line break or control character; remove it")
    return value


def _plain_value(value: str) -> str:
    _plain_text(value)
    if carries_a_url_password(value):
        raise ValueError("carries a password in a URL (user:password@) but medusa.env is stored in plain text; "
                         "move it to extraSecretEnv (`pulumi config set --secret --path extraSecretEnv.<name> ...`)")
    return value


_DOCKER_HOST = re.compile(r"(?P<scheme>unix|ssh|tcp)://(?P<rest>\S+)")
_HOST_PART = r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
_SSH_HOST = re.compile(r"(?:(?P<user>[A-Za-z0-9._-]+)@)?" + _HOST_PART)
_TCP_HOST = re.compile(_HOST_PART + "/?")


def _docker_host(value: str) -> str:
    if carries_a_url_password(value):  # before any message that would quote the value
        raise ValueError("carries a password (user:password@), which Docker never reads and the stack stores in "
                         "plain text; ssh:// logs in with your ssh key or agent: ssh://user@host")
    match = _DOCKER_HOST.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a Docker engine address; write unix:///var/run/docker.sock, "
            "ssh://user@host or tcp://host:2376 (a trailing newline or space counts)"
        )
    scheme, rest = match["scheme"], match["rest"]
    if scheme == "unix" and not _HOST_PATH.fullmatch(rest):
        raise ValueError(
            f"{value!r}: a unix socket takes an absolute path, three slashes in all: unix:///var/run/docker.sock"
        )
    if scheme == "ssh":
        ssh = _SSH_HOST.fullmatch(rest)
        if ssh is None:
            raise ValueError(
                f"{value!r}: ssh:// takes [user@]host[:port] and nothing after it (Docker refuses a path: "
                "the remote socket is found by `docker system dial-stdio`), e.g. ssh://deploy@203.0.113.7"
            )
        if ssh["port"] and not 1 <= int(ssh["port"]) <= 65535:
            raise ValueError(f"{value!r}: the ssh port must be 1-65535")
    if scheme == "tcp":
        tcp = _TCP_HOST.fullmatch(rest)
        if tcp is None or (tcp["port"] and not 1 <= int(tcp["port"]) <= 65535):
            raise ValueError(f"{value!r}: tcp:// takes host[:port] and nothing after it, e.g. tcp://10.0.0.5:2376")
    return value


ImageRef = Annotated[str, AfterValidator(_image_ref)]
HostName = Annotated[str, AfterValidator(_hostname)]
HostOrIp = Annotated[str, AfterValidator(_host_or_ip)]
HostPath = Annotated[str, AfterValidator(_host_path)]
DockerHost = Annotated[str, AfterValidator(_docker_host)]
# Text that ends up in an environment variable or on a command line (not a secret).
PlainText = Annotated[str, BeforeValidator(_scalar_to_text), AfterValidator(_plain_text)]
# A plain-text value that must not carry a secret inside (a URL's password).
PlainValue = Annotated[str, BeforeValidator(_scalar_to_text), AfterValidator(_plain_value)]
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
PreviewToken = Annotated[SecretStr, _secret_text(16), AfterValidator(_nginx_token)]
PostgresUrl = Annotated[SecretStr, AfterValidator(_secret_url), AfterValidator(_postgres_url)]
RedisUrl = Annotated[SecretStr, AfterValidator(_secret_url), AfterValidator(_redis_url)]
# Any other secret value (extraSecretEnv): the same checks of what a copy-paste brings along.
SecretValue = Annotated[SecretStr, BeforeValidator(_scalar_to_text), _secret_text(1)]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
Command = Annotated[list[PlainText], AfterValidator(_not_empty_command)]
BuildArgName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SecretId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
RepositoryName = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")]
PgIdentifier = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
# A migration's name as mikro_orm_migrations records it (Medusa's: Migration<timestamp>).
MigrationName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,199}$")]
