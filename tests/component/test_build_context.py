"""What `docker build` really sends, against what the build digest counts (core/app_build.py).

Each .dockerignore case of tests/unit/core/test_app_build.py is built on the harness's dockerd
with BuildKit, as the program builds (DOCKER_BUILDKIT=1, core/docker_cli.build_image), from a
`FROM scratch` + `COPY . /` Dockerfile exported with `--output type=local`: the exported tree is
exactly the context the build received, no base image needed. Every file sent must be counted
(one that is not is a change that ships without a rebuild), and every file counted but not sent
must be one the case names (the build files BuildKit reads outside the context, files only
other Docker versions send).

Needs the harness dockerd: started when it is not running (`harness/dockerd.sh start`, as
scripts/dev/env.sh does) and stopped again if this module started it, as the e2e suite does.
Never skipped: a daemon that cannot be had is a failure that says why.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.app_build import context_entries, context_files
from tests.unit.core.test_app_build import IGNORE_CASES, IgnoreCase, make_context

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docker_env() -> Iterator[dict[str, str]]:
    dockerd = str(REPO / "harness/dockerd.sh")
    was_running = subprocess.run([dockerd, "status"], capture_output=True, timeout=60, check=False).returncode == 0
    start = subprocess.run([str(REPO / "harness/dockerd.sh"), "start"], capture_output=True, text=True,
                           timeout=900, check=False)
    if start.returncode != 0:
        pytest.fail(f"the harness dockerd did not start (harness/dockerd.sh start):\n{start.stderr[-3000:]}")
    shell = subprocess.run(["bash", "-c", 'eval "$(harness/dockerd.sh env)" && env -0'], cwd=REPO,
                           capture_output=True, timeout=60, check=False)
    if shell.returncode != 0:
        pytest.fail(f"harness/dockerd.sh env failed:\n{shell.stderr.decode()[-3000:]}")
    env = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    env["DOCKER_BUILDKIT"] = "1"  # as components/color_stack.py runs build_image
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        pytest.fail(f"no docker daemon at DOCKER_HOST={env.get('DOCKER_HOST')}: {probe.stderr.strip()[-2000:]}")
    yield env
    if not was_running:
        subprocess.run([dockerd, "stop"], capture_output=True, timeout=120, check=False)


def sent(context: Path, out: Path, env: dict[str, str]) -> set[str]:
    """Relative paths of the files and symlinks `docker build` received as its context."""
    build = subprocess.run(["docker", "build", "--quiet", "--output", f"type=local,dest={out}", str(context)],
                           env=env, capture_output=True, text=True, timeout=120, check=False)
    if build.returncode != 0:
        pytest.fail(f"docker build of {context} failed:\n{build.stderr[-3000:]}")
    return {path.relative_to(out).as_posix() for path in out.rglob("*") if not path.is_dir() or path.is_symlink()}


@pytest.mark.parametrize("case", IGNORE_CASES, ids=lambda case: case.id)
def test_counted_files_are_what_a_real_build_sends(tmp_path: Path, docker_env: dict[str, str], case: IgnoreCase):
    context = make_context(tmp_path / "ctx", case)
    received = sent(context, tmp_path / "out", docker_env)
    counted = set(context_files(context))
    assert received - counted == set(), "sent by docker build but not in the digest: a missed rebuild"
    assert counted - received == set(case.not_sent_by_harness)


def test_links_empty_dirs_and_modes_are_sent(tmp_path: Path, docker_env: dict[str, str]):
    """Why the digest counts symlinks as links, empty directories and permission bits."""
    context = tmp_path / "ctx"
    (context / "uploads").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (context / "secret.txt").write_text("s\n")
    (context / "secret.txt").chmod(0o600)
    (context / "dangling").symlink_to("nowhere")
    out = tmp_path / "out"
    assert sent(context, out, docker_env) == {"Dockerfile", "secret.txt", "dangling"}
    assert (out / "uploads").is_dir()
    assert (out / "secret.txt").stat().st_mode & 0o777 == 0o600
    assert (out / "dangling").readlink() == Path("nowhere")
    assert set(context_entries(context)) == {"Dockerfile", "secret.txt", "dangling", "uploads"}
