"""scripts/recover.py: which locks it may release and which containers it may remove."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import recover  # noqa: E402


def lock(pid: int | None, hostname: str) -> recover.Lock:
    return recover.Lock(Path("lock.json"), pid, hostname)


def test_a_lock_of_a_process_that_is_gone_may_be_released():
    assert recover.lock_verdict(lock(4242, "vm"), "vm", alive=lambda pid: False, unlock=False) is None


def test_a_lock_of_a_live_process_here_is_never_released_even_with_unlock():
    why = recover.lock_verdict(lock(4242, "vm"), "vm", alive=lambda pid: True, unlock=True)
    assert why is not None and "4242" in why and "still running" in why


def test_a_lock_from_another_machine_needs_unlock():
    why = recover.lock_verdict(lock(1, "ci-runner-7"), "vm", alive=lambda pid: True, unlock=False)
    assert why is not None and "'ci-runner-7'" in why and "--unlock" in why
    assert recover.lock_verdict(lock(1, "ci-runner-7"), "vm", alive=lambda pid: True, unlock=True) is None


def test_locks_are_read_from_the_file_backend_as_pulumi_writes_them(tmp_path: Path):
    # The layout and content of a lock left by a SIGKILLed `pulumi up` (CLI 3.259.0).
    folder = tmp_path / ".pulumi/locks/organization/medusa-bluegreen/production"
    folder.mkdir(parents=True)
    (folder / "1d36.json").write_text(json.dumps(
        {"pid": 28595, "username": "root", "hostname": "vm", "timestamp": "2026-12-01T20:29:31Z"}))
    (folder / "1d36.json.attrs").write_text("{}")
    other = tmp_path / ".pulumi/locks/organization/another-project/production"
    other.mkdir(parents=True)
    (other / "9.json").write_text("{}")
    assert recover.read_locks(tmp_path, "production") == [recover.Lock(folder / "1d36.json", 28595, "vm")]
    assert recover.read_locks(tmp_path, "staging") == []


def test_file_backend_url_to_directory():
    assert recover.file_backend_dir("file:///srv/state") == Path("/srv/state")
    assert recover.file_backend_dir("s3://bucket/state") is None


def test_only_the_stacks_own_containers_missing_from_the_state_are_orphans():
    existing = {
        "shop-green-server": "c-new",  # created by the killed run, never recorded
        "shop-blue-server": "c-live",  # in the state: the live color, never touched
        "shop-migrate": "c-mig",  # a migration the killed run left running
        "shop-postgres": "c-pg",
        "shop-tools": "c-own",  # not a name the program gives: not ours to remove
    }
    state = {"deployment": {"resources": [
        {"type": recover.CONTAINER_TYPE, "id": "c-live"},
        {"type": recover.CONTAINER_TYPE, "id": "c-pg"},
        {"type": "docker:index/volume:Volume", "id": "c-new"},
    ]}}
    in_state = recover.state_container_ids(state)
    assert recover.orphans(existing, in_state, "shop") == ["shop-green-server", "shop-migrate"]


def test_pending_operations_are_counted_from_the_export():
    assert recover.pending_operations({"deployment": {"pending_operations": [{"type": "creating"}] * 2}}) == 2
    assert recover.pending_operations({"deployment": {}}) == 0
