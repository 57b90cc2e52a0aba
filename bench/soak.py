"""Soak: many releases in a row under load; nothing may pile up, and an old release comes back.

    make soak        (.venv/bin/python bench/soak.py [--releases 30])

On the real engine and the harness dockerd, as an operator would: release 1 is a `pulumi up`
of blue built from a copy of harness/images/testapp, then every release edits that copy (its
version, so each release is a new image) and runs `bin/bluegreen release --build` to the idle
color, which pins the other color to its `imageRefs` output. A continuous non-retrying load
runs on the live route from release 2 to the end. One line per release: the color, pulumi's
own duration of the up, failed/total requests since the previous line, this stack's
containers, volumes and app images, and the engine's `docker system df` sizes.

Then it asserts that the counts stayed flat after the first releases (the image prune keeps
`releases.keep` + 2 app images), rolls back to release N-2 with `bin/bluegreen rollback N-2`,
and checks that the live route serves that version with no failed request. The stack, its
volumes and its images are removed at the end, also after a failure.

Own prefix and ports (soak, 127.0.0.1:30080/31080), so the e2e stacks can run beside it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.load import Load  # noqa: E402
from tests.e2e.project import (  # noqa: E402
    PulumiStack,
    destroy_with_data,
    docker,
    engine_env,
    local_stack_config,
    remove_leftovers,
)

PREFIX = "soak"
HTTP_PORT = 30080
PREVIEW_PORT = 31080
LIVE = f"http://127.0.0.1:{HTTP_PORT}/"
APP_REPOSITORY = f"{PREFIX}-app"  # where the program tags built images (components/stack.py)
KEEP = 3  # releases.keep, its default
# From here on every count must stay at or below its value here: the prune has had
# KEEP + 2 releases to fill up to its limit.
WARMUP = KEEP + 2
STEP_TIMEOUT = 900  # seconds, per `bin/bluegreen release` / `rollback` run


@dataclass
class Counts:
    containers: int
    volumes: int
    images: int
    df: str

    def describe(self) -> str:
        return f"containers={self.containers} volumes={self.volumes} app-images={self.images} | df {self.df}"


def counts() -> Counts:
    def lines(*args: str) -> int:
        return len(docker(*args).split())

    sizes = {}
    for line in docker("system", "df", "--format", "{{.Type}}\t{{.Size}}").splitlines():
        kind, _, size = line.partition("\t")
        sizes[kind] = size
    df = " ".join(f"{label}={sizes.get(kind, '?')}" for kind, label in (
        ("Images", "images"), ("Containers", "containers"), ("Local Volumes", "volumes"), ("Build Cache", "cache")))
    return Counts(
        containers=lines("ps", "-aq", "--filter", f"name=^{PREFIX}-"),
        volumes=lines("volume", "ls", "-q", "--filter", f"name=^{PREFIX}-"),
        images=lines("image", "ls", "-q", "--no-trunc", "--filter", f"reference={APP_REPOSITORY}"),
        df=df,
    )


def set_version(app: Path, version: str) -> None:
    """The app's code changes per release: a new context digest, so a new image."""
    dockerfile = app / "Dockerfile"
    text = re.sub(r"^ARG APP_VERSION=.*$", f"ARG APP_VERSION={version}", dockerfile.read_text(), flags=re.M)
    dockerfile.write_text(text)


def bluegreen(stack: PulumiStack, verb: str, *args: str) -> tuple[float, str]:
    """Runs `bin/bluegreen VERB` (release, rollback) as an operator would; (seconds, output)."""
    began = time.monotonic()
    done = subprocess.run(
        [str(REPO / "bin/bluegreen"), "--stack", stack.stack, "--cwd", str(stack.workdir), verb, *args],
        env=stack.env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise SoakError(f"bin/bluegreen {verb} {' '.join(args)} failed ({done.returncode}):\n{output[-4000:]}")
    return time.monotonic() - began, output


def up_duration(output: str) -> str:
    """Pulumi's own `Duration:` of the update (the CLI also reads config and outputs)."""
    found = re.findall(r"^Duration: (\S+)", output, flags=re.M)
    return found[-1] if found else "?"


def live_answer() -> dict[str, str]:
    for attempt in range(3):  # bounded; the flip is done when the script returns
        try:
            response = requests.get(LIVE, timeout=5)
            if response.status_code == 200:
                body: dict[str, str] = response.json()
                return body
        except requests.RequestException:
            pass
        time.sleep(1 + attempt)
    raise SoakError(f"{LIVE} did not answer 200")


class SoakError(Exception):
    pass


@dataclass
class Release:
    number: int
    color: str
    version: str
    up: str
    seconds: float
    failed: int
    total: int
    counts: Counts

    def line(self) -> str:
        return (f"release {self.number:2d} {self.color:5s} {self.version}: up {self.up:>4s} "
                f"({self.seconds:5.1f}s in all), failed {self.failed}/{self.total} | {self.counts.describe()}")


def soak(releases: int, scratch: Path, env: dict[str, str]) -> list[str]:
    """Returns the problems found (empty: passed)."""
    app = scratch / "app"
    project = scratch / "project"
    project.mkdir()
    shutil.copytree(REPO / "harness/images/testapp", app)
    remove_leftovers(PREFIX)
    stack = PulumiStack(project, env, stack=PREFIX)
    stack.set_config(local_stack_config(
        PREFIX, HTTP_PORT, PREVIEW_PORT,
        dockerHost=env["DOCKER_HOST"],
        activeColor="blue",
        blueBuild={"context": os.path.relpath(app, project)},
        releases={"keep": KEEP},
        healthGate={"deadlineSeconds": 60, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 2},
        medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5},
    ))
    history: list[Release] = []
    problems: list[str] = []
    try:
        set_version(app, "soak-01")
        run = stack.up()  # nothing is live yet: the first deploy, without load
        history.append(checked(Release(1, "blue", "soak-01", up_duration(run.output), run.seconds, 0, 0, counts())))
        print(history[0].line() + " (first deploy, no load yet)", flush=True)
        with Load(LIVE, keepalive_clients=2, fresh_clients=1, rate_per_client=10.0,
                  max_seconds=releases * 240.0 + 600.0, max_requests=500_000) as load:
            for number in range(2, releases + 1):
                version = f"soak-{number:02d}"
                set_version(app, version)
                seen = (load.report.total, load.report.failed)
                seconds, output = bluegreen(stack, "release", "--build", str(app))
                release = checked(Release(number, "blue" if number % 2 else "green", version, up_duration(output),
                                          seconds, 0, 0, counts()))
                release.failed, release.total = load.report.failed - seen[1], load.report.total - seen[0]
                history.append(release)
                print(release.line(), flush=True)
                if release.total == 0:
                    problems.append(f"release {number}: the load sent no request (a bound reached?)")
            failed = sum(r.failed for r in history)
            if failed:
                problems.append(f"{failed} failed requests during the releases; first ones: {load.report.failures[:5]}")
            problems.extend(flatness(history))
            problems.extend(rollback(stack, load, history[releases - 3], idle=other(history[-1].color)))
        print(f"load over the whole soak: {load.report.summary()}", flush=True)
    finally:
        destroy_with_data(stack, PREFIX)
        for image in docker("image", "ls", "-q", "--no-trunc", "--filter", f"reference={APP_REPOSITORY}").split():
            docker("image", "rm", "-f", image, check=False)
    return problems


