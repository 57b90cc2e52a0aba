"""Rendering of the router's nginx config from the templates in nginx/templates.

Pure: the same input gives the same bytes. The output never depends on which color is live
(rule 1b): both colors' upstreams are always in it, and the live one is picked per request
from the state directory that nginx/bluegreen-router.sh switches.
"""

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.naming import MEDUSA_PORT, MEILISEARCH_HOST, MEILISEARCH_PORT, Color, server_container

NGINX_DIR = Path(__file__).resolve().parent.parent / "nginx"
TEMPLATES = NGINX_DIR / "templates"
CONTROL_SCRIPT = NGINX_DIR / "bluegreen-router.sh"
METRICS_EXPORTER = NGINX_DIR / "bluegreen-metrics.pl"

# Paths inside the router container. The config volume is mounted at CONF_DIR.
CONF_DIR = "/etc/nginx/conf.d"
STATE_DIR = f"{CONF_DIR}/bluegreen/state"
SCRIPT_PATH = f"{CONF_DIR}/bluegreen/router.sh"
EXPORTER_PATH = f"{CONF_DIR}/bluegreen/metrics.pl"
TLS_DIR = "/etc/nginx/tls"
DOCKER_DNS = "127.0.0.11"

# Ports nginx listens on inside the container; the published host ports come from settings.
HTTP_PORT = 80
HTTPS_PORT = 443
PREVIEW_PORT = 8081
# The preview route again, on the container's loopback only and without the token guard: the
# health gate reaches it with `docker exec` (core/router_control.probe_argv), so no port is
# published for it and no token crosses a network (rule 6b).
PROBE_PORT = 8082
LOOPBACK = "127.0.0.1"

# Per-color traffic figures (nginx/bluegreen-metrics.pl, rule 2f): nginx sends one syslog line
# per request over UDP to METRICS_LOG_PORT and proxies METRICS_PATH on the preview and probe
# servers to the exporter's METRICS_EXPORTER_PORT. Both on the container's loopback only.
METRICS_LOG_PORT = 9514
METRICS_EXPORTER_PORT = 9145
METRICS_PATH = "/_bluegreen/metrics"
# Histogram bounds of the request time, in seconds: fine below 100 ms where a healthy store
# answers, and up to the 1 s p95 threshold a release's analysis holds a new color to, and past it.
# A canary's share of clients is set in steps of 1 %: one state file per bucket (router.sh canary).
CANARY_BUCKETS = 100
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# How long a dead color can keep being tried: nginx re-asks Docker's DNS after
# RESOLVER_VALID_SECONDS (a stopped container's name is gone at once, so the answer is a 502
# without any connect), and a connect to an address that no longer answers gives up after
# CONNECT_TIMEOUT_SECONDS. One DNS query per second per worker and name costs nothing.
RESOLVER_VALID_SECONDS = 1
CONNECT_TIMEOUT_SECONDS = 1

# The pool of idle connections to a color's server, per nginx worker. Above the connections a
# busy shop keeps in flight at once, so steady traffic never opens new ones; an idle connection
# costs the app a file descriptor and nothing else. The pool lets go of an idle connection
# after UPSTREAM_IDLE_TIMEOUT_SECONDS, below Node's own 5 s keepAliveTimeout (Medusa keeps the
# default): nginx must never reuse a connection the app is closing at the same instant, because
# a POST sent into that race fails with a 502 (nginx retries only what was never sent).
UPSTREAM_IDLE_CONNECTIONS = 64
UPSTREAM_IDLE_TIMEOUT_SECONDS = 4

# How long an idle keep-alive connection stays open: the nginx image's own value, and above the
# 60 s default idle timeout of common load balancers (AWS ALB among them), so such a proxy in front
# never reuses a connection nginx is just closing (that race is a 502 at the proxy). An idle connection
# holds no limit_conn slot (nginx counts only connections with a request in progress), and
# client_header_timeout bounds a connection that opens and sends nothing.
KEEPALIVE_TIMEOUT_SECONDS = 65

