"""What the preview guard refuses: a planned replace or delete of the router, the network or a
data service (Postgres, Redis, Meilisearch: their containers and volumes). Rules 1 and 3 of
docs/rules.md, checked on the engine's plan instead of on the program's code.

Pure (no Pulumi, no I/O; tests/unit/policy/test_guard.py). The policy pack (__main__.py) feeds it
the deployed state (`pulumi stack export`) and the planned one: the resources a stack policy sees at
the end of a preview. A stack policy sees no step operations, but it does see each resource's
planned outputs, and those give the operation away: a resource the engine keeps or updates in
place keeps its `id`; one it creates (a replacement too) has no `id` yet, an unknown in a
preview; one it deletes is missing. So: deployed id == planned id is fine, anything else is a
replace or a delete of something the stack already runs. A resource that was never deployed
(the first `pulumi up`, Meilisearch just enabled) may be created.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

POLICY_NAME = "no-replace-or-delete-of-router-network-or-data"

# The components whose Docker resources are guarded, and what to call them in a message.
GUARDED_PARENTS = {
    "medusa-bluegreen:index:Router": "the router",
    "medusa-bluegreen:index:BaseServices": "a shared service",
}
GUARDED_TYPES = {
    "docker:index/container:Container": "container",
    "docker:index/network:Network": "network",
    "docker:index/volume:Volume": "volume",
}


@dataclass(frozen=True)
class Deployed:
    urn: str
    id: str
    docker_name: str = ""


@dataclass(frozen=True)
class Planned:
    urn: str
    id: str | None  # None: not known yet (in a preview: the engine plans a new physical resource)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    urn: str
    message: str


def parse_urn(urn: str) -> tuple[str, str, list[str], str]:
    """`urn:pulumi:STACK::PROJECT::PARENT$...$TYPE::NAME` -> (stack, project, type chain, name)."""
    parts = urn.split("::", 3)
    if len(parts) != 4 or not parts[0].startswith("urn:pulumi:"):
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return parts[0][len("urn:pulumi:"):], parts[1], parts[2].split("$"), parts[3]


def stack_of(urns: Iterable[str]) -> str | None:
    for urn in urns:
        return parse_urn(urn)[0]
    return None


def guarded(urn: str) -> bool:
    _, _, chain, _ = parse_urn(urn)
    return len(chain) >= 2 and chain[-1] in GUARDED_TYPES and chain[-2] in GUARDED_PARENTS


def describe(urn: str, docker_name: str = "") -> str:
    _, _, chain, name = parse_urn(urn)
    owner = GUARDED_PARENTS.get(chain[-2], "a resource") if len(chain) > 1 else "a resource"
    what = f"{owner}'s {GUARDED_TYPES.get(chain[-1], 'resource')}"
    return f"{what} {name!r}" + (f" (docker name {docker_name})" if docker_name and docker_name != name else "")


def short(resource_id: str) -> str:
    """A Docker object id as `docker ps` shows it; volume ids are their names and stay whole."""
    return resource_id[:12] if re.fullmatch(r"[0-9a-f]{64}", resource_id) else resource_id


def deployed_from_export(export: Mapping[str, Any]) -> list[Deployed]:
    """The guarded resources of a `pulumi stack export` (version 3), skipping leftovers that the
    engine already marked for deletion (`delete: true`, from an interrupted replace)."""
    deployment = export.get("deployment") or {}
    found = []
    for resource in deployment.get("resources") or []:
        urn, resource_id = resource.get("urn", ""), resource.get("id", "")
        if not resource.get("custom") or not resource_id or resource.get("delete") or not guarded(urn):
            continue
        name = (resource.get("outputs") or {}).get("name", "")
        found.append(Deployed(urn, resource_id, name if isinstance(name, str) else ""))
    return found


def violations(deployed: Sequence[Deployed], planned: Sequence[Planned]) -> list[Violation]:
    """One violation per deployed guarded resource that the plan replaces or deletes."""
    by_urn: dict[str, Planned] = {}
    for resource in planned:
        by_urn[resource.urn] = resource
        for alias in resource.aliases:
            by_urn.setdefault(alias, resource)
    planned_ids = {(parse_urn(p.urn)[2][-1], p.id) for p in planned if p.id}
    found = []
    for old in deployed:
        new = by_urn.get(old.urn)
        what = describe(old.urn, old.docker_name)
        if new is None:
            if (parse_urn(old.urn)[2][-1], old.id) in planned_ids:
                continue  # the same Docker object under another URN: a rename with an alias, not a delete
            found.append(Violation(old.urn, f"the plan deletes {what}, id {short(old.id)}"))
        elif new.id != old.id:
            found.append(Violation(
                old.urn,
                f"the plan replaces {what}: the deployed id {short(old.id)} is not kept "
                f"({'a new one is created' if new.id is None else f'planned id {short(new.id)}'}); "
                "a change of one of its inputs (ports, image, volumes, network, name) recreates it",
            ))
    return found
