"""Our command provider (scripts/engine/command-provider/main.go) under the real engine.

Each test runs a throwaway Pulumi Python project with the built `pulumi` CLI (file://
backend, no Docker, no network) and checks what pulumi-command 1.2.1 users rely on, plus what
we do better than it: a cancelled or timed-out command is killed with its whole process group,
and nothing of it is saved to the stack.

The engine comes from scripts/engine/bootstrap.sh (built once, cached; honours
MEDUSA_BG_CACHE). Nothing here skips: if the engine cannot be had, the tests fail and say why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PULUMI_TIMEOUT = 180  # seconds for any one pulumi command: a hang fails the test, not the run


@pytest.fixture(scope="module")
def engine() -> dict[str, str]:
    """The environment scripts/engine/bootstrap.sh --print-env sets up (built engine on PATH)."""
    done = subprocess.run(
        ["bash", "-c", 'eval "$(scripts/engine/bootstrap.sh --print-env)" && env -0'],
        cwd=REPO, capture_output=True, timeout=3600, check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/engine/bootstrap.sh failed:\n{done.stderr.decode()[-3000:]}")
    env = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    # What the commands see must come from the provider, not from this shell.
    for name in ("PULUMI_COMMAND_STDOUT", "PULUMI_COMMAND_STDERR"):
        env.pop(name, None)
    return env


class Project:
    """A one-file Pulumi Python program in its own directory and file:// backend."""

    def __init__(self, root: Path, engine: dict[str, str], program: str):
        self.root = root
        (root / "Pulumi.yaml").write_text(
            "name: cmdprov-test\nruntime:\n  name: python\n  options:\n"
            "    toolchain: pip\n    virtualenv: .venv\n"
        )
        (root / "__main__.py").write_text(textwrap.dedent(program))
        (root / ".venv").symlink_to(REPO / ".venv")
        (root / ".state").mkdir()
        self.env = {
            **engine,
            "PULUMI_BACKEND_URL": f"file://{root / '.state'}",
            "PULUMI_CONFIG_PASSPHRASE": "command-provider-test",
            "WORK": str(root),
        }
        self.pulumi("stack", "init", "test", check=True)

    def args(self, *args: str) -> list[str]:
        stack = [] if args[:2] == ("stack", "init") else ["--stack", "test"]
        return ["pulumi", *args, "--non-interactive", "--color", "never", *stack]

    def pulumi(self, *args: str, check: bool = False, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.args(*args), cwd=self.root, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=PULUMI_TIMEOUT, check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{(done.stdout + done.stderr)[-6000:]}")
        return done

    def up(self, check: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.pulumi("up", "--yes", "--skip-preview", check=check, env=env)

    def state(self) -> dict[str, Any]:
        deployment: dict[str, Any] = json.loads(self.pulumi("stack", "export", check=True).stdout)["deployment"]
        return deployment

    def commands_in_state(self) -> list[str]:
        deployment = self.state()
        saved = [r["urn"] for r in deployment.get("resources") or [] if r["type"] == "command:local:Command"]
        pending = [op["resource"]["urn"] for op in deployment.get("pending_operations") or []]
        return saved + pending


def process_running(pid: int) -> bool:
    """Is pid a live process? A zombie (killed, not yet reaped by its new parent) is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def wait_for_pid(pidfile: Path, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text:
            return int(text)
        time.sleep(0.1)
    raise AssertionError(f"{pidfile} did not appear within {seconds}s: the create command never ran")


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_running(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def leftover_pids() -> Iterator[list[int]]:
    """Pids a test started; any still alive at the end are killed so nothing outlives the test."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if process_running(pid):
            os.kill(pid, signal.SIGKILL)


# A create that never finishes by itself, and whose real work is a background child: the
# child keeps the output pipes open, so killing only /bin/sh (what upstream does) would leave
# it running and the operation waiting for it.
SLOW_CREATE = '''
import os
import pulumi
from pulumi_command import local

work = os.environ["WORK"]
local.Command(
    "slow",
    create=f"sleep 300 & echo $! > {work}/pidfile; wait",
    opts=pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=os.environ["CREATE_TIMEOUT"])),
)
'''


def test_create_timeout_kills_process_group(tmp_path: Path, engine: dict[str, str], leftover_pids: list[int]) -> None:
    project = Project(tmp_path, engine, SLOW_CREATE)
    began = time.monotonic()
    done = project.up(env={"CREATE_TIMEOUT": "3s"})
    seconds = time.monotonic() - began
    output = done.stdout + done.stderr
    pid = wait_for_pid(tmp_path / "pidfile", 1)
    leftover_pids.append(pid)

    assert done.returncode != 0, output
    assert "timed out after 3s (customTimeouts)" in output, output
    assert 'running "sleep 300 &' in output, output
    assert seconds < 30, f"pulumi up took {seconds:.1f}s with a 3s create timeout:\n{output}"
    assert wait_gone(pid, 5), f"the command's background child {pid} survived the timeout"
    assert project.commands_in_state() == [], "a timed-out create must leave nothing in the state"


def test_sigint_to_pulumi_up_cancels_create(tmp_path: Path, engine: dict[str, str], leftover_pids: list[int]) -> None:
    project = Project(tmp_path, engine, SLOW_CREATE)
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            project.args("up", "--yes", "--skip-preview"), cwd=tmp_path,
            env={**project.env, "CREATE_TIMEOUT": "10m"}, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
        try:
            pid = wait_for_pid(tmp_path / "pidfile", 120)
            leftover_pids.append(pid)
            assert process_running(pid), f"the create command's child {pid} is not running"
            assert "sleep" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            signalled = time.monotonic()
            up.send_signal(signal.SIGINT)
            returncode = up.wait(timeout=60)
            seconds = time.monotonic() - signalled
        finally:
            if up.poll() is None:
                up.kill()
                up.wait(timeout=30)
    output = log.read_text()

    assert returncode != 0, output
    assert "cancelled: the engine asked the provider to cancel" in output, output
    assert seconds < 30, f"pulumi up took {seconds:.1f}s to stop after SIGINT:\n{output}"
    assert wait_gone(pid, 5), f"the command's background child {pid} survived the cancellation"
    assert project.commands_in_state() == [], "a cancelled create must leave nothing in the state"


def test_previous_output_env_only_when_non_empty(tmp_path: Path, engine: dict[str, str]) -> None:
    # Each command dumps its environment to a file per (resource, operation); "V" changes an
    # input between runs so that the second `pulumi up` updates every resource.
    project = Project(tmp_path, engine, '''
        import os
        from pulumi_command import local

        work = os.environ["WORK"]
        env = {"V": os.environ["V"]}

        def dump(name, op, then=""):
            return f"env > {work}/{name}.{op}.env{then}"

        local.Command("with-output", environment=env,
                      create="echo created; echo warned >&2",
                      update=dump("with-output", "update", "; echo updated"),
                      delete=dump("with-output", "delete"))
        local.Command("without-output", environment=env,
                      create="true", update=dump("without-output", "update"), delete=dump("without-output", "delete"))
        local.Command("opted-out", environment=env, add_previous_output_in_env=False,
                      create="echo created", update=dump("opted-out", "update"), delete=dump("opted-out", "delete"))
    ''')

    def seen(name: str, op: str) -> dict[str, str]:
        lines = (tmp_path / f"{name}.{op}.env").read_text().splitlines()
        return {k: v for k, _, v in (line.partition("=") for line in lines) if k.startswith("PULUMI_COMMAND_")}

    project.up(check=True, env={"V": "1"})
    project.up(check=True, env={"V": "2"})
    assert seen("with-output", "update") == {"PULUMI_COMMAND_STDOUT": "created", "PULUMI_COMMAND_STDERR": "warned"}
    assert seen("without-output", "update") == {}
    assert seen("opted-out", "update") == {}

    project.pulumi("destroy", "--yes", "--skip-preview", check=True, env={"V": "2"})
    # The update's own output (stdout "updated", stderr empty) is what delete sees.
    assert seen("with-output", "delete") == {"PULUMI_COMMAND_STDOUT": "updated"}
    assert seen("without-output", "delete") == {}
    assert seen("opted-out", "delete") == {}


def test_failing_create_reports_output_and_saves_nothing(tmp_path: Path, engine: dict[str, str]) -> None:
    project = Project(tmp_path, engine, '''
        from pulumi_command import local

        local.Command("fails", create="echo to-stdout; echo to-stderr >&2; exit 3")
    ''')
    done = project.up()
    output = done.stdout + done.stderr

    assert done.returncode != 0, output
    # pulumi-command's shape: "<cause>: running "<command>":" then the output as written.
    assert 'exit status 3: running "echo to-stdout; echo to-stderr >&2; exit 3":' in output, output
    assert "to-stdout" in output
    assert "to-stderr" in output
    assert project.commands_in_state() == []


def test_update_and_delete_timeouts(tmp_path: Path, engine: dict[str, str], leftover_pids: list[int]) -> None:
    # customTimeouts reach update and delete too (UpdateRequest / DeleteRequest.timeout).
    project = Project(tmp_path, engine, '''
        import os
        import pulumi
        from pulumi_command import local

        work = os.environ["WORK"]
        hang = lambda op: f"sleep 300 & echo $! > {work}/{op}.pid; wait"
        local.Command(
            "slow-later", environment={"V": os.environ["V"]},
            create="echo created", update=hang("update"), delete=hang("delete"),
            opts=pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(update="2s", delete="2s")),
        )
    ''')
    project.up(check=True, env={"V": "1"})

    def saved_stdout() -> list[str]:
        return [r["outputs"]["stdout"] for r in project.state().get("resources") or []
                if r["type"] == "command:local:Command"]

    for op, args in (("update", ("up", "--yes", "--skip-preview")), ("delete", ("destroy", "--yes", "--skip-preview"))):
        began = time.monotonic()
        done = project.pulumi(*args, env={"V": "2"})
        seconds = time.monotonic() - began
        output = done.stdout + done.stderr
        pid = wait_for_pid(tmp_path / f"{op}.pid", 1)
        leftover_pids.append(pid)
        assert done.returncode != 0, output
        assert "timed out after 2s (customTimeouts)" in output, output
        assert seconds < 30, f"{op} took {seconds:.1f}s with a 2s timeout:\n{output}"
        assert wait_gone(pid, 5), f"the {op} command's background child {pid} survived the timeout"
        # A failed update keeps the previous state; a failed delete keeps the resource.
        assert saved_stdout() == ["created"], op
