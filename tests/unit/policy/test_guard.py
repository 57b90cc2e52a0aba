"""The preview guard's decision (policy/guard.py): deployed state + planned state -> violations.

The URNs and the export are the shapes the real engine produces (tests/e2e/test_policy.py runs
the policy pack itself on a real stack).
"""

from __future__ import annotations

from typing import Any

import pytest

from policy.guard import (
    Deployed,
    Planned,
    deployed_from_export,
    guarded,
    parse_urn,
    short,
    stack_of,
    violations,
)

STACK = "urn:pulumi:production::medusa-bluegreen::"
ROUTER = STACK + "medusa-bluegreen:index:Router$docker:index/container:Container::router"
ROUTER_VOLUME = STACK + "medusa-bluegreen:index:Router$docker:index/volume:Volume::router-config-volume"
NETWORK = STACK + "medusa-bluegreen:index:BaseServices$docker:index/network:Network::network"
POSTGRES = STACK + "medusa-bluegreen:index:BaseServices$docker:index/container:Container::postgres"
PGDATA = STACK + "medusa-bluegreen:index:BaseServices$docker:index/volume:Volume::postgres-volume"
REDIS = STACK + "medusa-bluegreen:index:BaseServices$docker:index/container:Container::redis"
MEILI = STACK + "medusa-bluegreen:index:BaseServices$docker:index/container:Container::meilisearch"
BLUE_SERVER = STACK + "medusa-bluegreen:index:ColorStack$docker:index/container:Container::blue-server"
ROUTER_IMAGE = STACK + "medusa-bluegreen:index:Router$docker:index/remoteImage:RemoteImage::router-image"
ROUTER_CONFIG = STACK + "medusa-bluegreen:index:Router$command:local:Command::router-config"
ROOT = STACK + "pulumi:pulumi:Stack::medusa-bluegreen-production"

ROUTER_ID = "2b71b81863fe0ae822399fdb8681cebd37455f17b6c3a7b43b1fa6d66c70ba72"
NETWORK_ID = "9b57166c3ebe495402740a633419ab05dd8a565246ffa080e64633bd9ef8ae49"
POSTGRES_ID = "36ed1173e4e346ad61ccdb834757e6d0ae0fa87dcd620a265af7d889f6a94848"
REDIS_ID = "4df3cf98f509f3a8191e9eebf36cee6d0001542b79d772f197b18e986bd1be48"

DEPLOYED = [
    Deployed(ROUTER, ROUTER_ID, "medusa-router"),
    Deployed(ROUTER_VOLUME, "medusa-router-config", "medusa-router-config"),
    Deployed(NETWORK, NETWORK_ID, "medusa-net"),
    Deployed(POSTGRES, POSTGRES_ID, "medusa-postgres"),
    Deployed(PGDATA, "medusa-pgdata", "medusa-pgdata"),
    Deployed(REDIS, REDIS_ID, "medusa-redis"),
]


def plan(changes: dict[str, str | None] | None = None, drop: tuple[str, ...] = ()) -> list[Planned]:
    """The plan of a release: every guarded resource kept (same id), a color recreated (not
    guarded), then `changes` (URN -> planned id, None = unknown: created anew) and `drop`ped URNs."""
    planned = {d.urn: Planned(d.urn, d.id) for d in DEPLOYED}
    planned[BLUE_SERVER] = Planned(BLUE_SERVER, None)
    planned[ROOT] = Planned(ROOT, None)
    for urn, new_id in (changes or {}).items():
        planned[urn] = Planned(urn, new_id)
    return [p for urn, p in planned.items() if urn not in drop]


def test_what_is_guarded() -> None:
    assert all(guarded(urn) for urn in (ROUTER, ROUTER_VOLUME, NETWORK, POSTGRES, PGDATA, REDIS, MEILI))
    assert not any(guarded(urn) for urn in (BLUE_SERVER, ROUTER_IMAGE, ROUTER_CONFIG, ROOT))


def test_a_release_or_an_in_place_update_passes() -> None:
    assert violations(DEPLOYED, plan()) == []


def test_a_replaced_router_is_refused_and_named() -> None:
    found = violations(DEPLOYED, plan({ROUTER: None}))
    assert [v.urn for v in found] == [ROUTER]
    assert "replaces the router's container 'router' (docker name medusa-router)" in found[0].message
    assert "2b71b81863fe" in found[0].message


