"""`bluegreen restore NAME`: put the bundled database back to one of its backups.

    bin/bluegreen restore --list
    bin/bluegreen --stack production restore 20261203T104001Z-green-shop-v2.dump

The backups are the pre-migration dumps each release takes (backups.keep newest kept). A
restore first takes a dump of the database as it is now (`<time>-restore-before.dump`, never
pruned by the restore itself), so it can be undone with the same verb; then replaces the whole
database, schema included, with the named dump in one transaction (core/restore.py): a failure
changes nothing. Requests keep being served meanwhile; those that touch a table wait for the
transaction (at most a minute, then the restore gives up). Redis (queues, workflow state) is
not rewound.

Then each color with an image is checked against the restored schema (core/schema_check.py),
and the output says which one to make live when the live color's code predates it. A color
whose image is newer than the backup (its migrations were undone) is not caught by that check:
its migration step ran once for its image and will not run again by itself; make the color that
was live when the backup was taken live (the backup is named after the release that took it).

Exit codes: 0 restored, 1 the restore or its pre-restore backup failed (the database is
unchanged), 2 usage or config problem (no bundled database, no such backup).
"""

from __future__ import annotations

from typing import TextIO

from core import docker_cli
from core.naming import COLORS, postgres_container
from core.restore import PRE_RESTORE_COLOR, PRE_RESTORE_IMAGE, list_backups_script, restore_script, valid_backup_name
from core.schema_check import PASSED, SchemaCheck
from ops.docker_host import DockerHost
from ops.environment import Target
from ops.pulumi_cli import (
    Command,
    OpsError,
    PulumiCli,
    Result,
    Runner,
    StackConfig,
    image_refs,
    read_config,
    read_outputs,
)

WHO = "bluegreen restore"


def restore(runner: Runner, cli: PulumiCli, target: Target, name: str | None, out: TextIO, log: TextIO) -> int:
    config = read_config(runner, cli)
    database = config.object("database") or {}
    if database.get("mode", "bundled") != "bundled":
        raise OpsError(f"stack {cli.stack} uses an external database: restore it with your provider's tools")
    host = DockerHost(config.docker_host())
    postgres = postgres_container(config.prefix())

    def in_postgres(script: str) -> Result:
        return runner.run(host.exec(postgres, "sh", "-c", script))

    listed = in_postgres(list_backups_script())
    if listed.returncode != 0:
        raise OpsError(f"could not list the backups in {postgres}: {listed.stderr.strip()}")
    backups = [line.split(" ", 1) for line in listed.stdout.splitlines() if line.strip()]
    if name is None:
        print(f"backups of stack {cli.stack}, newest first:" if backups else f"stack {cli.stack} has no backups",
              file=out)
        for backup, size in backups:
            print(f"  {backup}  {int(size) / 1e6:.1f} MB", file=out)
        return 0
    if not valid_backup_name(name):
        raise OpsError(f"{name!r} is not a backup name (they look like 20261203T104001Z-green-shop-v2.dump); "
                       f"list them: `{target.command('restore', '--list')}`")
    if name not in {backup for backup, _ in backups}:
        raise OpsError(f"stack {cli.stack} has no backup {name}; list them: `{target.command('restore', '--list')}`")

    print(f"{WHO}: stack {cli.stack}: a backup of the database as it is now first", file=log)
    before = in_postgres(docker_cli.backup_script(PRE_RESTORE_COLOR, PRE_RESTORE_IMAGE, keep=None))
    saved = next((line.removeprefix("backup=") for line in before.stdout.splitlines() if line.startswith("backup=")),
                 None)
    if before.returncode != 0 or saved is None:
        print(f"{WHO}: the pre-restore backup failed, nothing was restored: {before.stderr.strip()[-800:]}", file=log)
        return 1
    print(f"{WHO}: restoring {name} (one transaction)", file=log)
    done = in_postgres(restore_script(name))
    if done.returncode != 0:
        print(f"{WHO}: the restore failed and changed nothing: {done.stderr.strip()[-1500:]}", file=log)
        return 1
    print(f"restored: stack {cli.stack}'s database is back at {name}", file=out)
    print(f"  undo: `{target.command('restore', saved)}`", file=out)
    _say_which_color_fits(runner, cli, target, config, postgres, out)
    return 0


def _say_which_color_fits(runner: Runner, cli: PulumiCli, target: Target, config: StackConfig, postgres: str,
                          out: TextIO) -> None:
    outputs = read_outputs(runner, cli)
    live = outputs.get("liveColor")
    acknowledged = tuple((config.object("database") or {}).get("acknowledgedMigrations") or ())
    fits = []
    for color, ref in image_refs(outputs).items():
        if ref is None:
            continue
        check = SchemaCheck(color=color, image=ref, postgres_container=postgres, stack=cli.stack,
                            acknowledged=acknowledged)
        result = runner.run(Command(("env", f"DOCKER_HOST={config.docker_host()}", *check.argv())))
        ok = result.returncode == 0 and PASSED in result.stdout
        print(f"  {color} ({ref}): {'knows every migration now applied' if ok else 'predates this schema'}",
              file=out)
        if ok:
            fits.append(color)
    if live in COLORS and live not in fits and fits:
        print(f"  {live} is live and its code predates the restored schema: make {fits[0]} live: "
              f"`{target.command('switch', fits[0])}`", file=out)
