"""The resource graph: which resources exist, their order, and what a flip must not touch."""

import json
import shlex

import pytest

from core.naming import other_color
from core.router_config import METRICS_EXPORTER
from tests.unit.configs import HOSTILE_PASSWORD, config, two_colors
from tests.unit.mock_stack import fake_digest, plain_strings, run_program

# Resources whose inputs must be byte-identical whichever color is live (rules 1 and 3).
COLOR_INDEPENDENT = [
    "router", "router-config-volume", "router-image", "router-config", "router-control-script",
    "router-maintenance", "router-metrics", "router-canary", "network", "backups-volume", "postgres", "postgres-volume",
    "postgres-image",
    "postgres-password",
    "redis", "redis-volume", "redis-image", "meilisearch", "meilisearch-volume", "meilisearch-image",
]


def names_of_type(monitor, type_):
    return sorted(n for n, r in monitor.registrations.items() if r.type == type_)


def test_first_deploy_creates_one_color_and_the_shared_services():
    monitor, outputs = run_program(config())
    containers = names_of_type(monitor, "docker:index/container:Container")
    assert containers == ["blue-server", "blue-worker", "meilisearch", "postgres", "redis", "router"]
    commands = names_of_type(monitor, "command:local:Command")
    assert commands == [
        "blue-backup", "blue-migrate", "blue-schema-check", "blue-worker-handover", "image-prune", "live-route",
        "meilisearch-keys", "postgres-password", "preview-route", "router-canary", "router-config",
        "router-control-script", "router-maintenance", "router-metrics",
    ]
    gates = names_of_type(monitor, "pulumi-python:dynamic:Resource")
    assert gates == ["blue-health-gate", "post-switch-check"]
    assert outputs["liveColor"] == "blue"
    assert outputs["images"] == {"blue": fake_digest("registry.example.com/shop/medusa:1.0.0")}
    assert outputs["publicUrl"] == "http://api.shop.example.com"
    assert outputs["backup"] == "20261122T000000Z-blue-app.dump"


def test_two_color_stack_keeps_other_server_warm_and_stops_its_worker():
    monitor, outputs = run_program(two_colors("green"))
    containers = names_of_type(monitor, "docker:index/container:Container")
    assert "blue-server" in containers and "blue-worker" not in containers
    assert "green-server" in containers and "green-worker" in containers
    assert set(outputs["images"]) == {"blue", "green"}
    assert "green-health-gate" in monitor.registrations
    assert "blue-health-gate" not in monitor.registrations


def test_other_color_stopped_removes_its_server_too():
    monitor, _ = run_program({**two_colors("green"), "otherColor": "stopped"})
    containers = names_of_type(monitor, "docker:index/container:Container")
    assert not any(name.startswith("blue-") for name in containers)


def test_flip_changes_no_input_of_router_network_volumes_or_shared_services():
    before, _ = run_program(two_colors("blue"))
    after, _ = run_program(two_colors("green"))
    for name in COLOR_INDEPENDENT:
        assert before.registrations[name].inputs == after.registrations[name].inputs, name
        assert before.registrations[name].dependencies == after.registrations[name].dependencies, name
    # A warm color that becomes live keeps its server: same inputs, so nothing is recreated.
    for name in ("blue-server", "green-server", "blue-image", "green-image", "blue-migrate", "green-migrate"):
        assert before.registrations[name].inputs == after.registrations[name].inputs, name


def test_router_container_inputs_name_no_color():
    # The flip test above compares whole inputs; this one also catches a color that would be
    # the same in both runs (say, a label naming the first color ever deployed).
    monitor, _ = run_program(two_colors("green"))
    for name in ("router", "router-config-volume", "router-image"):
        text = " ".join(plain_strings(monitor.registrations[name].inputs)).replace("bluegreen", "")
        assert "blue" not in text and "green" not in text, name