# The storefront's answer in maintenance (nginx's `return` text: no double quote, no `$`).
MAINTENANCE_PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Back soon</title></head>"
    "<body><h1>We are down for maintenance</h1><p>The shop is back in a few minutes.</p></body></html>\n"
)
# Maintenance holds back the storefront (`/`, the store API under it) and search; /health, the
# admin dashboard and the admin and auth APIs stay open for operators (public-server.conf.tmpl).

# The header that opens the preview route when a preview token is set; nginx sees a header as
# $http_<lowercase name, dashes as underscores>.
PREVIEW_TOKEN_HEADER = "X-Bluegreen-Preview-Token"
# The header nginx adds to every proxied answer: which color served it.
COLOR_HEADER = "X-Bluegreen-Color"
_PREVIEW_TOKEN_VARIABLE = "$http_" + PREVIEW_TOKEN_HEADER.lower().replace("-", "_")

_PLACEHOLDER = re.compile(r"{{([a-z_]+)}}")
NGINX_TOKEN = re.compile(r"^[A-Za-z0-9._~-]+$")


@dataclass(frozen=True)
class TlsFiles:
    certificate: str
    key: str
    # Load on every handshake (a renewal needs no reload) instead of once at start. The worker
    # then reads the files, not the root master: only for files the program writes itself (ACME),
    # never for the user's own (Let's Encrypt's privkey.pem is 0600 root).
    per_handshake: bool = False


# Where the router container sees the certificate and key (bind-mounted from the Docker host).
TLS_IN_ROUTER = TlsFiles(f"{TLS_DIR}/fullchain.pem", f"{TLS_DIR}/privkey.pem")


@dataclass(frozen=True)
class RouterConfigInput:
    domain: str
    upstreams: Mapping[Color, str]
    state_dir: str = STATE_DIR
    resolver: str | None = DOCKER_DNS
    listen_http: int = HTTP_PORT
    listen_https: int = HTTPS_PORT
    listen_preview: int = PREVIEW_PORT
    listen_probe: int = PROBE_PORT
    metrics_log_port: int = METRICS_LOG_PORT
    metrics_exporter_port: int = METRICS_EXPORTER_PORT
    public_https_port: int = 443
    tls: TlsFiles | None = None
    # Where the ACME client leaves HTTP-01 challenges (under .well-known/acme-challenge/), when
    # the certificate comes from ACME; port 80 serves them and redirects everything else.
    acme_webroot: str | None = None
    meilisearch_upstream: str | None = None
    search_cors_origins: Sequence[str] = field(default_factory=tuple)
    preview_token: str | None = None
    rate_limit_per_second: int = 50
    rate_limit_burst: int = 100
    max_body_size: str = "50m"
    # Requests one client address may have in progress at once on a server; beyond it, 503.
    max_connections_per_client: int = 100
    # How long a client may take to send a request's headers or body, or to read a response.
    client_timeout_seconds: int = 30
    # Networks of proxies in front of the router (CIDR strings): only from these is
    # X-Forwarded-For the client address and X-Forwarded-Proto the scheme.
    trusted_proxies: Sequence[str] = field(default_factory=tuple)
    # What the storefront's 503 says when to come back, while maintenance is on.
    maintenance_retry_after_seconds: int = 300


def docker_upstreams(prefix: str) -> dict[Color, str]:
    """Both colors' servers by container name, resolved by Docker's DNS at request time."""
    return {color: f"{server_container(prefix, color)}:{MEDUSA_PORT}" for color in ("blue", "green")}


def meilisearch_upstream() -> str:
    return f"{MEILISEARCH_HOST}:{MEILISEARCH_PORT}"


