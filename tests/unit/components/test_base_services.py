"""The shared services' graph: services.hardened's network layout and Redis's user."""

import json
import shlex

from components.base_services import REDIS_BOOT, REDIS_BOOT_AS_REDIS
from core.component_inputs import hardening_advice
from core.meilisearch_keys import BACKEND_KEY, STOREFRONT_KEY, derive_key
from core.settings import load_settings
from tests.unit.configs import config
from tests.unit.mock_stack import run_program

HARDENED = json.dumps({"hardened": True})
DATA_SERVICES = ("postgres", "redis", "meilisearch")


def networks(monitor, name: str) -> dict[str, list[str]]:
    return {n["name"]: n.get("aliases", []) for n in monitor.registrations[name].inputs["networksAdvanced"]}


def test_hardened_data_services_are_on_an_internal_network_the_router_does_not_join():
    monitor, _ = run_program(config(services=HARDENED))
    data = monitor.registrations["data-network"].inputs
    assert data["name"] == "medusa-data" and data["internal"] is True
    assert networks(monitor, "postgres") == {"medusa-data": ["postgres"]}
    assert networks(monitor, "redis") == {"medusa-data": ["redis"]}
    # The router proxies Meilisearch's search endpoints: it stays on the shared network too.
    assert networks(monitor, "meilisearch") == {"medusa-data": ["meilisearch"], "medusa-net": ["meilisearch"]}
    assert set(networks(monitor, "router")) == {"medusa-net"}
    for role in ("server", "worker"):
        assert set(networks(monitor, f"blue-{role}")) == {"medusa-net", "medusa-data"}, role


def test_hardened_migration_joins_both_networks_and_still_exits_with_the_migrations_code():
    monitor, _ = run_program(config(services=HARDENED))
    line = monitor.registrations["blue-migrate"].inputs["create"]
    head, rest = line.split(" INT TERM; ", 1)
    assert shlex.split(head.split("; ", 1)[1]) == ["trap", "docker rm -f medusa-migrate >/dev/null 2>&1; exit 143"]
    created, connected, started = rest.rsplit(" && ", 2)
    assert shlex.split(created)[-1] == ">/dev/null"
    assert shlex.split(created)[:8] == ["docker", "create", "--rm", "--name", "medusa-migrate", "--network",
                                        "medusa-data", "-e"]
    assert shlex.split(connected) == ["docker", "network", "connect", "medusa-net", "medusa-migrate"]
    assert shlex.split(started) == ["exec", "docker", "start", "--attach", "medusa-migrate"]


def test_hardened_redis_starts_through_the_images_entrypoint_which_drops_root():
    monitor, _ = run_program(config(services=HARDENED))
    assert monitor.registrations["redis"].inputs["command"] == ["sh", "-c", REDIS_BOOT_AS_REDIS]
    assert "exec docker-entrypoint.sh redis-server " in REDIS_BOOT_AS_REDIS
    assert "chown redis /tmp/redis-auth.conf" in REDIS_BOOT_AS_REDIS


def test_without_hardened_nothing_a_running_stack_has_changes():
    # Existing stacks keep their containers on upgrade: the inputs are what they were.
    monitor, _ = run_program(config())
    assert "data-network" not in monitor.registrations
    assert monitor.registrations["redis"].inputs["command"] == ["sh", "-c", REDIS_BOOT]
    for name in DATA_SERVICES:
        assert set(networks(monitor, name)) == {"medusa-net"}, name
    assert " docker run --rm --name medusa-migrate --network medusa-net " in \
        monitor.registrations["blue-migrate"].inputs["create"]


def test_each_up_without_hardened_says_how_to_turn_it_on():
    advice = hardening_advice(load_settings(config()))
    assert advice is not None
    assert ("services.hardened is off, so the router can reach Postgres, Redis and Meilisearch, and Redis runs "
            "as root, and Medusa holds Meilisearch's master key.") in advice
    assert "`bin/bluegreen pulumi config set --path services.hardened true`" in advice
    assert hardening_advice(load_settings(config(services=HARDENED))) is None


MASTER = "generated-meilisearch-master-key-0123456789"  # what the mocks' RandomPassword returns


def medusa_env(monitor, name: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in monitor.registrations[name].inputs["envs"]["value"])


def test_the_keys_are_made_before_a_color_starts_and_hardened_medusa_gets_the_scoped_one():
    monitor, outputs = run_program(config(services=HARDENED))
    assert monitor.depends_on("meilisearch-keys", "meilisearch")
    assert monitor.depends_on("blue-migrate", "meilisearch-keys")
    assert medusa_env(monitor, "blue-server")["MEILISEARCH_API_KEY"] == derive_key(MASTER, BACKEND_KEY)
    assert outputs["storefrontSearchKey"] == derive_key(MASTER, STOREFRONT_KEY)
    assert MASTER not in monitor.registrations["meilisearch-keys"].inputs["create"]


def test_without_hardened_medusa_keeps_the_master_key_so_no_color_is_replaced_by_an_upgrade():
    monitor, outputs = run_program(config())
    assert medusa_env(monitor, "blue-server")["MEILISEARCH_API_KEY"] == MASTER
    assert outputs["storefrontSearchKey"] == derive_key(MASTER, STOREFRONT_KEY)
