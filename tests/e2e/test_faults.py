"""The fault matrix: what a VPS and a CI runner throw at a release, on the real engine and dockerd.

Every case runs under a continuous non-retrying load on the live route and asserts:
- no failed live request while a healthy color was live;
- no data lost: a row written before the fault is there after it;
- one documented command, `bin/bluegreen --stack NAME recover`, brings the stack back to a clean
  `pulumi preview --expect-no-changes` (no hand editing of state, no export/import).

The cases share one stack (prefix e2efault) to save time, but none depends on another: each
starts from `given_clean`, which runs the recovery command first whenever the last case did
not end clean. The test app boots and migrates slowly on purpose (BOOT_DELAY_MS,
MIGRATE_DELAY_MS) so that each phase of a release lasts long enough to be hit.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from core.router_control import live_probe_url
from tests.e2e.conftest import measure
from tests.e2e.load import Load, LoadReport
from tests.e2e.project import (
    REPO,
    PulumiStack,
    Run,
    container_id,
    destroy_with_data,
    docker,
    local_stack_config,
    remove_leftovers,
)

PREFIX = "e2efault"
HTTP_PORT = 20080
PUBLIC = f"http://127.0.0.1:{HTTP_PORT}"
ROUTER = f"{PREFIX}-router"
POSTGRES = f"{PREFIX}-postgres"
TESTAPP = REPO / "harness/images/testapp"
# Long enough for a poll every 50-100 ms to land inside the phase, short enough for CI.
SLOW_APP = {"BOOT_DELAY_MS": "1500", "MIGRATE_DELAY_MS": "1500"}
PHASE_TIMEOUT = 120.0
# Docker restarts every container at daemon start; the router must serve again within this.
SERVES_AFTER_DAEMON_RESTART_WITHIN = 90.0

BASE_CONFIG: dict[str, Any] = local_stack_config(
    PREFIX, HTTP_PORT, 21080,
    healthGate={"deadlineSeconds": 12, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 1},
    medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5, "env": SLOW_APP},
)
MATRIX: list[str] = []


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


@dataclass
class Fleet:
    """What the stack runs when clean: the live color and each color's image ref."""

    stack: PulumiStack
    live: str = "blue"
    images: dict[str, str] = field(default_factory=dict)
    clean: bool = False
    _versions: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def configure(self, active: str, images: dict[str, Any], **extra: Any) -> None:
        keys = {f"{color}Image" if isinstance(ref, str) else f"{color}Build": ref for color, ref in images.items()}
        self.stack.set_config({**BASE_CONFIG, "dockerHost": self.stack.env["DOCKER_HOST"],
                               "activeColor": active, **keys, **extra})

    def next_number(self) -> int:
        return next(self._versions)

    def new_image(self, behaviour: str = "healthy") -> str:
        """A testapp image no color has run yet (a new image id, so its release steps run)."""
        tag = f"fault-{self.next_number()}-{behaviour}"
        done = subprocess.run([str(REPO / "harness/images.sh"), "testapp", tag, tag, behaviour],
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return f"medusa-bg/testapp:{tag}"

    def remember(self) -> None:
        """Reads back what is live after a successful run; the next case starts from it."""
        outputs = self.stack.outputs()
        self.live = outputs["liveColor"]
        self.images = {color: ref for color, ref in outputs["imageRefs"].items() if ref}
        self.configure(self.live, self.images)
        self.clean = True


@pytest.fixture(scope="module")
def fleet(engine: dict[str, str], workdir: Path) -> Iterator[Fleet]:
    remove_leftovers(PREFIX)
    stack = PulumiStack(workdir, engine, stack="faults")
    fleet = Fleet(stack)
    fleet.configure("blue", {"blue": fleet.new_image()})
    stack.up()
    fleet.remember()
    psql("CREATE TABLE IF NOT EXISTS fault_marks (label text primary key)")
    yield fleet
    measure("fault matrix (fault | phase | failed live requests | recovery command | recovery time):")
    for line in MATRIX:
        measure(f"  {line}")
    destroy_with_data(stack, PREFIX)
    # A SIGKILLed `pulumi up` leaves its language host and plugins running (they are its children,
    # not the test's); they would hold ports and memory after the suite.
    stop_processes_of(workdir)


def stop_processes_of(workdir: Path) -> None:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f"{workdir}/" in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


def psql(sql: str) -> str:
    return docker("exec", POSTGRES, "psql", "-U", "medusa", "-d", "medusa", "-tAc", sql)


def mark(label: str) -> None:
    psql(f"INSERT INTO fault_marks VALUES ('{label}') ON CONFLICT DO NOTHING")


def assert_marked(label: str) -> None:
    assert psql(f"SELECT count(*) FROM fault_marks WHERE label = '{label}'") == "1", f"row {label} lost"


def live_load() -> Load:
    """The continuous load on the live route (a lighter rate than the release scenarios': the
    cases here are many, and the load's own CPU would slow every step on a 2-core machine)."""
    return Load(f"{PUBLIC}/", rate_per_client=15)


def live_body() -> dict[str, Any]:
    response = requests.get(f"{PUBLIC}/", timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def recover(fleet: Fleet) -> Run:
    began = time.monotonic()
    done = subprocess.run(
        [str(REPO / "bin/bluegreen"), "--stack", fleet.stack.stack, "--cwd", str(fleet.stack.workdir), "recover"],
        env=fleet.stack.env, capture_output=True, text=True, timeout=900, check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - began)
    assert run.returncode == 0, f"bin/bluegreen recover failed ({run.returncode}):\n{run.output[-5000:]}"
    assert "is clean: pulumi preview shows no changes" in run.stderr, run.output[-3000:]
    return run


def given_clean(fleet: Fleet) -> None:
    """The starting state of every case: a clean stack with one healthy live color."""
    if not fleet.clean:
        recover(fleet)
        fleet.remember()
    fleet.clean = False  # until the case proves otherwise
    assert live_body()["color"] == fleet.live


class Background:
    """A `pulumi` run in the background whose output is drained (a full pipe would stall it)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def wait_for(what: str, ready: Callable[[], bool], run: Background) -> float:
    began = time.monotonic()
    while not ready():
        if run.process.poll() is not None:
            pytest.fail(f"pulumi up ended (exit {run.process.returncode}) before {what}:\n{run.output[-4000:]}")
        if time.monotonic() - began > PHASE_TIMEOUT:
            pytest.fail(f"{what} did not happen within {PHASE_TIMEOUT:.0f}s:\n{run.output[-4000:]}")
        time.sleep(0.05)
    return time.monotonic() - began


def process_running(*needles: str) -> bool:
    """A process on this machine (Docker containers' included) whose command line has all needles."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(needle in cmdline for needle in needles):
            return True
    return False


def routes() -> dict[str, str]:
    """The router's live and preview colors; other fields `status` prints (maintenance) are left out."""
    out = docker("exec", ROUTER, "sh", "/etc/nginx/conf.d/bluegreen/router.sh", "status", check=False)
    fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
    return {route: fields[route] for route in ("live", "preview") if route in fields}


def docker_state(container: str) -> str:
    """A container's state and its last log lines, for a failure message."""
    fmt = "{{.State.Status}} (exit {{.State.ExitCode}}, started {{.State.StartedAt}})"
    return (docker("inspect", "--format", fmt, container, check=False) + "; logs: "
            + docker("logs", "--tail", "15", container, check=False))


def migration_state(container: str) -> str | None:
    """None when the container is gone; else its state, with `created` only if it never ran."""
    fmt = "{{.State.Status}} {{.State.StartedAt}}"
    found = docker("inspect", "--format", fmt, container, check=False)
    if not found:
        return None
    status, started = found.split(" ", 1)
    return status if status != "created" or started.startswith("0001-") else "created, but it ran"


def label_of(container: str) -> str | None:
    fmt = '{{index .Config.Labels "medusa-bluegreen.image"}}'
    return docker("inspect", "--format", fmt, container, check=False) or None


def pending_operations(stack: PulumiStack) -> int:
    state = json.loads(stack.run("stack", "export").stdout)
    return len(state.get("deployment", {}).get("pending_operations") or [])


@dataclass(frozen=True)
class Case:
    label: str  # the row written before the fault, looked for after it
    live: str
    target: str
    image: str
    version: str


def release_case(fleet: Fleet, label: str, image: str | None = None, behaviour: str = "healthy") -> Case:
    """A case's start: a clean stack, a row written, the config of a release to the idle color."""
    given_clean(fleet)
    mark(label)
    live, target = fleet.live, other(fleet.live)
    image = image or fleet.new_image(behaviour)
    fleet.configure(target, {live: fleet.images[live], target: image})
    return Case(label, live, target, image, image.rsplit(":", 1)[-1])


def start_up(fleet: Fleet) -> Background:
    return Background(fleet.stack.start("up", "--yes", "--skip-preview"))


def finish(fleet: Fleet, load: Load, fault: str, phase: str, expect_live: str, expect_version: str) -> LoadReport:
    """Recovery, then the three promises: zero failed live requests, data kept, clean stack."""
    run = recover(fleet)
    assert pending_operations(fleet.stack) == 0, "the recovery left pending operations in the state"
    time.sleep(1)
    report = load.stop()
    fleet.remember()
    body = live_body()
    assert (body["color"], body["version"]) == (expect_live, expect_version), body
    MATRIX.append(f"{fault} | {phase} | {report.failed} of {report.total} | bin/bluegreen recover | {run.seconds:.1f}s")
    assert report.total > 0
    assert report.failed == 0, report.failures
    return report


# --- a. SIGKILL of `pulumi up` in each phase of a release ------------------------------------

PHASES = ["image build", "backup", "migration", "target server create", "health gate",
          "right after the live flip", "target worker start"]


@pytest.mark.parametrize("phase", PHASES)
def test_a_pulumi_up_killed_in_each_phase_recovers_with_one_command(fleet: Fleet, phase: str) -> None:
    given_clean(fleet)
    live, target = fleet.live, other(fleet.live)
    label = f"a-{phase}"
    mark(label)
    if phase == "image build":
        version = f"build-{fleet.next_number()}"
        ref: Any = {"context": str(TESTAPP), "args": {"APP_VERSION": version, "BEHAVIOUR": "healthy"}}
    else:
        ref = fleet.new_image()
        version = ref.rsplit(":", 1)[-1]
    fleet.configure(target, {live: fleet.images[live], target: ref})

    def server_replaced() -> bool:
        return label_of(f"{PREFIX}-{target}-server") not in (None, fleet.images.get(target))

    ready: dict[str, Callable[[], bool]] = {
        "image build": lambda: process_running("docker", "build", f"{PREFIX}-app:src-"),
        "backup": lambda: process_running("docker", "exec", POSTGRES, "pg_dump"),
        # services.hardened: the migration is created, joined to both networks, then attached to.
        "migration": lambda: process_running("docker", "start", "--attach", f"{PREFIX}-migrate"),
        "target server create": server_replaced,
        "health gate": lambda: routes() == {"live": live, "preview": target},
        "right after the live flip": lambda: routes().get("live") == target,
        "target worker start": lambda: container_id(f"{PREFIX}-{target}-worker") is not None,
    }
    with live_load() as load:
        run = start_up(fleet)
        waited = wait_for(phase, ready[phase], run)
        os.kill(run.process.pid, signal.SIGKILL)
        run.wait()
        pending = pending_operations(fleet.stack)
        measure(f"fault a. SIGKILL {waited:.1f}s into the release, during {phase}: "
                f"{pending} pending operation(s) left in the state")
        finish(fleet, load, "SIGKILL of pulumi up", phase, target, version)
    assert_marked(label)
    assert container_id(f"{PREFIX}-migrate") is None, "a migration container outlived its run"


# --- b. graceful cancel ---------------------------------------------------------------------


def test_b_sigint_during_the_migration_cancels_it_and_recovers(fleet: Fleet) -> None:
    case = release_case(fleet, "b")
    with live_load() as load:
        run = start_up(fleet)
        wait_for("the migration", lambda: container_id(f"{PREFIX}-migrate") is not None, run)
        cancelled = time.monotonic()
        run.process.send_signal(signal.SIGINT)
        code = run.wait(timeout=120)
        took = time.monotonic() - cancelled
        assert code != 0, run.output[-3000:]
        # The provider killed the command's process group: no migration keeps running. A cancel
        # that lands between `docker create` and `docker start` can leave the container created
        # but never started (the step's group is SIGKILLed a moment after SIGTERM, which can cut
        # its cleanup short): inert, and removed by the next run before it migrates.
        migrate = f"{PREFIX}-migrate"
        deadline = time.monotonic() + 30
        while (state := migration_state(migrate)) not in (None, "created"):
            assert time.monotonic() < deadline, (
                "the cancelled migration is still running: " + docker_state(migrate) + "\n" + run.output[-2000:])
            time.sleep(0.2)
        measure(f"fault b. SIGINT during the migration: pulumi up ended {took:.1f}s later, "
                f"migration container {'left created, never started' if state else 'gone'}")
        assert routes()["live"] == case.live
        finish(fleet, load, "SIGINT (graceful cancel)", "migration", case.target, case.version)
    assert_marked(case.label)
    assert container_id(migrate) is None, "the recovery left the cancelled migration's container"


# --- c. the Docker daemon restarted (a host reboot) -----------------------------------------


def restart_dockerd() -> float:
    """Stops and starts the harness's dockerd like a host reboot; returns how long that took."""
    began = time.monotonic()
    for verb in ("stop", "start"):
        done = subprocess.run([str(REPO / "harness/dockerd.sh"), verb], capture_output=True, text=True,
                              timeout=180, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    return time.monotonic() - began


def serving_again(*colors: str) -> tuple[float, str]:
    """Seconds until the router answers 200 from one of `colors`, and which one."""
    began = time.monotonic()
    while True:
        try:
            response = requests.get(f"{PUBLIC}/", timeout=2)
            if response.status_code == 200 and response.json()["color"] in colors:
                return time.monotonic() - began, response.json()["color"]
        except (requests.RequestException, ValueError):
            pass
        assert time.monotonic() - began < SERVES_AFTER_DAEMON_RESTART_WITHIN, "router did not serve again"
        time.sleep(0.2)


def test_c1_daemon_restart_at_rest_brings_everything_back(fleet: Fleet) -> None:
    given_clean(fleet)
    mark("c1")
    live = fleet.live
    before = {name for name in docker("ps", "--format", "{{.Names}}").split() if name.startswith(PREFIX)}
    restart = restart_dockerd()
    took, _ = serving_again(live)
    after = {name for name in docker("ps", "--format", "{{.Names}}").split() if name.startswith(PREFIX)}
    measure(f"fault c1. dockerd restarted at rest: stop + start took {restart:.1f}s, {live} served "
            f"{took:.1f}s after the daemon answered")
    assert after == before, f"not every container came back: {sorted(before - after)}"
    assert routes()["live"] == live
    with live_load() as load:
        finish(fleet, load, "dockerd restart", "at rest", live, fleet.images[live].rsplit(":", 1)[-1])
    assert_marked("c1")


def test_c2_daemon_restart_during_a_release_recovers(fleet: Fleet) -> None:
    case = release_case(fleet, "c2")
    live, target = case.live, case.target
    run = start_up(fleet)
    wait_for("the health gate", lambda: routes() == {"live": live, "preview": target}, run)
    restart = restart_dockerd()
    took, serving = serving_again(live, target)
    code = run.wait(timeout=300)
    measure(f"fault c2. dockerd restarted during the health gate: stop + start took {restart:.1f}s, "
            f"{serving} served {took:.1f}s after the daemon answered; pulumi up exit {code}")
    # The flip happens only through the gate: the target is live only if that run went through.
    assert routes()["live"] == (target if code == 0 else live), run.output[-3000:]
    with live_load() as load:
        finish(fleet, load, "dockerd restart", "health gate", target, case.version)
    assert_marked(case.label)


# --- d. Postgres killed during the migration ------------------------------------------------


def migration_log() -> str:
    done = subprocess.run(["docker", "logs", f"{PREFIX}-migrate"], capture_output=True, text=True, timeout=30,
                          check=False)
    return done.stdout + done.stderr


def test_d_postgres_killed_during_the_migration_fails_cleanly(fleet: Fleet) -> None:
    case = release_case(fleet, "d")
    with live_load() as load:
        run = start_up(fleet)
        wait_for("the migration's work", lambda: "migrating for" in migration_log(), run)
        docker("kill", POSTGRES)
        code = run.wait()
        assert code != 0
        assert "lost the database during the migration" in run.output, run.output[-3000:]
        assert routes()["live"] == case.live
        assert label_of(f"{PREFIX}-{case.target}-server") != case.image, "the server must wait for its migration"
        finish(fleet, load, "Postgres killed", "migration", case.target, case.version)
    assert_marked(case.label)


# --- e. the backup target full --------------------------------------------------------------


def backups_dir() -> str:
    return docker("volume", "inspect", "--format", "{{.Mountpoint}}", f"{PREFIX}-backups")


def test_e_full_backup_volume_stops_the_release_before_the_migration(fleet: Fleet) -> None:
    case = release_case(fleet, "e")
    # A 256 KiB filesystem over the backups volume, filled up: what a full disk looks like to
    # pg_dump. Postgres is restarted so its mount sees it (test setup, not part of the release).
    mountpoint = backups_dir()
    docker("stop", POSTGRES)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mountpoint], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={mountpoint}/filler", "bs=4k"], capture_output=True, check=False)
        docker("start", POSTGRES)
        deadline = time.monotonic() + 60
        while "accepting" not in docker("exec", POSTGRES, "pg_isready", "-h", "127.0.0.1", check=False):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        with live_load() as load:
            run = fleet.stack.up(check=False)
            assert run.returncode != 0
            assert "failed: the dump cannot be read back" in run.output or "failed: pg_dump failed" in run.output, \
                run.output[-3000:]
            assert "free space on the backups volume: 0" in run.output, run.output[-3000:]
            assert "the release stopped before its migration" in run.output
            assert label_of(f"{PREFIX}-{case.target}-server") != case.image, "the release went past its backup"
            measure(f"fault e. backup volume full: pulumi up refused in {run.seconds:.1f}s, "
                    f"error names the backup; live stays {case.live}")
            assert routes()["live"] == case.live
            # The way out: free the space, then the one recovery command.
            docker("stop", POSTGRES)
            subprocess.run(["umount", mountpoint], check=True)
            docker("start", POSTGRES)
            finish(fleet, load, "backup volume full", "backup", case.target, case.version)
    finally:
        subprocess.run(["umount", mountpoint], capture_output=True, check=False)
    assert_marked(case.label)


# --- f. two `pulumi up` at once -------------------------------------------------------------


def test_f_a_second_concurrent_up_is_refused_by_the_lock(fleet: Fleet) -> None:
    case = release_case(fleet, "f")
    with live_load() as load:
        first = start_up(fleet)
        wait_for("the first run's migration", lambda: container_id(f"{PREFIX}-migrate") is not None, first)
        second = fleet.stack.up(check=False)
        assert second.returncode != 0
        assert "locked" in second.output, second.output[-3000:]
        assert first.wait() == 0, first.output[-4000:]
        measure(f"fault f. second pulumi up while one runs: refused in {second.seconds:.1f}s (stack locked); "
                "the first completed")
        finish(fleet, load, "two pulumi up at once", "migration", case.target, case.version)
    assert_marked(case.label)


# --- g. the post-switch check fails ---------------------------------------------------------


def test_g_failed_post_switch_check_flips_back_automatically(fleet: Fleet) -> None:
    case = release_case(fleet, "g", behaviour="preview-only")
    live, target = case.live, case.target
    with live_load() as load:
        run = fleet.stack.up(check=False)
        assert run.returncode != 0
        # The post-switch check probes the public server from inside the router (rule 6b).
        probed = f"{live_probe_url('/health', tls=False)} via {PREFIX}-router"
        assert f"health gate failed for color {target}: {probed}" in run.output, run.output[-3000:]
        assert "last status: 503" in run.output and "rolled back: route=live" in run.output, run.output[-3000:]
        assert routes()["live"] == live, "traffic was not flipped back"
        assert live_body()["color"] == live
        measure(f"fault g. post-switch check failed: pulumi up failed in {run.seconds:.1f}s and flipped back "
                f"to {live}; {load.report.colors.get(target, 0)} requests saw {target} meanwhile")
        # The operator's way out is the previous config (bin/bluegreen release restores it by itself).
        fleet.configure(live, fleet.images)
        finish(fleet, load, "post-switch check fails", "after the live flip", live,
               fleet.images[live].rsplit(":", 1)[-1])
    assert_marked(case.label)
