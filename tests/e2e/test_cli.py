"""bin/bluegreen for real: status, switch, logs and doctor on a small stack of their own.

Prefix e2ecli, ports 127.0.0.1:24080 (live) / 25080 (preview), so the other e2e stacks can run
beside it. One `pulumi up` (blue v1), one `release` (green v2, blue stays warm), then the verbs
in the order an operator would use them; the commands the CLI prints are run as printed.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.e2e.conftest import measure
from tests.e2e.load import Load
from tests.e2e.project import REPO, PulumiStack, Run, destroy_with_data, docker, local_stack_config, remove_leftovers

PREFIX = "e2ecli"
HTTP_PORT, PREVIEW_PORT = 24080, 25080
PUBLIC = f"http://127.0.0.1:{HTTP_PORT}"
V1, V2 = "medusa-bg/testapp:v1", "medusa-bg/testapp:v2"
BLUEGREEN = str(REPO / "bin/bluegreen")

CONFIG: dict[str, Any] = local_stack_config(
    PREFIX, HTTP_PORT, PREVIEW_PORT,
    activeColor="blue",
    blueImage=V1,
    healthGate={"deadlineSeconds": 30, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 2},
    medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 3},
)


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], workdir: Path) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    stack = PulumiStack(workdir, engine, stack=PREFIX)
    stack.set_config({**CONFIG, "dockerHost": engine["DOCKER_HOST"]})
    run = stack.up()
    measure(f"cli. first up of the e2ecli stack: {run.seconds:.1f}s")
    yield stack
    destroy_with_data(stack, PREFIX)


def bluegreen(stack: PulumiStack, *args: str, code: int = 0) -> Run:
    return run_words(stack, [BLUEGREEN, "--stack", stack.stack, "--cwd", str(stack.workdir), *args], code)


def run_words(stack: PulumiStack, words: list[str], code: int = 0) -> Run:
    began = time.monotonic()
    done = subprocess.run(words, env=stack.env, capture_output=True, text=True, timeout=600, check=False)
    run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - began)
    assert run.returncode == code, f"{shlex.join(words[1:])}: exit {run.returncode}, not {code}:\n{run.output[-4000:]}"
    return run


def status(stack: PulumiStack) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(bluegreen(stack, "status", "--json").stdout)
    return data


def live() -> dict[str, Any]:
    response = requests.get(f"{PUBLIC}/", timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def printed(text: str, label: str) -> list[str]:
    """The command `status` prints after `label:`, as words to run."""
    line = next(line for line in text.splitlines() if line.strip().startswith(f"{label}:"))
    return shlex.split(line.split(":", 1)[1])


def test_status_of_a_fresh_stack_and_a_switch_to_a_color_with_no_image(stack: PulumiStack) -> None:
    run = bluegreen(stack, "status", "--json")
    measure(f"cli. bin/bluegreen status --json: {run.seconds:.1f}s")
    data = json.loads(run.stdout)
    assert data["liveColor"] == "blue" and data["activeColor"] == "blue"
    blue, green = data["colors"]["blue"], data["colors"]["green"]
    assert blue["imageRef"] == V1 and blue["imageId"].startswith("sha256:")
    assert blue["server"] == {"name": "e2ecli-blue-server", "state": "running",
                              "health": blue["server"]["health"], "imageId": blue["imageId"]}
    assert blue["server"]["health"] in ("starting", "healthy")
    assert green["imageRef"] is None and green["server"]["state"] is None and not green["warm"]
    assert data["router"]["state"] == "running"
    assert data["lastUpdate"]["number"] == 1 and data["lastUpdate"]["result"] == "succeeded"
    assert data["backup"] and data["backup"].endswith(".dump"), data["backup"]

    refused = bluegreen(stack, "switch", "green", code=2)
    assert "green has no image on stack e2ecli, so there is nothing warm to switch to" in refused.stderr
    assert status(stack)["lastUpdate"]["number"] == 1, "a refused switch runs no update"


def test_release_then_the_printed_switch_flips_back_under_load(stack: PulumiStack) -> None:
    run = bluegreen(stack, "release", "--image", V2)
    measure(f"cli. bin/bluegreen release {V2} to the idle green: {run.seconds:.1f}s")
    assert live() == {"color": "green", "version": "v2", "mode": "server"}
    text = bluegreen(stack, "status").stdout
    assert "  green live  image medusa-bg/testapp:v2" in text and "  blue  warm  image medusa-bg/testapp:v1" in text
    assert "last release: #2 succeeded" in text and "bluegreen release: green <- medusa-bg/testapp:v2" in text

    switch = printed(text, "flip to the warm blue")
    assert switch == [BLUEGREEN, "--stack", "e2ecli", "--cwd", str(stack.workdir), "switch", "blue"]
    with Load(f"{PUBLIC}/") as load:
        run = run_words(stack, switch)
        time.sleep(1)
    report = load.stop()
    measure(f"cli. the printed `switch blue`: {run.seconds:.1f}s; {report.summary()}")
    assert report.total > 0 and report.failed == 0, report.failures
    assert live() == {"color": "blue", "version": "v1", "mode": "server"}
    assert "switched: blue is live on stack e2ecli (was green)" in run.stdout
    after = status(stack)
    assert after["liveColor"] == "blue" and after["colors"]["green"]["warm"]
    assert after["lastUpdate"]["message"] == f"bluegreen switch: make blue live ({V1}, warm)"
    assert bluegreen(stack, "switch", "blue").stdout.strip() == "blue is already live on stack e2ecli; nothing to do"


def test_switch_refuses_a_color_whose_server_is_stopped(stack: PulumiStack) -> None:
    docker("stop", "-t", "1", f"{PREFIX}-green-server")
    try:
        refused = bluegreen(stack, "switch", "green", code=2)
        assert "green is not warm: its server container e2ecli-green-server is exited" in refused.stderr
        assert "rollback --dry-run" in refused.stderr
        assert status(stack)["colors"]["green"]["warm"] is False
    finally:
        docker("start", f"{PREFIX}-green-server")
    assert live()["color"] == "blue"


def test_logs_of_a_color(stack: PulumiStack) -> None:
    run = bluegreen(stack, "logs", "blue", "server", "--tail", "5")
    assert "[testapp v1 blue server]" in run.output, run.output
    assert len(run.output.splitlines()) <= 5
    worker = bluegreen(stack, "logs", "blue", "worker")
    assert "[testapp v1 blue worker]" in worker.output, worker.output
    missing = bluegreen(stack, "logs", "green", "worker", code=2)
    assert "green's worker container e2ecli-green-worker does not exist" in missing.stderr


def test_doctor_passes_on_a_healthy_stack_and_names_a_taken_port(stack: PulumiStack) -> None:
    run = bluegreen(stack, "doctor")
    measure(f"cli. bin/bluegreen doctor: {run.seconds:.1f}s")
    lines = run.stdout.splitlines()
    assert lines[-1] == "all checks passed", run.stdout
    names = [line.split()[1] for line in lines[:-1] if not line.startswith(" ")]
    assert names == ["engine", "stack", "docker", "port", "port", "docker", "disk"], run.stdout
    assert f"127.0.0.1:{HTTP_PORT} held by our router (e2ecli-router)" in run.stdout
    assert "e2ecli-router resolves e2ecli-" in run.stdout and "on e2ecli-net" in run.stdout

    # Another process on the preview port the config names: FAIL, with the way to find it.
    config_file = stack.workdir / f"Pulumi.{PREFIX}.yaml"
    kept = config_file.read_text()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = yaml.safe_load(kept)
        config["config"]["medusa-bluegreen:router"]["previewPort"] = port
        config_file.write_text(yaml.safe_dump(config))
        try:
            failed = bluegreen(stack, "doctor", code=1)
        finally:
            config_file.write_text(kept)
    assert f"FAIL  port preview  127.0.0.1:{port} is in use by a process outside Docker" in failed.stdout
    assert f"fix: find it: ss -ltnp 'sport = :{port}'" in failed.stdout
    assert failed.stdout.rstrip().endswith("1 check failed")
