"""What the components get from the settings."""

import json
from dataclasses import fields
from pathlib import Path

from core import component_inputs as inputs
from core.health_poll import PollSpec
from core.router_config import HTTP_PORT, HTTPS_PORT, PROBE_PORT
from core.settings import HealthGateSettings, load_settings
from tests.unit.configs import config


def test_every_gate_setting_but_what_it_checks_is_a_poll_field() -> None:
    poll_fields = {f.name for f in fields(PollSpec)}
    assert set(HealthGateSettings.model_fields) - inputs.GATE_WHAT_FIELDS <= poll_fields


def test_the_worker_check_goes_through_the_live_route_with_its_own_status_and_body_and_the_gate_timing() -> None:
    gate = {"deadlineSeconds": 45, "workerCheck": {"path": "/ready/worker", "expectBody": "handled by the"}}
    spec = inputs.worker_check_spec(load_settings(config(healthGate=json.dumps(gate))), "green")
    assert spec is not None
    assert (spec.url, spec.expect_status, spec.expect_body, spec.deadline_seconds, spec.color) == (
        inputs.live_probe_url("/ready/worker", tls=False), 200, "handled by the", 45, "green")
    assert spec.what == "worker check (/ready/worker -> 200)"
    assert inputs.worker_check_spec(load_settings(config()), "green") is None


def test_each_check_goes_through_the_preview_route_with_its_own_status_and_body() -> None:
    gate = {"deadlineSeconds": 90, "checks": [{"path": "/app", "expectBody": "Admin"},
                                              {"path": "/store/products", "expectStatus": 400}]}
    settings = load_settings(config(healthGate=json.dumps(gate)))
    admin, store = inputs.check_specs(settings, "green")
    assert (admin.url, admin.expect_status, admin.expect_body) == (f"http://127.0.0.1:{PROBE_PORT}/app", 200, "Admin")
    assert (store.url, store.expect_status, store.expect_body) == (
        f"http://127.0.0.1:{PROBE_PORT}/store/products", 400, None)
    assert all(s.via_router == f"{settings.prefix}-router" and s.deadline_seconds == 90 for s in (admin, store))
    assert store.what == "health check 2 (/store/products -> 400)"
    assert inputs.check_specs(load_settings(config()), "green") == []


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


def test_each_replica_is_gated_by_its_own_name_with_the_gates_timing() -> None:
    gate = {"path": "/ready", "deadlineSeconds": 90}
    medusa = {"serverReplicas": 2}
    settings = load_settings(config(prefix="shop", healthGate=json.dumps(gate), medusa=json.dumps(medusa)))
    specs = inputs.replica_gate_specs(settings, "green")
    assert [spec.url for spec in specs] == ["http://shop-green-server:9000/ready", "http://shop-green-server-2:9000/ready"]
    assert all(spec.via_router == "shop-router" and spec.deadline_seconds == 90 for spec in specs)
    assert "shop-green-server-2" in specs[1].what and specs[1].hint == "its log: docker logs shop-green-server-2"
    # One server: the preview gate proves it, nothing else to run.
    assert inputs.replica_gate_specs(load_settings(config()), "green") == []


def test_the_post_switch_check_goes_through_the_live_route_with_a_short_deadline() -> None:
    settings = load_settings(config(tls=json.dumps({"enabled": True, "certPath": "/c", "keyPath": "/k"})))
    spec = inputs.post_switch_spec(settings, "blue")
    assert spec.url == f"https://127.0.0.1:{HTTPS_PORT}/health" and spec.via_router == f"{settings.prefix}-router"
    assert dict(spec.headers) == {"Host": settings.domain}
    assert spec.deadline_seconds == inputs.POST_SWITCH_DEADLINE_SECONDS


def test_without_tls_the_post_switch_check_uses_the_plain_http_server() -> None:
    spec = inputs.post_switch_spec(load_settings(config()), "blue")
    assert spec.url == f"http://127.0.0.1:{HTTP_PORT}/health"


def test_a_build_gets_the_stacks_backend_url_for_the_admin_bundle_unless_its_args_set_it(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    def with_build(build: dict[str, object]) -> dict[str, str]:
        return {k: v for k, v in config(blueBuild=json.dumps(build)).items() if k != "blueImage"}

    built = load_settings(with_build({"context": str(tmp_path)}))
    plan = inputs.build_plan(built, "blue")
    assert plan is not None and plan.args == {inputs.ADMIN_BACKEND_URL_ARG: built.public_url}
    assert built.public_url == "http://api.shop.example.com"
    own = load_settings(with_build({"context": str(tmp_path), "args": {"MEDUSA_BACKEND_URL": "/"}}))
    mine = inputs.build_plan(own, "blue")
    assert mine is not None and mine.args == {"MEDUSA_BACKEND_URL": "/"}
    assert mine.image_ref != plan.image_ref
