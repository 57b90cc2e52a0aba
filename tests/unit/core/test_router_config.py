"""The rendered router config: the parts a flip and a dead color depend on."""

import re

from core.router_config import (
    CONNECT_TIMEOUT_SECONDS,
    PREVIEW_PORT,
    PREVIEW_TOKEN_HEADER,
    PROBE_PORT,
    RESOLVER_VALID_SECONDS,
    RouterConfigInput,
    docker_upstreams,
    render_router_config,
)


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
