"""The rendered router config: the parts a flip and a dead color depend on."""

import re

from core.router_config import (
    CONNECT_TIMEOUT_SECONDS,
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
