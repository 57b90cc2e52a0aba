"""Release steps (build, backup, migrate): once per image, bounded in time, nothing left behind."""

import json
import shlex
import subprocess
from pathlib import Path

from components.release import KEEP_PREVIOUS_OUTPUT
from core.docker_cli import backup_database, prune_backups, run_migrations
from tests.unit.configs import config, two_colors
from tests.unit.mock_stack import plain_strings, run_program


def test_migration_container_has_one_name_and_a_leftover_is_removed_first():
    line = run_migrations(
        "shop-migrate", "shop-net", "sha256:abc", ["REDIS_URL", "DATABASE_URL"], ["npx", "medusa", "db:migrate"]
    )
    remove, run = line.split("; exec ")
    assert shlex.split(remove.split(" >/dev/null")[0]) == ["docker", "rm", "-f", "shop-migrate"]
    assert shlex.split(run) == [
        "docker", "run", "--rm", "--name", "shop-migrate", "--network", "shop-net",
        "-e", "DATABASE_URL", "-e", "REDIS_URL", "sha256:abc", "npx", "medusa", "db:migrate",
    ]


def test_both_colors_migrate_under_the_same_container_name():
    monitor, _ = run_program(two_colors("green"))
    lines = [monitor.registrations[f"{color}-migrate"].inputs["create"] for color in ("blue", "green")]
    assert all("--name medusa-migrate " in line for line in lines), lines


def test_a_backup_counts_only_once_read_back_and_a_failed_one_names_itself():
    script = shlex.split(backup_database("shop-postgres", "blue", "shop:1.2", keep=3))[-1]
    dump, verify, done = script.index("pg_dump -h"), script.index('pg_restore --file=/dev/null "$file"'), \
        script.index('echo "backup=$name"')
    assert dump < verify < done
    failure = script[script.index('rm -f "$file"'):]
    assert 'echo "backup $name failed: $why; free space on the backups volume: $free;' in failure
    assert "the release stopped before its migration" in failure and failure.endswith("exit 1")


def test_only_a_dump_that_counts_prunes_and_the_newest_keep_stay(tmp_path: Path):
    script = shlex.split(backup_database("shop-postgres", "blue", "shop:1.2", keep=3))[-1]
    assert script.index('echo "backup=$name"') < script.index("pruned=") < script.index('rm -f "$file"'), \
        "pruning belongs to the success branch only"
    dumps = [f"2026120{day}T101500Z-blue-shop-1.{day}.dump" for day in range(1, 7)]
    others = ["notes.txt", "manual.dump", "20261201T101500Z-blue-shop-1.1.dump.partial"]
    for name in dumps + others:
        (tmp_path / name).write_text("x")
    done = subprocess.run(["sh", "-c", prune_backups(str(tmp_path), 3)], capture_output=True, text=True,
                          timeout=30, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(dumps[-3:] + others)
    assert sorted(done.stdout.split()) == sorted(f"pruned={name}" for name in dumps[:3])


def test_backups_keep_reaches_the_backup_step():
    monitor, _ = run_program({**config(), "backups": '{"keep": 4}'})
    assert "| tail -n +5 |" in monitor.registrations["blue-backup"].inputs["create"]


def test_release_steps_only_run_on_create_and_carry_their_output_on_update():
    monitor, _ = run_program(config())
    for name in ("blue-backup", "blue-migrate"):
        assert monitor.registrations[name].inputs["update"] == KEEP_PREVIOUS_OUTPUT, name


def test_long_steps_carry_timeouts_from_settings():
    raw = {**config(), "timeouts": '{"backupSeconds": 60, "migrateSeconds": 120}'}
    monitor, _ = run_program(raw)
    assert monitor.registrations["blue-backup"].custom_timeouts == {"create": "60s", "update": "60s"}
    assert monitor.registrations["blue-migrate"].custom_timeouts == {"create": "120s", "update": "120s"}


def test_default_timeouts_are_generous_but_finite():
    monitor, _ = run_program(config())
    assert monitor.registrations["blue-backup"].custom_timeouts == {"create": "1800s", "update": "1800s"}
    assert monitor.registrations["blue-migrate"].custom_timeouts == {"create": "900s", "update": "900s"}


def test_when_both_colors_change_their_migrations_run_one_after_the_other():
    monitor, _ = run_program(two_colors("green"))
    assert monitor.depends_on("blue-backup", "green-migrate")
    assert monitor.depends_on("blue-migrate", "green-migrate")
    assert not monitor.depends_on("green-migrate", "blue-migrate")


def test_step_output_that_can_hold_a_secret_is_secret_and_the_migration_is_not_logged():
    monitor, _ = run_program(config(blueImage="", blueBuild=json.dumps({"context": "harness/images/testapp"})))
    regs = monitor.registrations
    assert set(regs["blue-migrate"].secret_outputs) == {"stdout", "stderr"}
    assert regs["blue-migrate"].inputs["logging"] == "none"
    assert set(regs["blue-build"].secret_outputs) == {"stdout", "stderr"}
    assert regs["blue-backup"].secret_outputs == ["stderr"]


COPY_CONFIG = {
    "backups": json.dumps({"copyTo": {"endpoint": "https://s3.example.com", "bucket": "shop-backups"}}),
    "backupsAccessKeyId": "AKIAEXAMPLEKEY01",
    "backupsSecretAccessKey": "an-example-secret-access-key",
}


def test_the_copy_runs_after_the_backup_and_before_the_migration_with_its_keys_secret():
    monitor, _ = run_program({**config(), **COPY_CONFIG})
    regs = monitor.registrations
    copy = regs["blue-backup-copy"]
    assert monitor.depends_on("blue-backup-copy", "blue-backup")
    assert monitor.depends_on("blue-migrate", "blue-backup-copy")
    assert monitor.depends_on("blue-backup-copy", "router-image"), "the copy runs in the router's image"
    line = shlex.split(copy.inputs["create"])
    assert line[-3:] == ["20261122T000000Z-blue-app.dump",
                         "https://s3.example.com/shop-backups/medusa/20261122T000000Z-blue-app.dump", "us-east-1"]
    assert "-v" in line and "medusa-backups:/backups:ro" in line
    assert copy.inputs["update"] == KEEP_PREVIOUS_OUTPUT
    assert copy.custom_timeouts == {"create": "1800s", "update": "1800s"}
    for secret in ("AKIAEXAMPLEKEY01", "an-example-secret-access-key"):
        assert not any(secret in s for reg in regs.values() for s in plain_strings(reg.inputs)), secret


def test_no_copy_step_without_copy_to():
    monitor, _ = run_program(config())
    assert "blue-backup-copy" not in monitor.registrations
