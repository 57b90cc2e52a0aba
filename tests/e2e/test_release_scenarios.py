"""Real `pulumi up` against a real Docker engine: the release scenarios of the product.

The scenarios share one stack to save time, in the order of a real deployment's life, but none
relies on an earlier one's outcome: each starts with `given(...)`, which declares the state it
needs and brings the stack there (a no-op when it already is), so one failure stays one failure.
The test app (harness/images/testapp) stands in for Medusa.
"""

from __future__ import annotations

import json
import secrets as secrets_module
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from core.router_config import METRICS_PATH, PREVIEW_TOKEN_HEADER, PROBE_PORT
from core.settings import MaintenanceSettings
from core.traffic_metrics import Scrape, parse
from tests.e2e.conftest import measure
from tests.e2e.load import Load
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

PREFIX = "e2e"
V1, V2 = "medusa-bg/testapp:v1", "medusa-bg/testapp:v2"
FLAKY = "medusa-bg/testapp:errors-10pct"  # healthy to every check, 500 on every 10th real request
HTTP_PORT = 18080
PREVIEW_PORT = 19080
PUBLIC = f"http://127.0.0.1:{HTTP_PORT}"

BASE_CONFIG: dict[str, Any] = local_stack_config(
    PREFIX, HTTP_PORT, PREVIEW_PORT,
    activeColor="blue",
    blueImage=V1,
    healthGate={"deadlineSeconds": 15, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 3},
    medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5},
    backups={"keep": 2},
)


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], workdir: Path) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    stack = PulumiStack(workdir, engine)
    stack.set_config({**BASE_CONFIG, "dockerHost": engine["DOCKER_HOST"]})
    yield stack
    destroy_with_data(stack, PREFIX)


# A request to a color whose container died must fail within this bound (the router's
# resolver validity plus its connect timeout, 1 s each, with room for a slow machine).
DEAD_COLOR_FAILS_WITHIN_SECONDS = 3.0


def configure(stack: PulumiStack, **changes: Any) -> None:
    stack.set_config({**BASE_CONFIG, "dockerHost": stack.env["DOCKER_HOST"], **changes})


def _running_image(container: str) -> str | None:
    """The image label of a running container, or None when it is missing or not running."""
    fmt = '{{.State.Status}} {{index .Config.Labels "medusa-bluegreen.image"}}'
    status, _, image = docker("inspect", "--format", fmt, container, check=False).partition(" ")
    return image if status == "running" else None


def _already(active: str, images: dict[str, str]) -> bool:
    try:
        body = live()
    except (requests.RequestException, AssertionError, ValueError):
        return False
    version = images[active].rsplit(":", 1)[-1]
    if body != {"color": active, "version": version, "mode": "server"}:
        return False
    expected = {f"{PREFIX}-{color}-server": image for color, image in images.items()}
    expected[f"{PREFIX}-{active}-worker"] = images[active]
    absent = [f"{PREFIX}-{color}-server" for color in ("blue", "green") if color not in images]
    return all(_running_image(name) == image for name, image in expected.items()) and not any(
        container_id(name) for name in absent
    )


def given(stack: PulumiStack, active: str, blue: str | None = None, green: str | None = None) -> None:
    """Brings the stack to: `active` live, each named color running its image, nothing else.

    Cheap when the stack is already there (a few docker inspects); otherwise one
    `pulumi up --refresh`, which also repairs whatever an earlier scenario broke.
    """
    images = {color: image for color, image in (("blue", blue), ("green", green)) if image}
    assert active in images, "the active color needs an image"
    config = {key: value for key, value in BASE_CONFIG.items() if key not in ("blueImage", "greenImage")}
    stack.set_config({**config, "dockerHost": stack.env["DOCKER_HOST"], "activeColor": active,
                      **{f"{color}Image": image for color, image in images.items()}})
    if not _already(active, images):
        stack.up("--refresh")
    assert _already(active, images), "could not reach the scenario's starting state"


