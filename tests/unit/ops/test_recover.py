"""ops/recover.py: which locks it may release and which containers it may remove, and the steps
in order against a fake `pulumi` and `docker`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ops import recover
from ops.pulumi_cli import Result
from tests.unit.ops.fakes import FakePulumi, pulumi_config


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
        "shop-green-server-2": "c-new-2",  # its second replica (rule 7b)
        "shop-green-server-9": "c-nine",  # beyond the most replicas there can be: not a name we give
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
    assert recover.orphans(existing, in_state, "shop") == ["shop-green-server", "shop-green-server-2", "shop-migrate"]


def test_pending_operations_are_counted_from_the_export():
    assert recover.pending_operations({"deployment": {"pending_operations": [{"type": "creating"}] * 2}}) == 2
    assert recover.pending_operations({"deployment": {}}) == 0


class FakeRecover(FakePulumi):
    """Adds the commands only recover runs: whoami, cancel, export, refresh, preview."""

    def __init__(self, backend: Path, state: dict[str, object], **kwargs: object) -> None:
        super().__init__(pulumi_config(activeColor="blue", prefix="shop", dockerHost="ssh://deploy@vps"),
                         **kwargs)  # type: ignore[arg-type]
        self.backend = backend
        self.state = state
        self.docker.replies[("ps", "--all")] = Result(0, "shop-green-server c-new\nshop-blue-server c-live\n")
        self.docker.replies[("rm", "--force")] = Result(0, "")

    def run(self, command: recover.Command) -> Result:
        argv = command.argv
        if argv[0] == "pulumi" and argv[1] == "whoami":
            self.commands.append(command)
            return Result(0, json.dumps({"user": "root", "url": f"file://{self.backend}"}))
        if (argv[0] == "pulumi" and argv[1] in ("cancel", "refresh", "preview")) or argv[1:3] == ("stack", "export"):
            self.commands.append(command)
            return Result(0, json.dumps(self.state) if argv[1] == "stack" else "")
        return super().run(command)


def test_recover_runs_its_steps_in_order_and_removes_only_orphans(tmp_path: Path) -> None:
    state = {"deployment": {"resources": [{"type": recover.CONTAINER_TYPE, "id": "c-live"}]}}
    fake = FakeRecover(tmp_path, state)
    log = io.StringIO()
    cli = recover.RecoverCli("production")
    assert recover.recover(fake, cli, unlock=False, log=log) == 0
    assert fake.subcommands() == ["whoami --output", "config --json", "stack export", "--host ssh://deploy@vps",
                                  "--host ssh://deploy@vps", "up --yes", "preview --expect-no-changes"]
    rm = next(c for c in fake.commands if "rm" in c.argv)
    assert rm.argv == ("docker", "--host", "ssh://deploy@vps", "rm", "--force", "shop-green-server")
    up = next(c for c in fake.commands if c.argv[1] == "up")
    assert "--refresh" in up.argv, "no pending operations: up refreshes"
    assert "stack production is clean: pulumi preview shows no changes" in log.getvalue()


def test_a_failed_step_exits_1_and_a_held_lock_exits_2(tmp_path: Path) -> None:
    fake = FakeRecover(tmp_path, {"deployment": {}}, up=FakePulumi.fail)
    with pytest.raises(recover.StepFailedError) as failed:
        recover.recover(fake, recover.RecoverCli("production"), unlock=False, log=io.StringIO())
    assert failed.value.exit_code == 1 and "pulumi up failed" in str(failed.value)
    folder = tmp_path / ".pulumi/locks/organization/medusa-bluegreen/production"
    folder.mkdir(parents=True)
    (folder / "1.json").write_text(json.dumps({"pid": 1, "hostname": "ci-runner-7"}))
    with pytest.raises(recover.LockHeldError) as held:
        recover.recover(FakeRecover(tmp_path, {}), recover.RecoverCli("production"), unlock=False, log=io.StringIO())
    assert held.value.exit_code == 2 and "--unlock" in str(held.value)