@pytest.mark.parametrize("active", ["blue", "green"])
def test_order_of_operations_is_real_dependencies(active):
    monitor, _ = run_program(two_colors(active))
    chain = [
        (f"{active}-backup", "postgres"),
        ("postgres-password", "postgres"),
        (f"{active}-backup", "postgres-password"),
        (f"{active}-migrate", f"{active}-backup"),
        (f"{active}-server", f"{active}-migrate"),
        ("preview-route", f"{active}-server"),
        ("preview-route", "router-config"),
        (f"{active}-health-gate", "preview-route"),
        ("live-route", f"{active}-health-gate"),
        (f"{active}-schema-check", f"{active}-health-gate"),
        ("live-route", f"{active}-schema-check"),
        ("post-switch-check", "live-route"),
        (f"{active}-worker", "live-route"),
        (f"{active}-worker", "post-switch-check"),
        (f"{active}-worker-handover", "post-switch-check"),
        (f"{active}-worker", f"{active}-worker-handover"),
        ("image-prune", f"{active}-worker"),
        ("router-config", "router-control-script"),
        ("router-maintenance", "router-config"),
        ("router-metrics", "router-control-script"),
        # The other color may be live until the flip: a change that replaces it waits for it.
        (f"{other_color(active)}-server", "post-switch-check"),
    ]
    for later, earlier in chain:
        assert monitor.depends_on(later, earlier), f"{later} must depend on {earlier}"