@pytest.mark.parametrize("urn", [NETWORK, POSTGRES, PGDATA, REDIS, ROUTER_VOLUME])
def test_a_replaced_network_data_service_or_volume_is_refused(urn: str) -> None:
    found = violations(DEPLOYED, plan({urn: None}))
    assert [v.urn for v in found] == [urn]
    assert "the plan replaces" in found[0].message


def test_a_known_but_different_id_is_a_replace_too() -> None:
    found = violations(DEPLOYED, plan({POSTGRES: "f" * 64}))
    assert [v.urn for v in found] == [POSTGRES]
    assert "planned id ffffffffffff" in found[0].message


def test_a_deleted_data_service_is_refused() -> None:
    found = violations(DEPLOYED, plan(drop=(REDIS,)))
    assert [v.urn for v in found] == [REDIS]
    assert found[0].message == (
        "the plan deletes a shared service's container 'redis' (docker name medusa-redis), id 4df3cf98f509"
    )


def test_a_volume_id_is_its_name_and_stays_whole() -> None:
    found = violations(DEPLOYED, plan(drop=(PGDATA,)))
    assert found[0].message.endswith("id medusa-pgdata")
    assert short(ROUTER_ID) == "2b71b81863fe"


def test_every_replace_and_delete_is_reported_at_once() -> None:
    planned = plan({NETWORK: None, ROUTER: None, POSTGRES: None}, drop=(PGDATA,))
    assert {v.urn for v in violations(DEPLOYED, planned)} == {NETWORK, ROUTER, POSTGRES, PGDATA}


def test_a_rename_that_keeps_the_docker_object_is_not_a_delete() -> None:
    renamed = STACK + "medusa-bluegreen:index:Router$docker:index/container:Container::nginx"
    planned = plan(drop=(ROUTER,))
    assert violations(DEPLOYED, [*planned, Planned(renamed, ROUTER_ID)]) == []
    assert violations(DEPLOYED, [*planned, Planned(renamed, None, aliases=(ROUTER,))])[0].urn == ROUTER
    assert len(violations(DEPLOYED, [*planned, Planned(renamed, None)])) == 1  # no alias, new object: a delete


def test_nothing_deployed_yet_allows_every_create() -> None:
    assert violations([], [Planned(d.urn, None) for d in DEPLOYED]) == []
    meilisearch_enabled = plan({MEILI: None})
    assert violations(DEPLOYED, meilisearch_enabled) == []


def export(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "deployment": {"manifest": {}, "resources": list(resources)}}


def test_deployed_from_export_keeps_guarded_custom_resources_only() -> None:
    state = export(
        {"urn": ROOT, "type": "pulumi:pulumi:Stack", "custom": False, "outputs": {}},
        {"urn": ROUTER, "custom": True, "id": ROUTER_ID, "outputs": {"name": "medusa-router", "id": ROUTER_ID}},
        {"urn": BLUE_SERVER, "custom": True, "id": "ab" * 32, "outputs": {"name": "medusa-blue-server"}},
        {"urn": PGDATA, "custom": True, "id": "medusa-pgdata", "retainOnDelete": True,
         "outputs": {"name": "medusa-pgdata"}},
        # what an interrupted replace leaves: the old copy, marked for deletion
        {"urn": POSTGRES, "custom": True, "id": "cd" * 32, "delete": True, "outputs": {}},
        {"urn": POSTGRES, "custom": True, "id": POSTGRES_ID, "outputs": {}},
    )
    assert deployed_from_export(state) == [
        Deployed(ROUTER, ROUTER_ID, "medusa-router"),
        Deployed(PGDATA, "medusa-pgdata", "medusa-pgdata"),
        Deployed(POSTGRES, POSTGRES_ID, ""),
    ]


def test_an_empty_or_new_stack_exports_nothing() -> None:
    assert deployed_from_export({"version": 3, "deployment": {}}) == []
    assert deployed_from_export({}) == []


def test_urns() -> None:
    assert parse_urn(ROUTER) == (
        "production", "medusa-bluegreen",
        ["medusa-bluegreen:index:Router", "docker:index/container:Container"], "router",
    )
    assert stack_of([ROOT, ROUTER]) == "production"
    assert stack_of([]) is None
    with pytest.raises(ValueError, match="not a Pulumi URN"):
        parse_urn("router")
