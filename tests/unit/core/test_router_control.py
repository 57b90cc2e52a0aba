"""The router's switch protocol: argv out, typed result back, and the undo it implies."""

import shlex

import pytest

from core import router_control
from core.router_config import EXPORTER_PATH, HTTP_PORT, HTTPS_PORT, PROBE_PORT, SCRIPT_PATH
from core.router_control import (
    ProbeReply,
    RouterProtocolError,
    SwitchResult,
    live_probe_url,
    parse_probe,
    parse_switch,
    preview_probe_url,
    probe_argv,
    switch_argv,
)


def test_a_flip_reads_back_as_what_it_replaced() -> None:
    result = parse_switch("route=live previous=blue current=green\n")
    assert result == SwitchResult(route="live", previous="blue", current="green")


def test_the_undo_puts_the_replaced_color_back_through_the_same_docker_host() -> None:
    undo = parse_switch("route=live previous=blue current=green").undo("shop-router", "ssh://deploy@vps")
    assert undo is not None
    assert list(undo.argv) == switch_argv("shop-router", "live", "blue")
    assert undo.argv[-3:] == ("switch", "live", "blue") and SCRIPT_PATH in undo.argv
    assert undo.as_input() == {"argv": list(undo.argv), "env": {"DOCKER_HOST": "ssh://deploy@vps"}}


def test_a_switch_that_changed_nothing_has_no_undo() -> None:
    assert parse_switch("route=live previous=green current=green").undo("r", "unix:///x") is None


@pytest.mark.parametrize(
    "stdout",
    ["", "config applied", "route=live previous=purple current=green", "route=side previous=blue current=green"],
)
def test_anything_else_is_a_protocol_error(stdout: str) -> None:
    with pytest.raises(RouterProtocolError):
        parse_switch(stdout)


# -- probes ---------------------------------------------------------------------------------


def test_a_probe_is_curl_inside_the_router_with_headers_and_no_secret() -> None:
    argv = probe_argv("shop-router", preview_probe_url("/health"), {"Host": "shop.example.com"}, 5)
    assert argv[:4] == ["docker", "exec", "shop-router", "curl"]
    assert argv[-1] == f"http://127.0.0.1:{PROBE_PORT}/health"
    assert "Host: shop.example.com" in argv and "--max-time" in argv


def test_a_probe_reply_reads_back_status_color_and_body() -> None:
    reply = parse_probe(0, 'ok {"db": "up"}\n__bluegreen_probe__ 200 green', "")
    assert reply == ProbeReply(200, "green", 'ok {"db": "up"}', None)
    assert parse_probe(0, "starting\n__bluegreen_probe__ 503 ", "").color is None


def test_a_probe_without_an_answer_says_why() -> None:
    refused = parse_probe(7, "\n__bluegreen_probe__ 000 ", "curl: (7) Failed to connect to 127.0.0.1 port 8082")
    assert refused.status is None and refused.error is not None and "Failed to connect" in refused.error
    no_curl = parse_probe(126, "", 'OCI runtime exec failed: exec: "curl": executable file not found in $PATH')
    assert no_curl.error is not None and "the router image has no curl" in no_curl.error


def test_the_live_probe_takes_the_public_server_with_or_without_tls() -> None:
    assert live_probe_url("/health", tls=True) == f"https://127.0.0.1:{HTTPS_PORT}/health"
    assert live_probe_url("/health", tls=False) == f"http://127.0.0.1:{HTTP_PORT}/health"


def test_the_metrics_command_installs_the_exporter_then_starts_it_with_the_configs_ports() -> None:
    argv = shlex.split(router_control.metrics_command("shop-router"))
    assert argv[:6] == ["docker", "exec", "-i", "shop-router", "sh", "-c"]
    install, start = argv[6].split(" && sh ")
    assert install.startswith(f"cat > {EXPORTER_PATH}.new && mv -f {EXPORTER_PATH}.new {EXPORTER_PATH}")
    buckets = "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10"
    assert shlex.split(start) == [SCRIPT_PATH, "metrics", "9514", "9145", buckets]
