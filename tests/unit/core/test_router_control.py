"""The router's switch protocol: argv out, typed result back, and the undo it implies."""

import pytest

from core.router_config import SCRIPT_PATH
from core.router_control import RouterProtocolError, SwitchResult, parse_switch, switch_argv


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
