"""The rendered router config: the parts a flip and a dead color depend on."""

import json
import re

import pytest

from core import component_inputs as inputs
from core.router_config import (
    CONNECT_TIMEOUT_SECONDS,
    KEEPALIVE_TIMEOUT_SECONDS,
    MAINTENANCE_PAGE,
    PREVIEW_PORT,
    PREVIEW_TOKEN_HEADER,
    PROBE_PORT,
    RESOLVER_VALID_SECONDS,
    TLS_IN_ROUTER,
    UPSTREAM_IDLE_CONNECTIONS,
    UPSTREAM_IDLE_TIMEOUT_SECONDS,
    RouterConfigInput,
    docker_upstreams,
    render_router_config,
)
from core.settings import load_settings
from tests.unit.configs import config


def rendered() -> str:
    return render_router_config(RouterConfigInput(domain="shop.example.com", upstreams=docker_upstreams("shop")))


def test_a_dead_color_is_given_up_on_within_about_a_second():
    text = rendered()
    assert set(re.findall(r"resolver 127\.0\.0\.11 valid=(\d+)s", text)) == {str(RESOLVER_VALID_SECONDS)}
    assert set(re.findall(r"proxy_connect_timeout (\d+)s;", text)) == {str(CONNECT_TIMEOUT_SECONDS)}
    assert RESOLVER_VALID_SECONDS + CONNECT_TIMEOUT_SECONDS <= 2


def test_both_colors_are_in_the_config_whichever_is_live():
    text = rendered()
    assert "shop-blue-server:9000" in text and "shop-green-server:9000" in text


def _upstream_blocks(text: str) -> dict[str, str]:
    return dict(re.findall(r"^upstream (bg_\w+) \{\n(.*?)^\}", text, flags=re.M | re.S))


def test_each_color_has_its_own_pool_of_upstream_connections_re_resolved_by_name() -> None:
    blocks = _upstream_blocks(rendered())
    assert set(blocks) == {"bg_blue", "bg_green"}
    for color, block in blocks.items():
        server = color.removeprefix("bg_")
        assert f"server shop-{server}-server:9000 resolve;" in block
        assert f"keepalive {UPSTREAM_IDLE_CONNECTIONS};" in block
        assert f"zone {color} " in block  # `resolve` needs the group in shared memory
    # The pool lets an idle connection go before Node's 5 s keepAliveTimeout closes it.
    assert UPSTREAM_IDLE_TIMEOUT_SECONDS < 5


def test_every_proxied_route_goes_through_a_pooled_upstream_with_keep_alive_headers() -> None:
    text = _full(preview_token="a-long-random-preview-token")
    colour_passes = re.findall(r"proxy_pass http://\$(bg_\w+);", text)
    assert set(colour_passes) == {"bg_live_upstream", "bg_preview_upstream", "bg_search_upstream"}
    for name in ("bg_live_upstream", "bg_preview_upstream"):
        targets = re.search(rf"map \$\w+ \${name} \{{\n(.*?)\n\}}", text, flags=re.S)
        assert targets is not None
        assert set(re.findall(r"(bg_blue|bg_green);", targets.group(1))) == {"bg_blue", "bg_green"}
    # Without HTTP/1.1 and an empty Connection header nginx would close every upstream connection.
    assert "proxy_http_version 1.1;" in text and "map $http_upgrade $bg_connection_upgrade" in text


def test_ip_address_upstreams_are_not_resolved_and_need_no_resolver() -> None:
    text = render_router_config(RouterConfigInput(
        domain="shop.example.com", upstreams={"blue": "127.0.0.1:9001", "green": "shop-green-server:9000"},
        resolver=None))
    blocks = _upstream_blocks(text)
    assert "server 127.0.0.1:9001;" in blocks["bg_blue"]
    assert "server shop-green-server:9000;" in blocks["bg_green"]  # no resolver: resolved at start
    assert "resolver " not in text


def test_the_probe_listener_is_the_container_loopback_and_has_no_token_guard() -> None:
    config = render_router_config(RouterConfigInput(
        domain="shop.example.com", upstreams=docker_upstreams("shop"), preview_token="a-long-random-preview-token"))
    servers = config.split("server {")
    probe = [block for block in servers if f"listen 127.0.0.1:{PROBE_PORT};" in block]
    published = [block for block in servers if f"listen {PREVIEW_PORT};" in block]
    assert len(probe) == 1 and len(published) == 1
    assert "a-long-random-preview-token" not in probe[0] and "a-long-random-preview-token" in published[0]
    for block in (probe[0], published[0]):
        assert f'proxy_set_header {PREVIEW_TOKEN_HEADER} "";' in block