def live() -> dict[str, Any]:
    response = requests.get(f"{PUBLIC}/", timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["X-Bluegreen-Color"] == body["color"]
    return body


def assert_clean(load: Load, label: str) -> None:
    report = load.stop()
    measure(f"{label}: {report.summary()}")
    assert report.total > 0
    assert report.failed == 0, report.failures


def test_a_first_release_on_blue(stack: PulumiStack) -> None:
    run = stack.up()
    measure(f"a. first release on a fresh host: pulumi up {run.seconds:.1f}s")
    assert live() == {"color": "blue", "version": "v1", "mode": "server"}
    outputs = stack.outputs()
    assert outputs["liveColor"] == "blue"
    assert outputs["lastGateResult"]["healthy"] is True
    assert outputs["images"]["blue"].startswith("sha256:")
    worker = docker("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", f"{PREFIX}-blue-worker")
    assert "MEDUSA_WORKER_MODE=worker" in worker.split()


class WorkerWatch:
    """Samples which workers of the stack run, every POLL seconds, while a release goes on."""

    POLL = 0.2

    def __init__(self) -> None:
        self.samples: list[tuple[float, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            names = docker("ps", "--filter", f"name=^{PREFIX}-", "--filter", "label=medusa-bluegreen.role=worker",
                           "--format", "{{.Names}}", check=False).split()
            self.samples.append((time.monotonic(), sorted(names)))
            self._stop.wait(self.POLL)

    def __enter__(self) -> WorkerWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def most_at_once(self) -> int:
        return max(len(names) for _, names in self.samples)

    def longest_gap(self) -> float:
        """The longest stretch of samples with no worker running, in seconds."""
        longest, began = 0.0, None
        for at, names in self.samples:
            if not names and began is None:
                began = at
            elif names and began is not None:
                longest, began = max(longest, at - began), None
        return longest


def test_b_release_to_green_under_load_drops_nothing(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1)
    shared = {name: container_id(f"{PREFIX}-{name}") for name in ("router", "postgres", "redis")}
    configure(stack, activeColor="green", greenImage=V2)
    with Load(f"{PUBLIC}/") as load, WorkerWatch() as workers:
        run = stack.up()
        time.sleep(1)
    assert_clean(load, f"b. release to green under load: pulumi up {run.seconds:.1f}s, "
                       f"{load.report.flip_summary('green')}; workers: at most {workers.most_at_once()} at once, "
                       f"none for {workers.longest_gap():.1f}s (rule 7c)")
    assert workers.most_at_once() == 1, workers.samples
    assert workers.samples[0][1] == [f"{PREFIX}-blue-worker"] and workers.samples[-1][1] == [f"{PREFIX}-green-worker"]
    assert load.report.colors["blue"] > 0 and load.report.colors["green"] > 0
    assert live()["color"] == "green" and live()["version"] == "v2"
    assert {name: container_id(f"{PREFIX}-{name}") for name in shared} == shared
    assert container_id(f"{PREFIX}-blue-server") is not None, "the old color stays warm"
    assert container_id(f"{PREFIX}-blue-worker") is None, "the old color's worker is stopped"


def test_b2_a_release_that_also_changes_the_env_replaces_the_live_color_only_after_the_flip(
    stack: PulumiStack,
) -> None:
    """A new env replaces both colors' containers; the one still live must wait for the flip."""
    given(stack, "blue", blue=V1)
    old_blue = container_id(f"{PREFIX}-blue-server")
    medusa = {**BASE_CONFIG["medusa"], "env": {"SHOP_MODE": "b2"}}
    configure(stack, activeColor="green", blueImage=V1, greenImage=V2, medusa=medusa)
    with Load(f"{PUBLIC}/") as load:
        run = stack.up()
        time.sleep(1)
    assert_clean(load, f"b2. release with an env change (both colors replaced) under load: pulumi up "
                       f"{run.seconds:.1f}s, {load.report.flip_summary('green')}")
    assert live()["color"] == "green" and live()["version"] == "v2"
    assert container_id(f"{PREFIX}-blue-server") not in (None, old_blue), "blue was replaced with the new env"


def test_c_never_healthy_release_fails_and_traffic_stays(stack: PulumiStack) -> None:
    given(stack, "green", blue=V1, green=V2)
    configure(stack, activeColor="blue", blueImage="medusa-bg/testapp:never-healthy",
              greenImage=V2)
    with Load(f"{PUBLIC}/") as load:
        run = stack.up(check=False)
    assert run.returncode != 0
    assert "health gate failed for color blue" in run.output, run.output[-3000:]
    assert "last status: 503" in run.output
    assert_clean(load, f"c. never-healthy release refused (pulumi up failed after {run.seconds:.1f}s)")
    assert set(load.report.colors) == {"green"}
    assert live()["color"] == "green"


def test_c2_failed_migration_stops_the_release_before_the_flip(stack: PulumiStack) -> None:
    given(stack, "green", blue=V1, green=V2)
    blue_server = container_id(f"{PREFIX}-blue-server")
    configure(stack, activeColor="blue", blueImage="medusa-bg/testapp:badmigrate",
              greenImage=V2)
    with Load(f"{PUBLIC}/") as load:
        run = stack.up(check=False)
    assert run.returncode != 0
    assert 'column "handle" of relation "product" already exists' in run.output, run.output[-3000:]
    assert "blue-migrate" in run.output
    assert_clean(load, f"c2. failed migration refused before the flip (pulumi up failed after {run.seconds:.1f}s)")
    assert set(load.report.colors) == {"green"}
    assert container_id(f"{PREFIX}-blue-server") == blue_server, "the server waits for its migration"
    backups = docker("exec", f"{PREFIX}-postgres", "ls", "/backups").split()
    assert any("badmigrate" in name for name in backups), "the backup ran before the migration"
    assert live()["color"] == "green"


PREVIEW_TOKEN = "e2e-preview-token-0123456789abcdef"


def test_c3_the_preview_token_stays_out_of_the_gate_the_app_and_the_state(stack: PulumiStack) -> None:
    """The gate probes inside the router (no token needed); a person previewing with the token
    gets the idle color, which never sees the token; a failed gate's message never holds it."""
    given(stack, "green", blue=V1, green=V2)
    configure(stack, activeColor="blue", blueImage=V2, greenImage=V2)
    stack.run("config", "set", "--secret", "previewToken", PREVIEW_TOKEN)
    stack.up()
    preview = f"http://127.0.0.1:{PREVIEW_PORT}/_debug/headers"
    assert requests.get(preview, timeout=5).status_code == 404
    seen = requests.get(preview, headers={PREVIEW_TOKEN_HEADER: PREVIEW_TOKEN}, timeout=5)
    assert seen.status_code == 200, seen.text
    assert PREVIEW_TOKEN not in seen.text and PREVIEW_TOKEN_HEADER.lower() not in seen.text.lower()
    assert PREVIEW_TOKEN not in stack.run("stack", "export").stdout

    configure(stack, activeColor="green", blueImage=V2, greenImage="medusa-bg/testapp:never-healthy")
    stack.run("config", "set", "--secret", "previewToken", PREVIEW_TOKEN)
    failed = stack.up(check=False)
    assert failed.returncode != 0 and "health gate failed for color green" in failed.output, failed.output[-3000:]
    assert f"via {PREFIX}-router" in failed.output
    assert PREVIEW_TOKEN not in failed.output
    assert live()["color"] == "blue"


def test_c4_every_extra_check_must_pass_before_the_flip(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1)
    checks = [
        {"path": "/store/products", "expectStatus": 400, "expectBody": "Publishable API key"},
        {"path": "/app", "expectBody": "Medusa Admin"},
    ]
    gate = {**BASE_CONFIG["healthGate"], "deadlineSeconds": 8}
    release = {"activeColor": "green", "blueImage": V1, "greenImage": V2}
    try:
        configure(stack, **release, healthGate={**gate, "checks": [*checks, {"path": "/no-such-route"}]})
        with Load(f"{PUBLIC}/") as load:
            refused = stack.up(check=False)
        assert refused.returncode != 0
        assert "health check 3 (/no-such-route -> 200) failed for color green" in refused.output, refused.output[-3000:]
        assert "last status: 404" in refused.output
        assert_clean(load, f"c4. a release whose third check never passes refused (pulumi up failed after "
                           f"{refused.seconds:.1f}s)")
        assert set(load.report.colors) == {"blue"} and live()["color"] == "blue"
        configure(stack, **release, healthGate={**gate, "checks": checks})
        with Load(f"{PUBLIC}/") as load:
            run = stack.up()
        assert_clean(load, f"c4. the same release with its two passing checks: pulumi up {run.seconds:.1f}s")
        assert live()["color"] == "green"
    finally:
        configure(stack, activeColor="blue", blueImage=V1, greenImage=V2)


def test_d_manual_switch_back_is_fast_and_reuses_the_warm_color(stack: PulumiStack) -> None:
    given(stack, "green", blue=V1, green=V2)
    warm_server = container_id(f"{PREFIX}-blue-server")
    assert warm_server is not None
    configure(stack, activeColor="blue", blueImage=V1, greenImage=V2)
    with Load(f"{PUBLIC}/") as load:
        run = stack.up()
        time.sleep(1)
    assert_clean(load, f"d. manual switch to warm blue: pulumi up {run.seconds:.1f}s, "
                       f"{load.report.flip_summary('blue')}")
    assert live() == {"color": "blue", "version": "v1", "mode": "server"}
    assert container_id(f"{PREFIX}-blue-server") == warm_server, "warm color must not be recreated"


def test_e1_router_removed_out_of_band_recovers_with_refresh(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1, green=V2)
    docker("rm", "-f", f"{PREFIX}-router")
    run = stack.up("--refresh")
    measure(f"e1. router removed out of band: recovered by pulumi up --refresh in {run.seconds:.1f}s")
    assert live()["color"] == "blue"


def test_e2_router_crash_loop_file_is_quarantined(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1, green=V2)
    router = f"{PREFIX}-router"
    docker("exec", router, "sh", "-c", "echo 'this is { not nginx' > /etc/nginx/conf.d/zz-broken.conf")
    docker("restart", router)
    began = time.monotonic()
    while True:
        try:
            body = live()
            break
        except (requests.RequestException, AssertionError):
            assert time.monotonic() - began < 30, docker("logs", "--tail", "30", router)
            time.sleep(0.5)
    measure(f"e2. router restarted with a broken file in its config volume: serving again after "
            f"{time.monotonic() - began:.1f}s (file quarantined)")
    assert body["color"] == "blue"
    listing = docker("exec", router, "ls", "/etc/nginx/conf.d/bluegreen/quarantine")
    assert "zz-broken.conf" in listing
    stack.up("--refresh")
    assert live()["color"] == "blue"


def test_e3_killed_live_server_fails_fast_then_recovers_with_refresh(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1, green=V2)
    docker("kill", f"{PREFIX}-blue-server")
    # A manually killed container is not restarted by its restart policy: traffic is down, and
    # every request says so quickly instead of hanging on the dead container's address.
    answers: list[tuple[int, float]] = []
    killed = time.monotonic()
    while time.monotonic() - killed < 4 and len(answers) < 40:
        began = time.monotonic()
        status = requests.get(f"{PUBLIC}/", timeout=10).status_code
        answers.append((status, time.monotonic() - began))
        time.sleep(0.1)
    slowest = max(seconds for _, seconds in answers)
    measure(f"e3. live server killed: {len(answers)} requests in the 4 s after, statuses "
            f"{sorted({status for status, _ in answers})}, slowest answer {slowest:.2f}s "
            f"(was a 504 after 5 s)")
    assert all(500 <= status < 600 for status, _ in answers), answers
    assert slowest < DEAD_COLOR_FAILS_WITHIN_SECONDS, answers
    assert requests.get(f"{PUBLIC}/_bluegreen/health", timeout=5).status_code == 200
    run = stack.up("--refresh")
    # The recreated server has a new address; the router learns it at its next re-resolve (1 s).
    done = time.monotonic()
    while time.monotonic() - done < DEAD_COLOR_FAILS_WITHIN_SECONDS:
        if requests.get(f"{PUBLIC}/", timeout=5).status_code == 200:
            break
        time.sleep(0.05)
    serving = time.monotonic() - done
    measure(f"e3. live server killed: recovered by pulumi up --refresh in {run.seconds:.1f}s, "
            f"live serving {serving:.2f}s after it returned")
    assert live()["color"] == "blue"
    # The provider's refresh sees a container that must run but does not, and starts it again.
    assert docker("inspect", "--format", "{{.State.Status}}", f"{PREFIX}-blue-server") == "running"


def test_e4_release_from_both_colors_running(stack: PulumiStack) -> None:
    # The seed system could not deploy from this state; here it is the normal warm state.
    given(stack, "blue", blue=V1, green=V2)
    for color in ("blue", "green"):
        state = docker("inspect", "--format", "{{.State.Status}}", f"{PREFIX}-{color}-server")
        assert state == "running", color
    configure(stack, activeColor="green", greenImage=V1)
    with Load(f"{PUBLIC}/") as load:
        run = stack.up("--refresh")
        time.sleep(1)
    assert_clean(load, f"e4. release to green with both colors running: pulumi up --refresh {run.seconds:.1f}s, "
                       f"{load.report.flip_summary('green')}")
    assert live() == {"color": "green", "version": "v1", "mode": "server"}


def test_f_noop_changes_nothing_and_preview_names_only_the_changed_color(stack: PulumiStack) -> None:
    given(stack, "green", blue=V1, green=V1)
    stack.run("preview", "--expect-no-changes")
    run = stack.run("refresh", "--yes", "--expect-no-changes")
    measure(f"f. refresh of a healthy stack: no drift ({run.seconds:.1f}s)")
    stack.run("preview", "--expect-no-changes")
    configure(stack, activeColor="green", greenImage=V1, blueImage=V2)
    preview = json.loads(stack.run("preview", "--json").stdout)
    changed = [
        step["urn"].rsplit("::", 1)[-1]
        for step in preview["steps"]
        if step["op"] != "same" and not step["urn"].endswith("pulumi:pulumi:Stack")
    ]
    measure(f"f. preview after changing the idle color's image names: {sorted(changed)}")
    assert changed
    assert all(name.startswith("blue-") for name in changed), changed
    configure(stack, activeColor="green", greenImage=V1)
    stack.run("preview", "--expect-no-changes")


def helper(stack: PulumiStack, verb: str, *args: str) -> Run:
    began = time.monotonic()
    done = subprocess.run(
        [str(REPO / "bin/bluegreen"), "--stack", stack.stack, "--cwd", str(stack.workdir), verb, *args],
        env=stack.env, capture_output=True, text=True, timeout=900, check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - began, ("bin/bluegreen", verb, *args))
    stack.runs.append(run)
    assert run.returncode == 0, f"bin/bluegreen {verb} failed ({run.returncode}):\n{run.output[-4000:]}"
    return run


def test_f2_release_helper_then_rollback_from_history(stack: PulumiStack) -> None:
    given(stack, "green", blue=V1, green=V1)
    assert live() == {"color": "green", "version": "v1", "mode": "server"}
    with Load(f"{PUBLIC}/") as load:
        run = helper(stack, "release", "--image", V2)
        time.sleep(1)
    assert_clean(load, f"f2. bin/bluegreen release v2 to the idle color (blue): {run.seconds:.1f}s, "
                       f"{load.report.flip_summary('blue')}")
    assert live() == {"color": "blue", "version": "v2", "mode": "server"}
    with Load(f"{PUBLIC}/") as load:
        run = helper(stack, "rollback")
        time.sleep(1)
    assert_clean(load, f"f2. bin/bluegreen rollback from the stack history: {run.seconds:.1f}s, "
                       f"{load.report.flip_summary('green')}")
    assert live() == {"color": "green", "version": "v1", "mode": "server"}
    stack.run("preview", "--expect-no-changes")


def test_f3_backups_keep_the_newest_and_prune_the_rest(stack: PulumiStack) -> None:
    given(stack, "green", blue=V1, green=V1)
    made = []
    for active, green in (("blue", V1), ("green", V2)):  # blue to v2, then green to v2
        configure(stack, activeColor=active, blueImage=V2, greenImage=green)
        stack.up()
        made.append(stack.outputs()["backup"])
    dumps = [n for n in docker("exec", f"{PREFIX}-postgres", "ls", "/backups").split() if n.endswith(".dump")]
    measure(f"f3. backups.keep=2: after two releases the volume holds {len(dumps)} dump(s)")
    assert sorted(dumps) == sorted(made), (dumps, made)


def test_f4_no_secret_value_in_the_state_or_any_run_output(stack: PulumiStack) -> None:
    """Everything a user or a CI log sees: every pulumi run of this module so far, the state as
    `pulumi stack export` writes it, the stack's outputs without --show-secrets, and the logs of
    every container the stack runs. The secrets searched for are the generated ones and a user's
    own (set the documented way, from stdin), deployed by an up of this scenario."""
    given(stack, "green", blue=V1, green=V1)
    user_secrets = {"previewToken": PREVIEW_TOKEN, "stripeApiKey": f"sk_test_e2e{secrets_module.token_hex(12)}",
                    "extraSecretEnv.E2E_PARTNER_TOKEN": secrets_module.token_hex(16)}
    try:
        for key, value in user_secrets.items():
            stack.run("config", "set", "--secret", "--path", key, stdin=value)
        stack.up()
        env = docker("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", f"{PREFIX}-green-server")
        # A bare bool: pytest would print both sides of an `in`, the app's whole env with them.
        reached = f"E2E_PARTNER_TOKEN={user_secrets['extraSecretEnv.E2E_PARTNER_TOKEN']}" in env.splitlines()
        assert reached, "the user's secret never reached the app, so its absence below would prove nothing"
        secrets = {**stack.generated_secrets(), **user_secrets}
        assert {"postgres-password", "redis-password", "meilisearch-master-key", "jwt-secret",
                "cookie-secret"} <= secrets.keys(), secrets.keys()
        seen = {
            "pulumi stack export": stack.run("stack", "export").stdout,
            "pulumi stack output --json": stack.run("stack", "output", "--json").stdout,
        }
        containers = docker("ps", "-a", "--filter", f"name=^{PREFIX}-", "--format", "{{.Names}}").split()
        assert f"{PREFIX}-router" in containers, containers
        seen.update({f"docker logs {name}": _logs(name) for name in containers})
        # Runs that asked for the secrets (--show-secrets) are the only ones allowed to show them.
        runs = {f"run {i}: {' '.join(run.args[:2])}": run.output
                for i, run in enumerate(stack.runs) if "--show-secrets" not in run.args}
        seen.update(runs)
        measure(f"f4. {len(secrets)} secret values searched in the state, the outputs, {len(containers)} "
                f"containers' logs and {len(runs)} run outputs")
        leaks = [f"{name} in `{where}`" for name, value in secrets.items() for where, text in seen.items()
                 if value in text]
        assert not leaks, leaks
    finally:
        # Back to the shared config (set_config drops the secrets) and a stack without them, so
        # the next scenario starts from what it declares.
        configure(stack, activeColor="green", blueImage=V1, greenImage=V1)
        stack.up()


def _logs(container: str) -> str:
    # Both streams: an app logs to either, and project.docker keeps only stdout.
    done = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def _nginx_workers() -> set[str]:
    """The router's nginx worker pids: a reload or restart starts new ones (a worker of an earlier
    reload may still be finishing its connections, so compare with <=, not ==)."""
    found = docker("exec", f"{PREFIX}-router", "sh", "-c",
                   # Anchored, so the grep and its shell (whose argv holds the pattern) never match.
                   "grep -l '^nginx: worker process' /proc/[0-9]*/cmdline 2>/dev/null || true")
    return set(found.split())


def test_h_maintenance_holds_the_storefront_through_a_release_without_a_reload(stack: PulumiStack) -> None:
    """maintenance.enabled by `pulumi up`: the storefront answers 503 with Retry-After and the
    page while /health and the admin API keep answering; a release made meanwhile is gated, flipped
    and checked as usual; off again, the storefront serves the new color. The router container
    and its nginx workers are the same throughout, and /health never failed."""
    given(stack, "blue", blue=V1)
    router = container_id(f"{PREFIX}-router")
    workers = _nginx_workers()
    assert workers, "no nginx worker found in the router"
    # Only `enabled` changes: the Retry-After value is part of the rendered config, so changing
    # it is a config apply (one reload), which is not what this scenario is about.
    maintenance = {"enabled": True}
    retry_after = str(MaintenanceSettings().retry_after_seconds)
    try:
        with Load(f"{PUBLIC}/health") as load:
            configure(stack, maintenance=maintenance)
            on = stack.up()
            shop = requests.get(f"{PUBLIC}/store/products", timeout=5)
            assert (shop.status_code, shop.headers.get("Retry-After")) == (503, retry_after), shop.text[:200]
            assert "down for maintenance" in shop.text
            assert requests.get(f"{PUBLIC}/admin/users/me", timeout=5).status_code != 503
            configure(stack, maintenance=maintenance, activeColor="green", blueImage=V1, greenImage=V2)
            release = stack.up()
            assert requests.get(f"{PUBLIC}/", timeout=5).status_code == 503
            configure(stack, maintenance={**maintenance, "enabled": False}, activeColor="green",
                      blueImage=V1, greenImage=V2)
            off = stack.up()
            time.sleep(1)
        assert_clean(load, f"h. maintenance on {on.seconds:.1f}s, release in maintenance {release.seconds:.1f}s, "
                           f"off {off.seconds:.1f}s; /health")
        assert live() == {"color": "green", "version": "v2", "mode": "server"}
        assert container_id(f"{PREFIX}-router") == router, "the router container was replaced"
        logs = subprocess.run(["docker", "logs", f"{PREFIX}-router"], capture_output=True, text=True,
                              timeout=60, check=False)
        notices = [line for line in (logs.stdout + logs.stderr).splitlines()
                   if "[notice]" in line or "[alert]" in line or "[emerg]" in line]
        assert _nginx_workers() <= workers, "new nginx worker processes:\n" + "\n".join(notices[-20:])
    finally:
        configure(stack, activeColor="green", blueImage=V1, greenImage=V2)
        stack.up()


def router_metrics() -> Scrape:
    """The router's per-color figures, read the way an operator on the host would."""
    return parse(docker("exec", f"{PREFIX}-router", "curl", "-fsS", f"http://127.0.0.1:{PROBE_PORT}{METRICS_PATH}"))


def wait_for_metrics(enough: Any, what: str, timeout: float = 15.0) -> Scrape:
    deadline = time.monotonic() + timeout
    while True:
        try:
            scrape = router_metrics()
            if enough(scrape):
                return scrape
        except subprocess.CalledProcessError:
            scrape = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s; last scrape: {scrape and scrape.series}")
        time.sleep(0.3)


def test_i_the_router_counts_each_colors_traffic_across_a_flip_and_its_own_restart(stack: PulumiStack) -> None:
    """Requests before a warm switch count for blue, after it for green; a restarted router
    container (its exporter started again by `router.sh boot`) counts from zero."""
    given(stack, "blue", blue=V1, green=V2)
    before = router_metrics()
    for _ in range(20):
        assert live()["color"] == "blue"
    configure(stack, activeColor="green", blueImage=V1, greenImage=V2)
    stack.up()
    for _ in range(30):
        assert live()["color"] == "green"
    after = wait_for_metrics(
        lambda s: s.of("live", "green").minus(before.of("live", "green")).by_class.get("2xx", 0) >= 30,
        "30 green requests counted",
    )
    measure(f"i. metrics: {after.of('live', 'green').total} live green, {after.of('live', 'blue').total} live blue, "
            f"{after.dropped} dropped")
    blue = after.of("live", "blue").minus(before.of("live", "blue"))
    assert (blue.total, blue.by_class.get("2xx")) == (20, 20), blue.by_class
    assert after.dropped == 0

    docker("restart", f"{PREFIX}-router")
    for _ in range(60):  # the router is back when the storefront answers again
        try:
            if requests.get(f"{PUBLIC}/", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    for _ in range(5):
        assert live()["color"] == "green"
    restarted = wait_for_metrics(lambda s: s.of("live", "green").total >= 5, "the restarted router's exporter")
    assert restarted.of("live", "green").total < after.of("live", "green").total, "the counters did not restart"


def test_j1_a_healthy_color_passes_the_post_flip_analysis_on_real_traffic(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1)
    analysis = {"windowSeconds": 6, "intervalSeconds": 1}
    try:
        configure(stack, activeColor="green", blueImage=V1, greenImage=V2, analysis=analysis)
        with Load(f"{PUBLIC}/") as load:
            run = stack.up()
        verdict = stack.outputs()["postFlipAnalysis"]
        assert_clean(load, f"j1. release with a {analysis['windowSeconds']} s analysis: pulumi up {run.seconds:.1f}s, "
                           f"{verdict['requests']} green requests judged in {verdict['watched_seconds']} s")
        assert verdict["healthy"] is True and verdict["color"] == "green"
        assert verdict["requests"] >= 20 and verdict["server_errors"] == 0
        assert verdict["watched_seconds"] >= analysis["windowSeconds"]
        assert live()["color"] == "green"
    finally:
        configure(stack, activeColor="green", blueImage=V1, greenImage=V2)


def test_j2_a_color_failing_10_percent_of_real_requests_is_flipped_back(stack: PulumiStack) -> None:
    """It passes the health gate and the post-switch check (/health is fine); the analysis sees
    its real traffic answer 5xx above the 5% default and flips back to the warm blue."""
    given(stack, "blue", blue=V1)
    try:
        configure(stack, activeColor="green", blueImage=V1, greenImage=FLAKY, analysis={"windowSeconds": 60})
        with Load(f"{PUBLIC}/") as load:
            run = stack.up(check=False)
            time.sleep(1)
        assert run.returncode != 0, run.output[-3000:]
        assert "post-flip analysis: green failed on real traffic" in run.output, run.output[-3000:]
        assert "answered 5xx" in run.output and "rolled back" in run.output, run.output[-3000:]
        assert live()["color"] == "blue"
        report = load.stop()
        # Blue never answers 5xx, so every failed request is one green answered.
        saw_green = report.colors["green"] + report.failed
        window = run.output.split("within ", 1)[1].split(" s of the flip", 1)[0]
        measure(f"j2. 10%-failing green flipped back by the analysis: pulumi up failed after {run.seconds:.1f}s, "
                f"{saw_green} requests saw green ({report.failed} of them failed), "
                f"analysis window until the verdict {window} s (of 60); {report.summary()}")
        assert saw_green > 0 and report.failed > 0
        assert all("from green" in failure for failure in report.failures), report.failures
    finally:
        configure(stack, activeColor="blue", blueImage=V1)
        stack.up()


# Canary shares are measured over this many clients, one request each, told apart by user agent
# (through Docker's port proxy they all share one address). A client's bucket is a hash, so the
# share is binomial around the weight: at most 2.5 points of standard deviation with 400 clients,
# and CANARY_TOLERANCE is more than three of them. The hash is deterministic: no flake.
CANARY_CLIENTS = [f"shopper-{n}" for n in range(400)]
CANARY_TOLERANCE = 0.08


def canary_colors() -> dict[str, str]:
    seen = {}
    with requests.Session() as session:
        for agent in CANARY_CLIENTS:
            response = session.get(f"{PUBLIC}/", headers={"User-Agent": agent}, timeout=5)
            assert response.status_code == 200, response.text
            seen[agent] = response.json()["color"]
    return seen


def green_share(colors: dict[str, str]) -> float:
    return sum(color == "green" for color in colors.values()) / len(colors)


def test_k1_a_canary_in_steps_under_load_then_everyone(stack: PulumiStack) -> None:
    """10 % then 50 % of clients on green, each client sticky, blue still live with its worker;
    then the release without a canary sends everyone to green. No request fails throughout."""
    given(stack, "blue", blue=V1)
    release = {"activeColor": "green", "blueImage": V1, "greenImage": V2}
    steps = []
    try:
        with Load(f"{PUBLIC}/") as load:
            for weight in (10, 50):
                configure(stack, **release, canary={"weight": weight})
                run = stack.up()
                colors = canary_colors()
                steps.append(f"{weight} %: {green_share(colors):.1%} of clients on green (up {run.seconds:.1f}s)")
                assert abs(green_share(colors) - weight / 100) <= CANARY_TOLERANCE, steps[-1]
                assert canary_colors() == colors, "a client changed color within a step"
                assert stack.outputs()["liveColor"] == "blue"
                assert container_id(f"{PREFIX}-blue-worker") and not container_id(f"{PREFIX}-green-worker")
            configure(stack, **release)
            run = stack.up()
            steps.append(f"everyone: up {run.seconds:.1f}s")
            time.sleep(1)
        assert_clean(load, "k1. canary " + "; ".join(steps) + "; background load")
        assert set(canary_colors().values()) == {"green"}
        assert container_id(f"{PREFIX}-green-worker") and not container_id(f"{PREFIX}-blue-worker")
        assert stack.outputs()["liveColor"] == "green" and "canary" not in stack.outputs()
    finally:
        configure(stack, **release)


def test_k2_an_aborted_canary_sends_everyone_back_at_once(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1)
    release = {"activeColor": "green", "blueImage": V1, "greenImage": V2}
    try:
        configure(stack, **release, canary={"weight": 20})
        stack.up()
        assert green_share(canary_colors()) > 0
        with Load(f"{PUBLIC}/") as load:
            configure(stack, **release, canary={"weight": 0})
            abort = stack.up()
        assert_clean(load, f"k2. canary aborted (20 % -> 0 %): pulumi up {abort.seconds:.1f}s")
        assert set(canary_colors().values()) == {"blue"}
        assert stack.outputs()["canary"] == {"color": "green", "weight": 0}
        assert container_id(f"{PREFIX}-blue-worker") and not container_id(f"{PREFIX}-green-worker")
    finally:
        configure(stack, activeColor="blue", blueImage=V1, greenImage=V2)
        stack.up()


def replicas_answering(count: int = 200) -> dict[str, int]:
    """Which server container (its host name) answered each of `count` requests, by color."""
    seen: dict[str, int] = {}
    with requests.Session() as session:
        for _ in range(count):
            body = session.get(f"{PUBLIC}/whoami", timeout=5).json()
            key = f"{body['color']}/{body['replica']}"
            seen[key] = seen.get(key, 0) + 1
    return seen


def test_l_two_replicas_share_the_live_traffic(stack: PulumiStack) -> None:
    given(stack, "blue", blue=V1)
    release = {"activeColor": "green", "blueImage": V1, "greenImage": V2,
               "medusa": {**BASE_CONFIG["medusa"], "serverReplicas": 2}}
    try:
        configure(stack, **release)
        with Load(f"{PUBLIC}/") as load:
            run = stack.up()
        assert "green-server-2-gate" in run.stdout, "each replica has its own gate (rule 7b)"
        spread = replicas_answering()
        assert_clean(load, f"l. release to 2 green replicas: pulumi up {run.seconds:.1f}s, then 200 requests "
                           f"answered by {spread}")
        assert len(spread) == 2 and all(key.startswith("green/") for key in spread), spread
        # Round robin over two peers: half each; a quarter leaves room for a retried request.
        assert min(spread.values()) >= 50, spread
        assert container_id(f"{PREFIX}-blue-server-2"), "the warm color keeps as many servers"
        # One replica dies: the other serves the color alone (the router retries the refused
        # connection on it and drops the address once Docker's DNS does).
        with Load(f"{PUBLIC}/") as load:
            time.sleep(1)
            docker("kill", f"{PREFIX}-green-server-2")
            time.sleep(3)
        assert_clean(load, "l2. one of two green replicas killed under load")
        assert set(replicas_answering(50)) == {f"green/{_host(f'{PREFIX}-green-server')}"}
    finally:
        configure(stack, activeColor="blue", blueImage=V1, greenImage=V2)
        stack.up("--refresh")
    assert container_id(f"{PREFIX}-green-server-2") is None and container_id(f"{PREFIX}-blue-server-2") is None


def _host(container: str) -> str:
    return docker("inspect", "--format", "{{.Config.Hostname}}", container)


def test_g_destroy_and_up_again_keeps_postgres_data(stack: PulumiStack) -> None:
    given(stack, "green", blue=V1, green=V1)
    psql = ["exec", f"{PREFIX}-postgres", "psql", "-U", "medusa", "-d", "medusa", "-tAc"]
    docker(*psql, "CREATE TABLE IF NOT EXISTS survives (v text); INSERT INTO survives VALUES ('kept');")
    stack.run("destroy", "--yes")
    assert container_id(f"{PREFIX}-postgres") is None
    assert f"{PREFIX}-pgdata" in docker("volume", "ls", "-q").split()
    run = stack.up()
    measure(f"g. destroy, then up again from nothing: {run.seconds:.1f}s; Postgres data kept")
    assert docker(*psql, "SELECT v FROM survives") == "kept"
    assert live()["color"] == "green"