def _fill(template_name: str, values: Mapping[str, str]) -> str:
    text = (TEMPLATES / template_name).read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"{template_name}: no value for {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _fill_snippet(template_name: str, values: Mapping[str, str]) -> str:
    """A template that goes into a placeholder line of another: without its last newline."""
    return _fill(template_name, values).rstrip("\n")


def _indent(lines: Sequence[str], depth: int) -> str:
    pad = " " * (4 * depth)
    return "\n".join(f"{pad}{line}" if line else "" for line in lines)


def _security_headers(tls: bool) -> list[str]:
    # Repeated in every location that adds a header: nginx drops inherited add_header
    # directives as soon as a location declares its own.
    headers = [
        'add_header X-Content-Type-Options "nosniff" always;',
        'add_header X-Frame-Options "SAMEORIGIN" always;',
        'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
    ]
    if tls:
        headers.append('add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;')
    return headers


def _proxy_common(public: bool) -> list[str]:
    # On the public servers the forwarded headers come from http.conf.tmpl's maps, which trust
    # a client's own X-Forwarded-* only from router.trustedProxies; the preview routes have no
    # proxy in front and keep nginx's own values.
    forwarded_for = "$bg_forwarded_for" if public else "$proxy_add_x_forwarded_for"
    forwarded_proto = "$bg_forwarded_proto" if public else "$scheme"
    return [
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $bg_connection_upgrade;",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        f"proxy_set_header X-Forwarded-For {forwarded_for};",
        f"proxy_set_header X-Forwarded-Proto {forwarded_proto};",
        "proxy_set_header X-Forwarded-Host $host;",
        # Inside one Docker host the kernel completes a TCP handshake in well under a
        # millisecond, whatever the app is doing, so a second is ample. A dead color's last
        # address either refuses or blackholes depending on the host's ARP state; this bound
        # makes the blackhole case a fast 504 instead of a 5 s hang.
        f"proxy_connect_timeout {CONNECT_TIMEOUT_SECONDS}s;",
        "proxy_send_timeout 300s;",
        "proxy_read_timeout 300s;",
    ]


def _acme_challenge(webroot: str) -> list[str]:
    return [
        "location ^~ /.well-known/acme-challenge/ {",
        f"    root {webroot};",
        "    try_files $uri =404;",
        "    default_type text/plain;",
        "}",
        "",
    ]


def _validate(spec: RouterConfigInput) -> None:
    for color in ("blue", "green"):
        if color not in spec.upstreams or not re.match(r"^[A-Za-z0-9.-]+:[0-9]+$", spec.upstreams[color]):
            raise ValueError(f"upstream for {color} must be host:port, got {spec.upstreams.get(color)!r}")
    if spec.preview_token is not None and not NGINX_TOKEN.match(spec.preview_token):
        raise ValueError("preview token may only contain letters, digits and . _ ~ -")
    for origin in spec.search_cors_origins:
        if not re.match(r"^https?://[a-z0-9.-]+(:[0-9]+)?$", origin):
            raise ValueError(f"CORS origin {origin!r} is not scheme://host[:port]")
    for proxy in spec.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"trusted proxy {proxy!r} is not an IP address or CIDR network") from None
    ports = [spec.listen_https if spec.tls is not None else spec.listen_http, spec.listen_preview, spec.listen_probe]
    if len(set(ports)) != len(ports):
        raise ValueError(f"the public, preview and probe servers need their own ports, got {ports}")
    for name in (
        "rate_limit_per_second",
        "max_connections_per_client",
        "client_timeout_seconds",
        "maintenance_retry_after_seconds",
    ):
        if getattr(spec, name) < 1:
            raise ValueError(f"{name} must be at least 1")


def _client_limits(spec: RouterConfigInput) -> str:
    return _fill_snippet(
        "client-limits.conf.tmpl",
        {
            "max_connections_per_client": str(spec.max_connections_per_client),
            "client_timeout": f"{spec.client_timeout_seconds}s",
            "keepalive_timeout": f"{KEEPALIVE_TIMEOUT_SECONDS}s",
        },
    )