def test_schema_check_guards_the_flip_to_the_target_and_the_flip_back_to_the_other_color():
    monitor, _ = run_program({**two_colors("green"),
                              "database": json.dumps({"acknowledgedMigrations": ["Migration20261203000000"]})})
    check = monitor.registrations["green-schema-check"].inputs
    assert "registry.example.com/shop/medusa:1.1.0" in check["create"]
    assert "Migration20261203000000" in check["create"]
    assert check["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert "blue-schema-check" not in monitor.registrations
    guard = monitor.registrations["post-switch-check"].inputs["rollback"]["guard"]
    assert guard["argv"][:2] == ["sh", "-c"]
    assert "registry.example.com/shop/medusa:1.0.0" in guard["argv"][2]


def test_no_schema_check_against_an_external_database():
    monitor, _ = run_program({**two_colors("green"), "database": json.dumps({"mode": "external"}),
                              "databaseUrl": "postgres://u:p@db:5432/x?sslmode=require"})
    assert not any(name.endswith("schema-check") for name in monitor.registrations)


def test_image_prune_runs_once_per_release_on_the_released_repository_only():
    monitor, _ = run_program(two_colors("green"))
    prune = monitor.registrations["image-prune"].inputs
    assert prune["triggers"] == [fake_digest("registry.example.com/shop/medusa:1.1.0")]
    assert prune["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    script = shlex.split(prune["create"])[2]
    assert script.startswith("set -uf; release=registry.example.com/shop/medusa:1.1.0\n")
    assert script.count("--filter reference=") == 1, "service images (postgres, redis, nginx) are never pruned"
    assert "--filter reference=registry.example.com/shop/medusa)" in script
    assert "tail -n +4" in script  # releases.keep defaults to 3
    # A no-op up reruns nothing, and neither does an idle-only change (only that color changes);
    # a flip back (a rollback) is a release and prunes again.
    again, _ = run_program({**two_colors("green"), "blueImage": "registry.example.com/shop/medusa:0.9.0"})
    assert again.registrations["image-prune"].inputs == prune
    back, _ = run_program(two_colors("blue"))
    blue_image = fake_digest("registry.example.com/shop/medusa:1.0.0")
    assert back.registrations["image-prune"].inputs["triggers"] == [blue_image]


def test_image_prune_of_a_built_release_covers_the_build_repository_and_keep_setting():
    monitor, _ = run_program(
        config(activeColor="green", greenBuild=json.dumps({"context": "harness/images/testapp"}),
               prefix="shop", releases=json.dumps({"keep": 5}))
    )
    script = shlex.split(monitor.registrations["image-prune"].inputs["create"])[2]
    assert script.startswith("set -uf; release=shop-app:src-")
    assert script.count("--filter reference=") == 1 and "--filter reference=shop-app)" in script
    assert "tail -n +6" in script


def test_no_image_prune_when_the_app_shares_a_service_repository():
    monitor, _ = run_program(config(blueImage="redis:7.4-app"))
    assert "image-prune" not in monitor.registrations


def test_gate_reruns_on_image_and_container_changes():
    monitor, _ = run_program(config())
    triggers = monitor.registrations["blue-health-gate"].inputs["triggers"]
    assert fake_digest("registry.example.com/shop/medusa:1.0.0") in triggers
    assert "blue-server-id" in triggers


def test_postgres_password_is_reapplied_for_every_new_postgres_container():
    # A kept data volume under a regenerated password would lock the app out after
    # `pulumi destroy` + `pulumi up`; see docker_cli.sync_postgres_password.
    monitor, _ = run_program(config())
    sync = monitor.registrations["postgres-password"].inputs
    assert sync["triggers"] == ["postgres-id"]
    assert "ALTER ROLE" in sync["create"] and "\\getenv password POSTGRES_PASSWORD" in sync["create"]
    for name in ("postgres", "redis"):
        assert monitor.registrations[name].inputs["wait"] is True, f"{name}: up must wait for healthy"


def test_data_volumes_outlive_destroy():
    monitor, _ = run_program(config())
    for name in ("postgres-volume", "redis-volume", "meilisearch-volume", "backups-volume"):
        assert monitor.registrations[name].retain_on_delete, name


def test_no_data_port_published_and_router_ports_from_settings():
    monitor, _ = run_program(config(router='{"bindAddress": "127.0.0.1", "httpPort": 8080}'))
    for name in ("postgres", "redis", "meilisearch", "blue-server", "blue-worker"):
        assert "ports" not in monitor.registrations[name].inputs, name
    ports = monitor.registrations["router"].inputs["ports"]
    assert {"internal": 80.0, "external": 8080.0, "ip": "127.0.0.1", "protocol": "tcp"} in ports or any(
        p.get("external") == 8080 and p.get("ip") == "127.0.0.1" for p in ports
    )
    preview = [p for p in ports if p.get("internal") == 8081]
    assert preview and preview[0]["ip"] == "127.0.0.1"


def secret_values(monitor) -> list[str]:
    generated = [
        r.inputs.get("result") for r in monitor.registrations.values() if r.type.startswith("random:")
    ]
    return [
        HOSTILE_PASSWORD, HOSTILE_PASSWORD[::-1], "j" * 40, "c" * 40, "sk_live_stripe_secret_value",
        "p%40ss%3Aw%2Frd%3F%23%25%27%22%20x%2B%26%3D",
        *[f"generated-{n}-0123456789" for n in ("meilisearch-master-key",)],
        *[g for g in generated if g],
    ]


def test_no_secret_in_any_non_secret_input():
    monitor, _ = run_program({**two_colors("blue"), "previewToken": "preview-token-abcdefgh"})
    secrets = [*secret_values(monitor), "preview-token-abcdefgh"]
    for reg in monitor.registrations.values():
        for text in plain_strings(reg.inputs):
            for secret in secrets:
                assert secret not in text, f"{reg.name} carries a secret in a plain input"


def test_secrets_do_reach_the_containers_as_secret_inputs():
    monitor, _ = run_program(config())
    envs = monitor.registrations["blue-server"].inputs["envs"]
    assert envs["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    env = dict(item.split("=", 1) for item in envs["value"])
    assert env["MEDUSA_WORKER_MODE"] == "server"
    assert env["DATABASE_URL"].startswith("postgres://medusa:p%40ss%3Aw%2Frd")
    assert env["DATABASE_URL"].endswith("@postgres:5432/medusa?sslmode=disable")
    assert env["REDIS_URL"].startswith("redis://default:") and env["REDIS_URL"].endswith("@redis:6379/0")
    assert env["FEATURE_X"] == "on"
    worker = dict(i.split("=", 1) for i in monitor.registrations["blue-worker"].inputs["envs"]["value"])
    assert worker["MEDUSA_WORKER_MODE"] == "worker" and worker["DISABLE_MEDUSA_ADMIN"] == "true"


def test_redis_password_is_on_no_command_line():
    monitor, _ = run_program(config())
    redis = monitor.registrations["redis"].inputs
    assert "requirepass" in " ".join(redis["command"]) and "$REDISCLI_AUTH" in " ".join(redis["command"])
    assert redis["healthcheck"]["tests"] == ["CMD-SHELL", "redis-cli ping | grep -q PONG"]


ACME = '{"enabled": true, "acme": {"email": "ops@shop.example.com"}}'


def test_acme_tls_adds_a_renewal_container_and_waits_for_the_certificate_before_the_flip():
    monitor, outputs = run_program(config(tls=ACME))
    assert "acme" in names_of_type(monitor, "docker:index/container:Container")
    assert "certificate-ready" in names_of_type(monitor, "pulumi-python:dynamic:Resource")
    chain = (("acme", "router-config"), ("certificate-ready", "acme"), ("live-route", "certificate-ready"))
    for later, earlier in chain:
        assert monitor.depends_on(later, earlier), f"{later} must depend on {earlier}"
    assert outputs["publicUrl"] == "https://api.shop.example.com"


def test_acme_router_mounts_the_tls_volume_read_only_and_publishes_443():
    monitor, _ = run_program(config(tls=ACME))
    router = monitor.registrations["router"].inputs
    mounts = [v for v in router["volumes"] if v.get("containerPath") == "/etc/nginx/tls"]
    assert len(mounts) == 1 and mounts[0]["readOnly"] is True and mounts[0]["volumeName"] == "medusa-tls"
    assert any(p.get("internal") == 443 for p in router["ports"])
    assert monitor.registrations["tls-volume"].retain_on_delete


def test_acme_client_gets_the_domain_and_ca_but_no_secret():
    monitor, _ = run_program(config(tls=ACME))
    envs = monitor.registrations["acme"].inputs["envs"]
    assert "ACME_DOMAIN=api.shop.example.com" in envs and "ACME_EMAIL=ops@shop.example.com" in envs
    assert any(e.startswith("ACME_DIRECTORY_URL=https://acme-v02.api.letsencrypt.org/") for e in envs)
    text = " ".join(plain_strings(monitor.registrations["acme"].inputs))
    for secret in secret_values(monitor):
        assert secret not in text


def test_tls_with_own_files_has_no_acme_client():
    monitor, _ = run_program(config(tls='{"enabled": true, "certPath": "/etc/ssl/c.pem", "keyPath": "/etc/ssl/k.pem"}'))
    assert "acme" not in monitor.registrations and "certificate-ready" not in monitor.registrations


@pytest.mark.parametrize("enabled", [False, True])
def test_maintenance_is_one_router_command_and_changes_nothing_else(enabled):
    """On and off is the router's state file (no reload, no color touched): the setting reaches
    only the maintenance command and the Retry-After of the rendered config."""
    plain, _ = run_program(config())
    monitor, _ = run_program(config(maintenance=json.dumps({"enabled": enabled, "retryAfterSeconds": 300})))
    command = monitor.registrations["router-maintenance"].inputs["create"]
    assert shlex.split(command)[-2:] == ["maintenance", "on" if enabled else "off"]
    for name, resource in monitor.registrations.items():
        if name != "router-maintenance":
            assert resource.inputs == plain.registrations[name].inputs, f"{name} changed with maintenance"


def test_the_metrics_exporter_is_installed_from_the_repo_and_restarted_with_a_new_router():
    monitor, _ = run_program(config())
    metrics = monitor.registrations["router-metrics"].inputs
    assert metrics["stdin"] == METRICS_EXPORTER.read_text()
    assert shlex.split(metrics["create"])[:4] == ["docker", "exec", "-i", "medusa-router"]
    assert metrics["triggers"] == ["router-id"]


def test_no_analysis_unless_a_window_is_set():
    monitor, outputs = run_program(config())
    assert "post-flip-analysis" not in monitor.registrations
    assert "postFlipAnalysis" not in outputs


def test_the_analysis_runs_after_the_post_switch_check_and_before_the_target_worker_with_the_flips_undo():
    window = json.dumps({"windowSeconds": 30, "maxErrorRatio": 0.1})
    monitor, outputs = run_program({**two_colors("green"), "analysis": window})
    analysis = monitor.registrations["post-flip-analysis"]
    assert analysis.inputs["color"] == "green" and analysis.inputs["window_seconds"] == 30
    assert analysis.inputs["max_error_ratio"] == 0.1 and analysis.inputs["via_router"] == "medusa-router"
    assert analysis.inputs["triggers"] == ["live-route-id"]
    assert analysis.inputs["rollback"] == monitor.registrations["post-switch-check"].inputs["rollback"]
    assert analysis.inputs["rollback"]["argv"][-2:] == ["live", "blue"]
    assert monitor.depends_on("post-flip-analysis", "post-switch-check")
    assert monitor.depends_on("green-worker", "post-flip-analysis")
    assert "postFlipAnalysis" in outputs


def test_a_canary_step_keeps_the_live_route_and_the_worker_on_the_other_color():
    monitor, outputs = run_program({**two_colors("green"), "canary": json.dumps({"weight": 10})})
    commands = monitor.registrations
    assert shlex.split(commands["live-route"].inputs["create"])[-2:] == ["live", "blue"]
    assert shlex.split(commands["preview-route"].inputs["create"])[-2:] == ["preview", "green"]
    assert shlex.split(commands["router-canary"].inputs["create"])[-2:] == ["canary", "10"]
    assert commands["post-switch-check"].inputs["color"] == "blue"
    containers = names_of_type(monitor, "docker:index/container:Container")
    assert "blue-worker" in containers and "green-worker" not in containers
    assert monitor.depends_on("router-canary", "post-switch-check")
    assert outputs["liveColor"] == "blue"
    assert outputs["canary"] == {"color": "green", "weight": 10}


def test_a_canary_steps_analysis_undoes_the_share_not_a_flip():
    steps = {"canary": json.dumps({"weight": 50}), "analysis": json.dumps({"windowSeconds": 30})}
    config = {**two_colors("green"), **steps}
    monitor, _ = run_program(config)
    analysis = monitor.registrations["post-flip-analysis"].inputs
    assert analysis["color"] == "green"
    assert analysis["rollback"]["argv"][-2:] == ["canary", "0"]
    assert analysis["triggers"] == ["router-canary-id"]


def test_a_full_release_clears_any_canary_after_the_flip():
    monitor, outputs = run_program(two_colors("green"))
    canary = monitor.registrations["router-canary"].inputs
    assert shlex.split(canary["create"])[-2:] == ["canary", "0"]
    assert monitor.depends_on("router-canary", "post-switch-check")
    assert monitor.depends_on("green-worker", "router-canary")
    assert "canary" not in outputs


def _with_replicas(active: str, replicas: int) -> dict[str, str]:
    medusa = {**json.loads(two_colors(active)["medusa"]), "serverReplicas": replicas}
    return {**two_colors(active), "medusa": json.dumps(medusa)}


def test_replicas_are_each_gated_before_the_flip():
    monitor, _ = run_program(_with_replicas("green", 3))
    containers = names_of_type(monitor, "docker:index/container:Container")
    for color in ("blue", "green"):
        assert {f"{color}-server", f"{color}-server-2", f"{color}-server-3"} <= set(containers)
        assert f"{color}-server-4" not in containers
    assert "green-worker" in containers and "green-worker-2" not in containers, "one worker per color (rule 7)"
    extra = monitor.registrations["green-server-2"].inputs
    assert extra["name"] == "medusa-green-server-2"
    assert extra["networksAdvanced"][0]["aliases"] == ["medusa-green-server"], "the router finds it by the shared name"
    for replica, server in ((1, "green-server"), (2, "green-server-2"), (3, "green-server-3")):
        gate = f"green-server-{replica}-gate"
        inputs = monitor.registrations[gate].inputs
        assert inputs["url"] == f"http://medusa-{server}:9000/health"
        assert inputs["via_router"] == "medusa-router" and inputs["expect_color_header"] is False
        assert monitor.depends_on(gate, server) and monitor.depends_on(gate, "preview-route")
        assert monitor.depends_on("green-health-gate", gate), f"the route's gate waits for {gate}"
    assert monitor.depends_on("live-route", "green-health-gate")
    # The warm color's extra replicas wait for the flip like its first one.
    assert monitor.depends_on("blue-server-2", "post-switch-check")
    assert "blue-server-1-gate" not in monitor.registrations


def test_one_replica_is_the_single_server_of_before():
    single, _ = run_program(two_colors("green"))
    one, _ = run_program(_with_replicas("green", 1))
    assert set(one.registrations) == set(single.registrations)
    assert not any(name.endswith("-gate") and "server" in name for name in one.registrations)
    for name in ("green-server", "blue-server"):
        assert one.registrations[name].inputs == single.registrations[name].inputs, name
    # Adding replicas recreates nothing that was there (rule 7b).
    more, _ = run_program(_with_replicas("green", 2))
    for name in ("green-server", "blue-server", "green-health-gate", "router", "router-config"):
        assert more.registrations[name].inputs == single.registrations[name].inputs, name


def test_every_check_passes_before_the_flip():
    gate = {"checks": [{"path": "/app"}, {"path": "/store/products", "expectStatus": 400}]}
    monitor, _ = run_program({**two_colors("green"), "healthGate": json.dumps(gate)})
    for number, path in ((1, "/app"), (2, "/store/products")):
        check = monitor.registrations[f"green-health-check-{number}"]
        assert check.inputs["url"].endswith(path)
        assert monitor.depends_on(f"green-health-check-{number}", "green-health-gate")
        assert monitor.depends_on("live-route", f"green-health-check-{number}")
    assert monitor.registrations["green-health-check-2"].inputs["expect_status"] == 400
    plain, _ = run_program(two_colors("green"))
    assert not any("health-check" in name for name in plain.registrations)


def test_the_other_colors_worker_stops_before_the_targets_starts():
    monitor, _ = run_program(two_colors("green"))
    handover = monitor.registrations["green-worker-handover"].inputs
    script = shlex.split(handover["create"])
    assert script[:2] == ["if", "docker"] and "medusa-blue-worker" in handover["create"]
    assert "docker stop --time 30 medusa-blue-worker" in handover["create"]  # medusa.stopTimeoutSeconds
    assert handover["triggers"] == [fake_digest("registry.example.com/shop/medusa:1.1.0")]
    assert monitor.depends_on("green-worker", "green-worker-handover")
    # A canary step keeps the live color's worker and starts none on the target: nothing to hand over.
    canary, _ = run_program({**two_colors("green"), "canary": json.dumps({"weight": 10})})
    assert not any(name.endswith("-worker-handover") for name in canary.registrations)


def test_the_worker_check_runs_after_the_targets_worker_and_hands_back_before_the_flip_back():
    gate = {"workerCheck": {"path": "/ready/worker", "expectBody": "handled"}}
    monitor, outputs = run_program({**two_colors("green"), "healthGate": json.dumps(gate)})
    check = monitor.registrations["green-worker-check"].inputs
    assert check["url"].endswith("/ready/worker") and check["color"] == "green"
    assert check["expect_body"] == "handled" and check["via_router"] == "medusa-router"
    assert monitor.depends_on("green-worker-check", "green-worker")
    assert monitor.depends_on("image-prune", "green-worker-check")
    rollback = check["rollback"]
    assert rollback["argv"] == monitor.registrations["post-switch-check"].inputs["rollback"]["argv"]
    assert "guard" in rollback  # the flip back still goes only to code that knows the schema
    [hand_back] = rollback["before"]
    assert "docker stop --time 30 medusa-green-worker" in hand_back["argv"][2]
    assert "docker start medusa-blue-worker" in hand_back["argv"][2]
    assert "workerCheck" in outputs
    # Unset, or a canary step (the live color's worker stays, nothing started): no check.
    plain, _ = run_program(two_colors("green"))
    canary, _ = run_program({**two_colors("green"), "canary": json.dumps({"weight": 10}),
                             "healthGate": json.dumps(gate)})
    assert not any(name.endswith("worker-check") for name in [*plain.registrations, *canary.registrations])
