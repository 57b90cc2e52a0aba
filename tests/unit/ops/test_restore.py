"""ops/restore.py: what is refused before anything runs in the Postgres container, and the order
of what runs (the pre-restore dump first, the restore only after it)."""

from __future__ import annotations

import io

import pytest

from ops import restore
from ops.environment import Target
from ops.pulumi_cli import OpsError, PulumiCli, Result
from tests.unit.ops.fakes import FakeDocker, FakePulumi, pulumi_config

TARGET = Target(stack="production")
BACKUP = "20261203T104001Z-green-shop-v2.dump"


def fake_with_backups(listing: str) -> tuple[FakePulumi, FakeDocker]:
    docker = FakeDocker()
    docker.replies[("exec", "shop-postgres", "sh", "-c")] = Result(0, listing, "")
    return FakePulumi(pulumi_config(activeColor="blue", prefix="shop"), docker=docker), docker


def run(fake: FakePulumi, name: str | None) -> tuple[int, str, str]:
    out, log = io.StringIO(), io.StringIO()
    code = restore.restore(fake, PulumiCli("production"), TARGET, name, out, log)
    return code, out.getvalue(), log.getvalue()


def test_list_prints_the_backups_newest_first_and_restores_nothing() -> None:
    fake, docker = fake_with_backups(f"{BACKUP} 2500000\n20261201T000000Z-blue-shop-v1.dump 1000\n")
    code, out, _ = run(fake, None)
    assert code == 0
    assert out.splitlines() == [
        "backups of stack production, newest first:",
        f"  {BACKUP}  2.5 MB",
        "  20261201T000000Z-blue-shop-v1.dump  0.0 MB",
    ]
    assert len(docker.hosts) == 1  # only the listing ran


@pytest.mark.parametrize("name, says", [
    ("../../etc/passwd", "is not a backup name"),
    ("20261203T104001Z-x;rm -rf.dump", "is not a backup name"),
    ("20261203T104001Z-blue-other.dump", "has no backup 20261203T104001Z-blue-other.dump"),
])
def test_a_name_that_is_not_one_of_the_backups_is_refused_before_anything_runs(name: str, says: str) -> None:
    fake, docker = fake_with_backups(f"{BACKUP} 2500000\n")
    with pytest.raises(OpsError, match="bin/bluegreen --stack production restore --list") as refused:
        run(fake, name)
    assert says in str(refused.value)
    assert len(docker.hosts) == 1


def test_an_external_database_is_not_ours_to_restore() -> None:
    fake = FakePulumi(pulumi_config(activeColor="blue", database={"mode": "external"}))
    with pytest.raises(OpsError, match="external database"):
        run(fake, BACKUP)


def test_a_failed_pre_restore_dump_stops_before_the_restore() -> None:
    fake, docker = fake_with_backups(f"{BACKUP} 2500000\n")
    calls: list[str] = []

    def reply(argv: list[str]) -> Result:
        script = argv[-1]
        calls.append("list" if "ls -1" in script and "pg_dump" not in script else
                     "dump" if "pg_dump" in script else "restore")
        if calls[-1] == "list":
            return Result(0, f"{BACKUP} 2500000\n", "")
        return Result(1, "", "No space left on device")

    docker.run = lambda argv: reply(argv)  # type: ignore[method-assign]
    code, _, log = run(fake, BACKUP)
    assert code == 1 and calls == ["list", "dump"]
    assert "the pre-restore backup failed, nothing was restored: No space left on device" in log