# ---------------------------------------------------------------------------------------------
# per-client limits, the search allow-list and trusted proxies (what is rendered; the behaviour
# is proven against real nginx in tests/component/test_router_limits.py)
# ---------------------------------------------------------------------------------------------


def _full(**overrides: object) -> str:
    """Every server block: TLS with ACME (so the redirect server exists) and search on."""
    spec = RouterConfigInput(
        domain="shop.example.com", upstreams=docker_upstreams("shop"), tls=TLS_IN_ROUTER,
        acme_webroot="/var/www/acme", meilisearch_upstream="meilisearch:7700", **overrides)  # type: ignore[arg-type]
    return render_router_config(spec)


def _servers(text: str) -> list[str]:
    return text.split("server {")[1:]


def _locations(server: str) -> dict[str, str]:
    blocks = re.split(r"\n    location ", server)[1:]
    return {block.split(" {", 1)[0]: block for block in blocks}


def test_every_server_limits_connections_per_client_and_bounds_slow_clients() -> None:
    text = _full(max_connections_per_client=7, client_timeout_seconds=11)
    assert "limit_conn_zone $binary_remote_addr zone=bg_conn_per_client:10m;" in text
    servers = _servers(text)
    assert len(servers) == 4  # public (TLS), HTTP redirect, preview, probe
    for server in servers:
        for directive in (
            "limit_conn bg_conn_per_client 7;",
            "limit_conn_status 503;",
            "client_header_timeout 11s;",
            "client_body_timeout 11s;",
            "send_timeout 11s;",
            f"keepalive_timeout {KEEPALIVE_TIMEOUT_SECONDS}s;",
        ):
            assert directive in server, (directive, server[:200])


def test_every_public_location_is_rate_limited_but_the_router_health_and_acme() -> None:
    text = _full(rate_limit_per_second=3, rate_limit_burst=9)
    assert "limit_req_zone $binary_remote_addr zone=bg_per_client:10m rate=3r/s;" in text
    public, redirect = _servers(text)[:2]
    locations = _locations(public)
    assert set(locations) == {
        "= /_bluegreen/health", "= /health", "/app", "/admin/", "/auth/", "/search/", "/", "@bg_maintenance"}
    for name, block in locations.items():
        limited = "limit_req zone=bg_per_client burst=9 nodelay;" in block
        # The maintenance page is reached only from a location that was already limited.
        assert limited == (name not in ("= /_bluegreen/health", "@bg_maintenance")), name
    assert "limit_req_status 429;" in public
    assert "limit_req " not in redirect  # its 301s and the ACME challenge are not rate limited


def test_only_the_search_endpoints_are_routed_to_meilisearch() -> None:
    text = _full()
    entries = re.findall(r'^    "~(\^[^"]+)"\s+1;$', text.split("$bg_search_route {", 1)[1].split("}", 1)[0], re.M)
    routes = [re.compile(entry) for entry in entries]

    def public(method: str, uri: str) -> bool:
        return any(route.match(f"{method} {uri}") for route in routes)

    for method, uri in [
        ("GET", "/search/indexes/products/search"), ("POST", "/search/indexes/products/search"),
        ("POST", "/search/indexes/Prod_1-x/facet-search"), ("POST", "/search/multi-search"),
        ("OPTIONS", "/search/multi-search"), ("OPTIONS", "/search/indexes/products/search"),
        ("GET", "/search/indexes/products/similar"), ("POST", "/search/indexes/products/similar"),
    ]:
        assert public(method, uri), (method, uri)
    for method, uri in [
        ("GET", "/search/keys"), ("POST", "/search/keys"), ("DELETE", "/search/indexes/products"),
        ("POST", "/search/indexes/products/documents"), ("POST", "/search/dumps"),
        ("PATCH", "/search/indexes/products/settings"), ("DELETE", "/search/indexes/products/search"),
        ("GET", "/search/multi-search"), ("GET", "/search/indexes/products/documents/search"),
        ("GET", "/search/indexes/products/search/"), ("GET", "/search/indexes/a.b/search"),
        ("DELETE", "/search/indexes/products/similar"), ("POST", "/search/indexes/products/similar/x"),
    ]:
        assert not public(method, uri), (method, uri)
    search = _locations(_servers(text)[0])["/search/"]
    assert search.index("if ($bg_search_route = 0)") < search.index("proxy_pass")


def test_without_trusted_proxies_client_forwarded_headers_are_not_believed() -> None:
    text = _full()
    assert "set_real_ip_from" not in text and "real_ip_header" not in text
    geo = text.split("$bg_from_trusted_proxy {", 1)[1].split("}", 1)[0]
    assert [line.strip() for line in geo.splitlines() if line.strip()] == ["default 0;"]


