"""The GitHub workflows pass actionlint (with shellcheck on their run: blocks), and the lint can fail.

actionlint comes from scripts/dev/install-actionlint.sh (built once from the Go module proxy,
cached outside the repo; scripts/dev/install-test-deps.sh runs it). When it or shellcheck is
missing these tests fail: a skipped lint would pass broken workflows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))


@pytest.fixture(scope="module")
def actionlint() -> str:
    done = subprocess.run(
        [str(REPO / "scripts" / "dev" / "install-actionlint.sh")],
        capture_output=True, text=True, timeout=900, check=False,
    )
    path = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not Path(path).is_file():
        pytest.fail(
            "actionlint is not available: scripts/dev/install-actionlint.sh failed "
            f"(exit {done.returncode}); run scripts/dev/install-test-deps.sh (needs Go and the module proxy once)\n"
            f"{done.stderr[-2000:]}"
        )
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not on PATH, so actionlint would not check run: blocks; "
                    "run scripts/dev/install-test-deps.sh (Debian package shellcheck)")
    return path


def lint(actionlint: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint, "-no-color", *map(str, files)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_workflows_pass_actionlint(actionlint: str) -> None:
    assert {p.name for p in WORKFLOWS} >= {"deploy.yml", "preview.yml", "switch.yml"}
    done = lint(actionlint, *WORKFLOWS)
    assert done.returncode == 0, f"actionlint found problems:\n{done.stdout}{done.stderr}"


BROKEN = """\
name: broken
on:
  push:
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v6
        with:
          fetch-deepth: 1
      - run: echo "${{ github.event.no_such_thing.name }"
"""

SHELL_BUG = """\
name: shell
on:
  push:
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - run: |
          files=$(ls *.txt)
          for f in $files; do rm $f; done
"""


def test_actionlint_catches_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BROKEN)
    done = lint(actionlint, path)
    assert done.returncode != 0
    assert 'input "fetch-deepth" is not defined' in done.stdout
    assert "[expression]" in done.stdout  # the unterminated ${{ }}


def test_actionlint_runs_shellcheck_on_run_blocks(actionlint: str, tmp_path: Path) -> None:
    path = tmp_path / "shell.yml"
    path.write_text(SHELL_BUG)
    done = lint(actionlint, path)
    assert done.returncode != 0
    assert "shellcheck reported issue" in done.stdout, done.stdout


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return data


def test_actions_are_pinned_to_major_versions() -> None:
    for path in WORKFLOWS:
        for step in _steps(yaml.safe_load(path.read_text())):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"{path.name}: {step['uses']}"


def test_stack_operations_are_serialized_and_never_cancelled() -> None:
    for name in ("deploy.yml", "switch.yml"):
        assert load(name)["concurrency"] == {"group": "pulumi-stack-production", "cancel-in-progress": False}


def test_every_stack_operation_starts_from_the_live_colors() -> None:
    # The checkout's Pulumi.production.yaml does not track the live color; a release computed
    # from it would redeploy the live color.
    sync = 'bin/bluegreen --stack "$STACK" rollback latest --config-only'
    for name, acting in (("deploy.yml", 'bin/bluegreen --stack "$STACK" release'), ("preview.yml", "pulumi preview"),
                         ("switch.yml", 'bin/bluegreen --stack "$STACK" switch')):
        runs = [str(step.get("run", "")) for step in _steps(load(name))]
        first_sync = next(i for i, run in enumerate(runs) if sync in run)
        first_action = next(i for i, run in enumerate(runs) if acting in run)
        assert first_sync < first_action, name


def test_the_pr_preview_runs_the_guard_policy_pack() -> None:
    # Without it a PR that would replace the router or a data service previews green.
    runs = [str(step.get("run", "")) for step in _steps(load("preview.yml"))]
    previews = [run for run in runs if "pulumi preview" in run]
    assert previews and all("--policy-pack policy" in run for run in previews)
    assert (REPO / "policy" / "PulumiPolicy.yaml").is_file()


def test_the_runner_reaches_the_host_only_with_the_pinned_host_key() -> None:
    for name in ("deploy.yml", "switch.yml"):
        text = (REPO / ".github" / "workflows" / name).read_text()
        assert "DEPLOY_SSH_KNOWN_HOSTS" in text and "StrictHostKeyChecking yes" in text, name
        assert "ssh-keyscan" not in text.split("jobs:", 1)[1], f"{name} trusts whatever key answers"