def checked(release: Release) -> Release:
    """The live route must answer with the release's color and version once its up is done."""
    answer = live_answer()
    if (answer.get("color"), answer.get("version")) != (release.color, release.version):
        raise SoakError(f"release {release.number}: live answers {answer}, expected {release.color} {release.version}")
    return release


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


def rollback(stack: PulumiStack, load: Load, target: Release, idle: str) -> list[str]:
    """Back to release N-2 from the stack history; its images must still be on the host.

    `bin/bluegreen rollback` never touches the live color: release N-2's image comes back on the color that
    was idle, and traffic flips to it.
    """
    seen = (load.report.total, load.report.failed)
    seconds, output = bluegreen(stack, "rollback", str(target.number))
    answer = live_answer()
    time.sleep(1)  # requests in flight during the flip are counted too
    failed, total = load.report.failed - seen[1], load.report.total - seen[0]
    after = counts()
    print(f"rollback to release {target.number} ({target.version}, onto the idle {idle}) with bin/bluegreen rollback: "
          f"up {up_duration(output)} ({seconds:.1f}s in all), failed {failed}/{total}, "
          f"live answers {answer.get('color')} {answer.get('version')} | {after.describe()}", flush=True)
    problems = []
    if (answer.get("color"), answer.get("version")) != (idle, target.version):
        problems.append(f"rollback: live answers {answer}, expected {idle} {target.version}")
    if failed or not total:
        problems.append(f"rollback: {failed} of {total} requests failed: {load.report.failures[:5]}")
    if after.images != KEEP + 2:
        problems.append(f"rollback: {after.images} app images after its prune, expected {KEEP + 2}")
    return problems


def flatness(history: list[Release]) -> list[str]:
    """Every count after the warm-up stays at or below its value at the end of the warm-up."""
    if len(history) <= WARMUP:
        return [f"only {len(history)} releases: too few to judge growth (more than {WARMUP} needed)"]
    base = history[WARMUP - 1].counts
    problems = []
    for name in ("containers", "volumes", "images"):
        limit = getattr(base, name)
        grew = [(r.number, getattr(r.counts, name)) for r in history[WARMUP:] if getattr(r.counts, name) > limit]
        if grew:
            problems.append(f"{name} grew after release {WARMUP} (was {limit}): {grew}")
    if history[-1].counts.images != KEEP + 2:
        problems.append(f"{history[-1].counts.images} app images at the end, expected {KEEP + 2} "
                        f"(the two colors' and releases.keep={KEEP} earlier ones)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--releases", type=int, default=30, help="how many releases (default 30)")
    options = parser.parse_args()
    if options.releases <= WARMUP:
        parser.error(f"--releases must be more than {WARMUP}")
    env = engine_env()  # the built engine and the harness dockerd (started if needed)
    os.environ.update({k: env[k] for k in ("DOCKER_HOST", "PATH", "PULUMI_HOME") if k in env})
    images = subprocess.run([str(REPO / "harness/images.sh")], capture_output=True, text=True, timeout=3600)
    if images.returncode != 0:
        print(f"harness/images.sh failed:\n{images.stderr[-3000:]}", file=sys.stderr)
        return 2
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="medusa-bg-soak-") as scratch:
        try:
            problems = soak(options.releases, Path(scratch), env)
        except SoakError as error:
            problems = [str(error)]
    print(f"soak: {options.releases} releases in {time.monotonic() - began:.0f}s", flush=True)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if not problems:
        print("soak: passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
