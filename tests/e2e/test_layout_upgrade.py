"""A stack created by the program before the layout change upgrades to today's code in one
`pulumi up` that replaces and deletes nothing, and then previews no change.

The old program is commit OLD_LAYOUT (main before the move to core/, components/, providers/),
taken from this repository's history. Real engine, real dockerd: the resource names and type
tokens must all have survived the move (else the preview would replace them), and the state's
pickled health-gate provider must still load (`pulumi refresh` unpickles it from its old module
path). Behaviour changed since (the gate's in-router probe, rule 6b) may update resources in
place: the router config and the gates.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import measure
from tests.e2e.project import (
    PROJECT_FILES,
    REPO,
    PulumiStack,
    container_id,
    copy_program,
    destroy_with_data,
    local_stack_config,
    program_at,
    remove_leftovers,
)

OLD_LAYOUT = "d53ae79"
OLD_FILES = ["Pulumi.yaml", "__main__.py", "requirements.txt", "components", "nginx"]
PREFIX = "e2eupg"
CONFIG: dict[str, Any] = local_stack_config(
    PREFIX, 26080, 27080, hardened=False,  # a stack of the old layout, made before services.hardened
    activeColor="green",
    blueImage="medusa-bg/testapp:v1",
    greenImage="medusa-bg/testapp:v2",
    healthGate={"deadlineSeconds": 30, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 3},
    medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5, "env": {"SHOP_MODE": "test"}},
)


@pytest.fixture(scope="module")
def old_stack(engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    base = tmp_path_factory.mktemp("upgrade")
    workdir = base / "stack"
    workdir.mkdir()
    old = program_at(OLD_LAYOUT, OLD_FILES, base / "old")
    stack = PulumiStack(workdir, engine, stack="upgrade", source=old, files=OLD_FILES)
    stack.set_config({**CONFIG, "dockerHost": engine["DOCKER_HOST"]})
    stack.run("config", "set", "--secret", "previewToken", "an-upgrade-preview-token")
    yield stack
    destroy_with_data(stack, PREFIX)


# Operations that would mean an upgrade touches what it must not (docs/rules.md, rules 1 and 10c).
DESTRUCTIVE = {"replace", "create-replacement", "delete-replaced", "delete", "discard"}


def test_a_stack_from_the_old_layout_upgrades_in_place_and_then_previews_no_change(old_stack: PulumiStack) -> None:
    created = old_stack.up()
    measure(f"layout upgrade: the old program's first pulumi up {created.seconds:.1f}s")
    router = container_id(f"{PREFIX}-router")
    for name in OLD_FILES:
        target = old_stack.workdir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    copy_program(REPO, old_stack.workdir, PROJECT_FILES)

    preview = old_stack.run("preview", "--json", check=False)
    assert preview.returncode == 0, preview.output[-6000:]
    steps = json.loads(preview.stdout).get("steps", [])
    destructive = [(step["op"], step["urn"].rsplit("::", 1)[-1]) for step in steps if step["op"] in DESTRUCTIVE]
    assert destructive == [], f"the new code would replace or delete: {destructive}"
    upgraded = old_stack.up()
    assert container_id(f"{PREFIX}-router") == router, "the upgrade recreated the router"

    again = old_stack.run("preview", "--expect-no-changes", "--diff", check=False)
    assert again.returncode == 0, f"the upgraded stack still changes:\n{again.output[-6000:]}"
    refreshed = old_stack.run("refresh", "--yes", "--expect-no-changes", check=False)
    assert refreshed.returncode == 0, f"refresh of the upgraded stack:\n{refreshed.output[-6000:]}"
    measure(
        f"layout upgrade: preview {preview.seconds:.1f}s, up {upgraded.seconds:.1f}s, "
        f"preview again {again.seconds:.1f}s, refresh {refreshed.seconds:.1f}s"
    )
