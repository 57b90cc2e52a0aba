"""What the components get from the settings."""

import json
from dataclasses import fields

from core import component_inputs as inputs
from core.health_poll import PollSpec
from core.router_config import HTTP_PORT, HTTPS_PORT, PROBE_PORT
from core.settings import HealthGateSettings, load_settings
from tests.unit.configs import config


def test_every_gate_setting_but_the_path_is_a_poll_field() -> None:
    poll_fields = {f.name for f in fields(PollSpec)}
    assert set(HealthGateSettings.model_fields) - {"path"} <= poll_fields


def test_the_gate_probes_the_preview_route_inside_the_router_with_the_configured_timing() -> None:
    gate = {"path": "/ready", "deadlineSeconds": 90, "expectBody": "up"}
    settings = load_settings(config(healthGate=json.dumps(gate), dockerHost="ssh://deploy@203.0.113.7"))
    spec = inputs.gate_spec(settings, "green")
    assert spec.url == f"http://127.0.0.1:{PROBE_PORT}/ready"
    assert (spec.via_router, spec.docker_host) == (f"{settings.prefix}-router", "ssh://deploy@203.0.113.7")
    assert (spec.color, spec.deadline_seconds, spec.expect_body) == ("green", 90, "up")


def test_the_gate_carries_no_token_even_when_one_is_set() -> None:
    settings = load_settings(config(previewToken="a-long-random-preview-token"))
    spec = inputs.gate_spec(settings, "green")
    assert dict(spec.headers) == {}
    assert "a-long-random-preview-token" not in repr(spec)


def test_the_post_switch_check_goes_through_the_live_route_with_a_short_deadline() -> None:
    settings = load_settings(config(tls=json.dumps({"enabled": True, "certPath": "/c", "keyPath": "/k"})))
    spec = inputs.post_switch_spec(settings, "blue")
    assert spec.url == f"https://127.0.0.1:{HTTPS_PORT}/health" and spec.via_router == f"{settings.prefix}-router"
    assert dict(spec.headers) == {"Host": settings.domain}
    assert spec.deadline_seconds == inputs.POST_SWITCH_DEADLINE_SECONDS


def test_without_tls_the_post_switch_check_uses_the_plain_http_server() -> None:
    spec = inputs.post_switch_spec(load_settings(config()), "blue")
    assert spec.url == f"http://127.0.0.1:{HTTP_PORT}/health"