def _real_ip(spec: RouterConfigInput) -> str:
    if not spec.trusted_proxies:
        return ""
    return _fill_snippet(
        "real-ip.conf.tmpl",
        {"set_real_ip_from": _indent([f"set_real_ip_from {proxy};" for proxy in spec.trusted_proxies], 1)},
    )


def _resolver(spec: RouterConfigInput) -> str:
    if not spec.resolver:
        return ""
    return "\n".join(
        [f"resolver {spec.resolver} valid={RESOLVER_VALID_SECONDS}s ipv6=off;", "resolver_timeout 2s;", ""]
    )


def _upstream_server(spec: RouterConfigInput, color: Color) -> str:
    """A color's `server` line. A host name is re-resolved while nginx runs (`resolve`, nginx
    >= 1.27.3), so nginx starts with no color present and follows a recreated container's new
    address; an IP address (the component tests' upstreams) is used as it is."""
    upstream = spec.upstreams[color]
    host = upstream.rsplit(":", 1)[0]
    if spec.resolver and not _is_ip_address(host):
        return f"{upstream} resolve"
    return upstream


def _canary_buckets() -> list[str]:
    """split_clients lines: CANARY_BUCKETS buckets of equal share, named 0 .. CANARY_BUCKETS-1."""
    share = f"{100 / CANARY_BUCKETS:g}%"
    return [f"{share} {bucket};" for bucket in range(CANARY_BUCKETS - 1)] + [f"* {CANARY_BUCKETS - 1};"]