def test_trusted_proxies_set_the_client_address_and_scheme_on_the_public_servers_only() -> None:
    text = _full(trusted_proxies=("10.0.0.0/8", "2001:db8::/32"))
    geo = text.split("$bg_from_trusted_proxy {", 1)[1].split("}", 1)[0]
    assert "10.0.0.0/8 1;" in geo and "2001:db8::/32 1;" in geo
    public, redirect, preview, probe = _servers(text)
    for server in (public, redirect):
        assert "set_real_ip_from 10.0.0.0/8;" in server and "set_real_ip_from 2001:db8::/32;" in server
        assert "real_ip_header X-Forwarded-For;" in server and "real_ip_recursive on;" in server
    assert set(re.findall(r"X-Forwarded-Proto (\S+);", public)) == {"$bg_forwarded_proto"}
    assert set(re.findall(r"X-Forwarded-For (\S+);", public)) == {"$bg_forwarded_for"}
    for server in (preview, probe):
        assert "set_real_ip_from" not in server
        assert set(re.findall(r"X-Forwarded-Proto (\S+);", server)) == {"$scheme"}


def test_a_trusted_proxy_that_is_not_a_network_is_refused() -> None:
    with pytest.raises(ValueError, match="trusted proxy"):
        _full(trusted_proxies=("10.0.0.0/8; include /etc/passwd",))


def test_the_router_settings_reach_the_rendered_config() -> None:
    router = {"maxConnectionsPerClient": 12, "clientTimeoutSeconds": 9, "trustedProxies": ["173.245.48.0/20"],
              "rateLimitPerSecond": 4, "rateLimitBurst": 8}
    settings = load_settings(config(router=json.dumps(router)))
    text = render_router_config(inputs.router_config_input(settings))
    for directive in ("limit_conn bg_conn_per_client 12;", "client_body_timeout 9s;",
                      "set_real_ip_from 173.245.48.0/20;", "rate=4r/s;", "burst=8 nodelay;"):
        assert directive in text, directive


def test_maintenance_holds_back_the_storefront_and_search_only() -> None:
    text = _full(maintenance_retry_after_seconds=120)
    locations = _locations(_servers(text)[0])
    guarded = {name for name, block in locations.items() if "error_page 503 @bg_maintenance;" in block}
    assert guarded == {"/", "/search/"}
    page = locations["@bg_maintenance"]
    assert "add_header Retry-After 120 always;" in page and "return 503 " in page
    # nginx's return text: a double quote would end it, a `$` would be read as a variable.
    assert '"' not in MAINTENANCE_PAGE and "$" not in MAINTENANCE_PAGE
    # The router's own loopback (post-switch check, docker exec) is never held back.
    assert "if ($realip_remote_addr = 127.0.0.1) {\n        set $bg_maintenance 0;" in text


def test_every_routed_request_is_logged_to_the_metrics_exporter_on_the_loopback():
    text = rendered()
    assert re.search(r"^access_log syslog:server=127\.0\.0\.1:9514,\S* bg_metrics if=\$bg_route;$", text, re.M)
    route_map = "map $server_port $bg_route {\n    default \"\";\n    80 live;\n    8081 preview;\n    8082 preview;\n}"
    assert route_map in text
    # Each server names the color it sends to; Meilisearch's route is no color.
    assert text.count("set $bg_color $bg_live;") == 1
    assert text.count("set $bg_color $bg_preview;") == 2


def test_with_tls_the_https_port_is_the_live_route_and_port_80_only_redirects():
    text = render_router_config(
        RouterConfigInput(domain="shop.example.com", upstreams=docker_upstreams("shop"), tls=TLS_IN_ROUTER)
    )
    route_map = re.search(r"map \$server_port \$bg_route \{(.*?)\}", text, re.S)
    assert route_map and "443 live;" in route_map.group(1) and "80 " not in route_map.group(1)


def test_the_metrics_route_is_proxied_to_the_exporter_and_needs_the_token_where_people_reach_it():
    text = render_router_config(
        RouterConfigInput(domain="shop.example.com", upstreams=docker_upstreams("shop"), preview_token="t0k")
    )
    locations = re.findall(r"location = /_bluegreen/metrics \{(.*?)\n    \}", text, re.S)
    assert len(locations) == 2  # the published preview server and the probe server
    published, probe = locations
    assert 'if ($http_authorization != "Bearer t0k")' in published and "return 404;" in published
    assert "http_authorization" not in probe
    for location in locations:
        assert "proxy_pass http://127.0.0.1:9145/metrics;" in location and "access_log off;" in location


def test_servers_sharing_a_port_are_refused_since_the_port_names_the_route():
    with pytest.raises(ValueError, match="their own ports"):
        render_router_config(
            RouterConfigInput(domain="shop.example.com", upstreams=docker_upstreams("shop"), listen_probe=PREVIEW_PORT)
        )
