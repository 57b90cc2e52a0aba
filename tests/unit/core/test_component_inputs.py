"""What the components get from the settings."""

import json
from dataclasses import fields

from core import component_inputs as inputs
from core.health_poll import PollSpec
from core.settings import HealthGateSettings, load_settings
from tests.unit.configs import config


def test_every_gate_setting_but_the_path_is_a_poll_field() -> None:
    poll_fields = {f.name for f in fields(PollSpec)}
    assert set(HealthGateSettings.model_fields) - {"path"} <= poll_fields


def test_the_gate_polls_the_preview_route_with_the_configured_timing() -> None:
    gate = {"path": "/ready", "deadlineSeconds": 90, "expectBody": "up"}
    settings = load_settings(config(healthGate=json.dumps(gate)))
    spec = inputs.gate_spec(settings, "green")
    assert spec.url == f"{settings.preview_url}/ready"
    assert (spec.color, spec.deadline_seconds, spec.expect_body, spec.verify_tls) == ("green", 90, "up", True)


def test_the_post_switch_check_goes_through_the_live_route_with_a_short_deadline() -> None:
    settings = load_settings(config(tls=json.dumps({"enabled": True, "certPath": "/c", "keyPath": "/k"})))
    spec = inputs.post_switch_spec(settings, "blue")
    assert spec.url.startswith(f"https://{settings.router.probe_host}:{settings.router.https_port}/")
    assert spec.deadline_seconds == inputs.POST_SWITCH_DEADLINE_SECONDS and spec.verify_tls is False


def test_the_preview_token_travels_in_the_header_the_router_checks() -> None:
    settings = load_settings(config(previewToken="a-long-random-preview-token"))
    assert inputs.preview_headers(settings) == {"X-Bluegreen-Preview-Token": "a-long-random-preview-token"}
    assert inputs.preview_headers(load_settings(config())) is None