def _route_ports(spec: RouterConfigInput) -> list[str]:
    """Which route each server's port belongs to, for the metrics log. With TLS, port 80 only
    redirects (nothing to count); the probe port is the preview route the health gate uses."""
    public = spec.listen_https if spec.tls is not None else spec.listen_http
    return [f"{public} live;", f"{spec.listen_preview} preview;", f"{spec.listen_probe} preview;"]


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def render_router_config(spec: RouterConfigInput) -> str:
    _validate(spec)
    tls = spec.tls is not None
    headers = _security_headers(tls)
    proxy_live = [
        "proxy_pass http://$bg_live_upstream;",
        *_proxy_common(public=True),
        f"add_header {COLOR_HEADER} $bg_live always;",
        *headers,
    ]
    common = {
        "domain": spec.domain,
        "state_dir": spec.state_dir,
        "max_body_size": spec.max_body_size,
        "client_limits": _client_limits(spec),
    }
    # Every public location but the router's own health and the ACME challenge.
    rate_limit = _indent([f"limit_req zone=bg_per_client burst={spec.rate_limit_burst} nodelay;"], 2)
    # error_page here, not on the server: limit_conn's own 503 must stay a plain 503.
    maintenance_guard = _indent(
        ["if ($bg_maintenance) {", "    error_page 503 @bg_maintenance;", "    return 503;", "}"], 2
    )

    search = ""
    if spec.meilisearch_upstream:
        search = _fill(
            "search-location.conf.tmpl",
            {
                "meilisearch_upstream": spec.meilisearch_upstream,
                "rate_limit": rate_limit,
                "maintenance_guard": maintenance_guard,
                "proxy_common": _indent(_proxy_common(public=True), 2),
                "security_headers": _indent(headers, 2),
            },
        )

    if tls:
        assert spec.tls is not None
        per_handshake = "$bg_tls_per_handshake" if spec.tls.per_handshake else ""
        public_listen = [f"listen {spec.listen_https} ssl http2 default_server;"]
        tls_block = _indent(
            [
                f"ssl_certificate {spec.tls.certificate}{per_handshake};",
                f"ssl_certificate_key {spec.tls.key}{per_handshake};",
                "ssl_protocols TLSv1.2 TLSv1.3;",
                "ssl_prefer_server_ciphers off;",
                "ssl_session_cache shared:bg_tls:10m;",
                "ssl_session_timeout 1d;",
                "",
            ],
            1,
        )
    else:
        public_listen = [f"listen {spec.listen_http} default_server;"]
        tls_block = ""

    parts = [
        _fill(
            "http.conf.tmpl",
            {
                "resolver": _resolver(spec),
                "blue_upstream": _upstream_server(spec, "blue"),
                "green_upstream": _upstream_server(spec, "green"),
                "upstream_keepalive": _indent(
                    [
                        f"keepalive {UPSTREAM_IDLE_CONNECTIONS};",
                        f"keepalive_timeout {UPSTREAM_IDLE_TIMEOUT_SECONDS}s;",
                    ],
                    1,
                ),
                "search_cors_map": _indent([f'"{o}" "{o}";' for o in spec.search_cors_origins], 1),
                "trusted_proxies_geo": _indent([f"{proxy} 1;" for proxy in spec.trusted_proxies], 1),
                "rate_limit_per_second": str(spec.rate_limit_per_second),
                "route_ports": _indent(_route_ports(spec), 1),
                "canary_buckets": _indent(_canary_buckets(), 1),
                "metrics_log_port": str(spec.metrics_log_port),
            },
        ),
        _fill(
            "public-server.conf.tmpl",
            {
                **common,
                "listen": _indent(public_listen, 1),
                "tls": tls_block,
                "proxy_live": _indent(proxy_live, 2),
                "search_location": search,
                "rate_limit": rate_limit,
                "maintenance_guard": maintenance_guard,
                "retry_after_seconds": str(spec.maintenance_retry_after_seconds),
                "security_headers": _indent(headers, 2),
                "maintenance_page": MAINTENANCE_PAGE.replace("\n", "\\n"),
                "real_ip": _real_ip(spec),
            },
        ),
    ]
    if tls:
        suffix = "" if spec.public_https_port == 443 else f":{spec.public_https_port}"
        parts.append(
            _fill(
                "redirect-server.conf.tmpl",
                {
                    **common,
                    "listen": _indent([f"listen {spec.listen_http} default_server;"], 1),
                    "https_port_suffix": suffix,
                    "real_ip": _real_ip(spec),
                    "acme_challenge": _indent(_acme_challenge(spec.acme_webroot), 1) if spec.acme_webroot else "",
                },
            )
        )
    token_guard = metrics_guard = ""
    if spec.preview_token:
        # What scrapers send (Prometheus `authorization`, Uptime Kuma's bearer token).
        metrics_guard = _indent(
            [f'if ($http_authorization != "Bearer {spec.preview_token}") {{', "    return 404;", "}"], 2
        )
        token_guard = _indent(
            [
                f'if ({_PREVIEW_TOKEN_VARIABLE} != "{spec.preview_token}") {{',
                "    return 404;",
                "}",
            ],
            2,
        )
    # The token opens the route; it is never passed on to Medusa.
    proxy_preview = _indent([*_proxy_common(public=False), f'proxy_set_header {PREVIEW_TOKEN_HEADER} "";'], 2)
    for purpose, listen, guard, scrape_guard in (
        (
            "The published preview route (loopback by default), for people and scrapers",
            str(spec.listen_preview),
            token_guard,
            metrics_guard,
        ),
        ("The probe route: loopback of the container, for `docker exec`", f"{LOOPBACK}:{spec.listen_probe}", "", ""),
    ):
        parts.append(
            _fill(
                "preview-server.conf.tmpl",
                {
                    **common,
                    "purpose": purpose,
                    "listen_preview": listen,
                    "token_guard": guard,
                    "metrics_guard": scrape_guard,
                    "metrics_path": METRICS_PATH,
                    "metrics_upstream": f"{LOOPBACK}:{spec.metrics_exporter_port}",
                    "proxy_common": proxy_preview,
                    "color_header": COLOR_HEADER,
                },
            )
        )
    return "\n".join(parts)
