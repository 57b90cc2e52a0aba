"""ops/cli.py: click parsing (bad input is a clear error and exit 2), the wiring of each verb,
and the entry points bin/bluegreen and `python -m ops`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ops import cli
from ops.environment import REPO
from ops.pulumi_cli import Result
from tests.unit.ops.fakes import FakeDocker, FakePulumi, P, container, ops_fixture


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePulumi:
    """Every verb's commands go to a fake pulumi/docker holding the recorded e2ecli stack."""
    pulumi = FakePulumi(ops_fixture("e2ecli_config.json"), history=ops_fixture("e2ecli_history.json"),
                        outputs=ops_fixture("e2ecli_outputs.json"), stack="e2ecli",
                        docker=FakeDocker(ops_fixture("e2ecli_inspect.json")))
    monkeypatch.setattr(cli.Session, "runner", lambda self, **extra: pulumi)
    monkeypatch.delenv("BLUEGREEN_PROG", raising=False)
    monkeypatch.setenv("BLUEGREEN_CALLER_DIR", str(REPO))
    return pulumi


@pytest.mark.parametrize(("argv", "message"), [
    (["rollback", "abc"], "Invalid value for '[N|latest]': 'abc' is not an update number or 'latest'"),
    (["rollback", "0"], "update numbers start at 1"),
    (["switch", "red"], "Invalid value for '{blue|green}': 'red' is not one of 'blue', 'green'"),
    (["switch"], "Missing argument '{blue|green}'"),
    (["release"], "give exactly one of --image REF or --build DIR"),
    (["release", "--image", "a:1", "--build", "."], "give exactly one of --image REF or --build DIR"),
    (["logs", "blue", "db"], "'db' is not one of 'server', 'worker'"),
    (["logs", "blue", "server", "--tail", "-1"], "-1 is not in the range x>=0"),
    (["--cwd", "/", "status"], "Invalid value for --cwd: / has no Pulumi.yaml"),
    (["deploy"], "No such command 'deploy'"),
    (["status", "--yaml"], "No such option '--yaml'"),
])
def test_bad_input_is_a_clear_error_with_exit_2(capsys: pytest.CaptureFixture[str], fake: FakePulumi,
                                                argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err, err
    assert "Usage: bin/bluegreen" in err and not out
    assert fake.commands == [], "nothing ran"


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for verb in ("status", "release", "switch", "rollback", "logs", "doctor", "renew-cert", "recover", "pulumi"):
        assert f"\n  {verb} " in out


def test_status_json(capsys: pytest.CaptureFixture[str], fake: FakePulumi) -> None:
    code, out, _ = run(capsys, "--stack", "e2ecli", "status", "--json")
    assert code == 0 and json.loads(out)["liveColor"] == "green"


def test_rollback_arguments_reach_the_verb(capsys: pytest.CaptureFixture[str], fake: FakePulumi) -> None:
    code, out, _ = run(capsys, "--stack", "e2ecli", "rollback", "1", "--dry-run")
    assert code == 0 and fake.ups == 0
    assert "would run: bin/bluegreen --stack e2ecli pulumi config set-all" in out
    code, _, err = run(capsys, "--stack", "e2ecli", "rollback", "latest", "--config-only")
    assert code == 0 and fake.ups == 0
    assert "bluegreen rollback: stack e2ecli" in err


def test_a_refused_switch_says_why_on_stderr_with_exit_2(capsys: pytest.CaptureFixture[str],
                                                         fake: FakePulumi) -> None:
    fake.docker.containers = [container("e2ecli-blue-server", "exited", "unhealthy")]
    code, out, err = run(capsys, "--stack", "e2ecli", "switch", "blue")
    assert code == 2 and not out
    assert err.startswith("bluegreen switch: blue is not warm: its server container e2ecli-blue-server is exited")
    assert fake.ups == 0


def test_release_build_dir_is_taken_from_where_the_user_is(capsys: pytest.CaptureFixture[str], fake: FakePulumi,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUEGREEN_CALLER_DIR", str(REPO / "examples"))
    code, out, _ = run(capsys, "--stack", "e2ecli", "release", "--build", "medusa-app")
    assert code == 0, out
    set_all = next(c for c in fake.commands if c.argv[1:3] == ("config", "set-all"))
    assert json.loads(set_all.argv[4])[P + "blueBuild"]["objectValue"] == {"context": "examples/medusa-app"}


def test_a_missing_local_stack_says_how_to_make_it(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    class NoStack:
        def run(self, command: Any) -> Result:
            return Result(6, "", "error: no stack named 'local' found")

    monkeypatch.setattr(cli.Session, "runner", lambda self, **extra: NoStack())
    monkeypatch.setenv("BLUEGREEN_CALLER_DIR", str(REPO))
    code, _, err = run(capsys, "status")
    assert code == 2
    assert err.rstrip().endswith("the local stack does not exist yet: create it with `make up`")


def test_doctor_exit_code_follows_its_checks(capsys: pytest.CaptureFixture[str], fake: FakePulumi) -> None:
    fake.docker.answers = False
    original = fake.run

    def run_version(command: Any) -> Result:
        return Result(0, "v3.259.0\n") if command.argv[:2] == ("pulumi", "version") else original(command)

    fake.run = run_version  # type: ignore[method-assign]
    code, out, _ = run(capsys, "--stack", "e2ecli", "doctor")
    assert code == 1 and "FAIL  docker host" in out and out.rstrip().endswith("1 check failed")


def test_the_entry_points_run_from_anywhere(tmp_path: Path) -> None:
    wrapper = subprocess.run([str(REPO / "bin/bluegreen"), "switch", "--help"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, check=False)
    assert wrapper.returncode == 0, wrapper.stderr
    assert wrapper.stdout.startswith(f"Usage: {REPO}/bin/bluegreen switch [OPTIONS] {{blue|green}}")
    module = subprocess.run([sys.executable, "-m", "ops", "rollback", "x"], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=False)
    assert module.returncode == 2 and "Usage: bin/bluegreen rollback" in module.stderr
    assert (REPO / "bin/bluegreen").stat().st_mode & 0o111, "executable"
