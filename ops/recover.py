"""`bluegreen recover`: bring a stack back to a clean state after an interrupted or failed `pulumi up`.

    bin/bluegreen --stack production recover [--unlock]

For every state a killed CI runner, a Ctrl-C, a host reboot or a Docker daemon restart can
leave behind, the same steps, each a no-op when there is nothing to do:

1. the stack lock: a lock left by a `pulumi` process that no longer runs is released
   (`pulumi cancel`); a lock held by a live process on this machine is never touched, and a
   lock taken on another machine only with --unlock (we cannot see whether it still runs);
2. when the state holds operations the killed run had started but not recorded,
   `pulumi refresh --clear-pending-creates` reads the state back from the Docker host and
   drops them (`pulumi up` alone keeps pending creates in the state for ever);
3. containers the stack names but its state does not hold (created by the killed run before it
   could record them) are removed, and so is a leftover migration container: nothing the
   state holds is touched, so the live color keeps serving;
4. `pulumi up` (with `--refresh` unless step 2 just refreshed: a container that stopped is
   started again) finishes what the config describes through the usual backup, migration,
   health gate and flip, so a half-done release is either completed or refused by its gate;
5. `pulumi preview --expect-no-changes`: proves the stack is clean.

Exit codes: 0 clean, 1 a step failed (its output says why), 2 usage or a lock held by a
process that may still run.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlparse

from core import naming
from core.naming import PROJECT
from ops.docker_host import DockerHost
from ops.pulumi_cli import Command, OpsError, PulumiCli, Runner, read_config, read_json, run_checked

WHO = "bluegreen recover"
CONTAINER_TYPE = "docker:index/container:Container"


class LockHeldError(OpsError):
    """A lock that may belong to an update still running: never released by this command."""

    exit_code = 2


class StepFailedError(OpsError):
    exit_code = 1


# --- pure logic -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lock:
    path: Path
    pid: int | None
    hostname: str


def lock_verdict(lock: Lock, this_host: str, alive: Callable[[int], bool], unlock: bool) -> str | None:
    """None when the lock may be released; otherwise why not, in words for the user."""
    if lock.hostname == this_host:
        if lock.pid is not None and alive(lock.pid):
            return (f"the stack is locked by pulumi process {lock.pid}, which is still running on this "
                    "machine; wait for it to finish (or stop it) and run this again")
        return None
    if unlock:
        return None
    return (f"the stack is locked by a pulumi process on {lock.hostname!r}, which this machine cannot "
            "check; if no update is running there, run this again with --unlock")


def managed_containers(prefix: str) -> set[str]:
    """Every container name the program gives, for this stack's prefix."""
    names = {naming.router_container(prefix), naming.migrate_container(prefix)}
    names |= {f"{prefix}-{service}" for service in ("postgres", "redis", "meilisearch")}
    for color in naming.COLORS:
        names |= {*naming.all_server_containers(prefix, color), naming.worker_container(prefix, color)}
    return names


def pending_operations(deployment: Mapping[str, Any]) -> int:
    return len(deployment.get("deployment", {}).get("pending_operations") or [])


def state_container_ids(deployment: Mapping[str, Any]) -> set[str]:
    resources = deployment.get("deployment", {}).get("resources") or []
    return {str(r["id"]) for r in resources if r.get("type") == CONTAINER_TYPE and r.get("id")}


def orphans(existing: Mapping[str, str], in_state: set[str], prefix: str) -> list[str]:
    """Containers (name -> id) of this stack's names that the state does not hold."""
    managed = managed_containers(prefix)
    return sorted(name for name, cid in existing.items() if name in managed and cid not in in_state)


def file_backend_dir(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.netloc + parsed.path)
    return Path(os.path.expanduser(path))


def read_locks(backend: Path, stack: str) -> list[Lock]:
    folder = backend / ".pulumi" / "locks"
    locks = []
    for path in sorted(folder.glob(f"*/{PROJECT}/{stack}/*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            data = {}
        pid = data.get("pid")
        locks.append(Lock(path, pid if isinstance(pid, int) else None, str(data.get("hostname", ""))))
    return locks


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- command lines --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoverCli(PulumiCli):
    def cancel(self) -> Command:
        return self._command("cancel", "--yes")

    def export(self) -> Command:
        return self._command("stack", "export")

    def refresh_clearing_pending(self) -> Command:
        return self._command("refresh", "--yes", "--skip-preview", "--clear-pending-creates", stream=True)

    def up_all(self, refresh: bool) -> Command:
        flags = ("--refresh",) if refresh else ()
        return self._command("up", "--yes", "--skip-preview", *flags, "--message", WHO, stream=True)

    def preview_clean(self) -> Command:
        return self._command("preview", "--expect-no-changes", stream=True)

    def whoami(self) -> Command:
        cwd = ("--cwd", self.cwd) if self.cwd else ()
        return Command((self.binary, "whoami", "--output", "json", "--non-interactive", *cwd))


# --- running it -----------------------------------------------------------------------------


def release_lock(runner: Runner, cli: RecoverCli, unlock: bool, log: TextIO) -> None:
    who = read_json(runner, cli.whoami(), "finding the state backend")
    backend = file_backend_dir(str(who.get("url", ""))) if isinstance(who, Mapping) else None
    if backend is None:
        if unlock:
            run_checked(runner, cli.cancel(), "releasing the stack lock")
            print(f"{WHO}: 1. lock released (--unlock)", file=log)
        else:
            print(f"{WHO}: 1. lock: not a file:// backend, left alone (pass --unlock to release it)", file=log)
        return
    locks = read_locks(backend, cli.stack)
    if not locks:
        print(f"{WHO}: 1. lock: none", file=log)
        return
    for lock in locks:
        why = lock_verdict(lock, socket.gethostname(), pid_alive, unlock)
        if why is not None:
            raise LockHeldError(why)
    run_checked(runner, cli.cancel(), "releasing the stack lock")
    print(f"{WHO}: 1. lock left by a pulumi process that is gone: released ({len(locks)})", file=log)


def recover(runner: Runner, cli: RecoverCli, unlock: bool, log: TextIO) -> int:
    try:
        return _recover(runner, cli, unlock, log)
    except LockHeldError:
        raise
    except OpsError as error:
        raise StepFailedError(str(error)) from None


def _recover(runner: Runner, cli: RecoverCli, unlock: bool, log: TextIO) -> int:
    release_lock(runner, cli, unlock, log)
    config = read_config(runner, cli)
    prefix, docker = config.prefix(), DockerHost(config.docker_host())

    state = read_json(runner, cli.export(), "reading the stack state")
    pending = pending_operations(state)
    if pending:
        run_checked(runner, cli.refresh_clearing_pending(), "pulumi refresh --clear-pending-creates")
        state = read_json(runner, cli.export(), "reading the stack state")
    print(f"{WHO}: 2. operations the interrupted run had not recorded, dropped: {pending}", file=log)

    listing = run_checked(runner, docker.ps_all(prefix), "listing the stack's containers").stdout
    existing = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
    stray = orphans(existing, state_container_ids(state), prefix)
    if stray:
        run_checked(runner, docker.rm(stray), "removing containers the state does not hold")
    print(f"{WHO}: 3. containers the state does not hold, removed: {', '.join(stray) or 'none'}", file=log)

    run_checked(runner, cli.up_all(refresh=not pending), "pulumi up")
    print(f"{WHO}: 4. pulumi up done", file=log)
    run_checked(runner, cli.preview_clean(), "pulumi preview --expect-no-changes")
    print(f"{WHO}: 5. stack {cli.stack} is clean: pulumi preview shows no changes", file=log)
    return 0
