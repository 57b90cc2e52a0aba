"""A real Medusa 2.21 backend (examples/medusa-app) through the real release path.

Blue is built from the app directory by `pulumi up` itself (BuildKit on the harness dockerd),
backed up and migrated, gated, and made live; then a code-only change is released to green
under load. Real Postgres and Redis containers, the real router, the real engine.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import measure
from tests.e2e.load import Load
from tests.e2e.project import (
    REPO,
    PulumiStack,
    container_id,
    copy_example_app,
    destroy_with_data,
    docker,
    local_stack_config,
    remove_leftovers,
)

PREFIX = "e2emed"
HTTP_PORT = 28080
PUBLIC = f"http://127.0.0.1:{HTTP_PORT}"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
HELLO = "src/api/hello/route.ts"

# The example app's readiness route and its admin dashboard gate every release, and its worker
# probe proves the new worker processes events before a release counts as done (rule 7d).
READY = {"path": "/ready", "expectBody": '"ready":true'}
DASHBOARD = {"path": "/app", "expectBody": 'id="medusa"'}
WORKER_CHECK = {"path": "/ready/worker", "expectBody": "handled by the"}
GATE: dict[str, Any] = {
    "deadlineSeconds": 180, "initialBackoffSeconds": 1, "maxBackoffSeconds": 3,
    "checks": [READY, DASHBOARD], "workerCheck": WORKER_CHECK,
}
HEARTBEAT_SECONDS = 5
BASE_CONFIG: dict[str, Any] = local_stack_config(
    PREFIX, HTTP_PORT, 29080,
    healthGate=GATE,
    medusa={"serverMemoryMb": 1024, "workerMemoryMb": 1024, "stopTimeoutSeconds": 10,
            "env": {"HEARTBEAT_SCHEDULE": f"*/{HEARTBEAT_SECONDS} * * * * *"}},
)


def build_config(app: Path) -> dict[str, Any]:
    return {
        "context": str(app),
        "args": {"NODE_IMAGE": "medusa-bg/node:22"},
        # This machine reaches npm through a TLS-intercepting root; see harness/README.md.
        "secretFiles": {"ca": CA_BUNDLE},
    }


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example app, so the test can make a code change without touching the repo."""
    return copy_example_app(tmp_path_factory.mktemp("medusa-app"))


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], workdir: Path) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    stack = PulumiStack(workdir, engine, stack="medusa")
    yield stack
    destroy_with_data(stack, PREFIX)


def configure(stack: PulumiStack, **changes: Any) -> None:
    stack.set_config({**BASE_CONFIG, "dockerHost": stack.env["DOCKER_HOST"], **changes})


def get(path: str) -> requests.Response:
    return requests.get(f"{PUBLIC}{path}", timeout=10)


def given_blue_live(stack: PulumiStack, app: Path) -> str:
    """Scenario 1's end state, reached here too so scenario 2 does not depend on 1 passing."""
    configure(stack, activeColor="blue", blueBuild=build_config(app))
    try:
        serving = get("/health").headers.get("X-Bluegreen-Color")
    except requests.RequestException:
        serving = None
    if serving != "blue":
        stack.up("--refresh")
    ref: str = stack.outputs()["imageRefs"]["blue"]
    return ref


def dashboard_loads_through_the_router() -> None:
    """The admin dashboard at /app: its page, and every script the page loads, through the router."""
    began = time.monotonic()
    page = get("/app")
    assert page.status_code == 200 and 'id="medusa"' in page.text, page.text[:500]
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.text)
    assert scripts, page.text[:2000]
    sizes = []
    for src in scripts:
        asset = get(src if src.startswith("/") else f"/app/{src}")
        assert asset.status_code == 200 and "javascript" in asset.headers["Content-Type"], (src, asset.status_code)
        sizes.append(len(asset.content))
    measure(f"medusa 1. admin dashboard through the router: /app and {len(scripts)} script(s) "
            f"({sum(sizes) / 1024:.0f} KiB) in {(time.monotonic() - began) * 1000:.0f} ms")


def invited_admin_logs_in_through_the_router(stack: PulumiStack) -> None:
    """`bin/bluegreen admin-invite` (what `make up` prints), accepted and logged in through the auth API."""
    email, password = "invited@e2e.example.com", "e2e-only-invited-password"
    invited = bluegreen(stack, "admin-invite", email)
    assert invited.returncode == 0, invited.stdout + invited.stderr
    found = re.search(r"open (\S+)/app/invite\?token=(\S+)", invited.stdout)
    assert found and found.group(1) == stack.outputs()["publicUrl"], invited.stdout
    auth = f"{PUBLIC}/auth/user/emailpass"
    registered = requests.post(f"{auth}/register", json={"email": email, "password": password}, timeout=30)
    assert registered.status_code == 200, registered.text
    accepted = requests.post(f"{PUBLIC}/admin/invites/accept", params={"token": found.group(2)}, timeout=30,
                             headers={"Authorization": f"Bearer {registered.json()['token']}"},
                             json={"email": email, "first_name": "Invited", "last_name": "Admin"})
    assert accepted.status_code == 200, accepted.text
    login = requests.post(auth, json={"email": email, "password": password}, timeout=30)
    assert login.status_code == 200, login.text
    me = requests.get(f"{PUBLIC}/admin/users/me", headers={"Authorization": f"Bearer {login.json()['token']}"},
                      timeout=30)
    assert (me.status_code, me.json()["user"]["email"]) == (200, email), me.text


def test_1_blue_built_from_the_app_directory_goes_live(stack: PulumiStack, app: Path) -> None:
    configure(stack, activeColor="blue", blueBuild=build_config(app))
    run = stack.up()
    outputs = stack.outputs()
    measure(f"medusa 1. blue built from the app directory, migrated, gated, live: pulumi up {run.seconds:.1f}s "
            f"(gate: {outputs['lastGateResult']['tries']} tries, {outputs['lastGateResult']['waited_seconds']:.1f}s)")
    health = get("/health")
    assert (health.status_code, health.text, health.headers["X-Bluegreen-Color"]) == (200, "OK", "blue")
    products = get("/store/products")
    assert products.status_code == 400, products.text
    assert "publishable" in products.text.lower(), products.text
    assert get("/hello").json() == {"message": "Hello from Medusa", "color": "blue", "mode": "server"}
    dashboard_loads_through_the_router()
    invited_admin_logs_in_through_the_router(stack)
    assert outputs["images"]["blue"].startswith("sha256:")
    assert outputs["imageRefs"]["blue"].startswith(f"{PREFIX}-app:src-")
    assert "-blue-" in outputs["backup"]
    assert outputs["workerCheck"]["tries"] >= 1, outputs["workerCheck"]
    env = docker("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", f"{PREFIX}-blue-worker").split()
    assert "MEDUSA_WORKER_MODE=worker" in env
    assert docker("inspect", "--format", "{{.State.Status}}", f"{PREFIX}-blue-worker") == "running"
    # Really in worker mode, not just told so: a worker serves /health but no API routes.
    probe = "fetch('http://127.0.0.1:9000'+process.argv[1]).then(r=>console.log(r.status),()=>console.log('down'))"
    def worker_status(path: str) -> str:
        return docker("exec", f"{PREFIX}-blue-worker", "node", "-e", probe, path)

    deadline = time.monotonic() + 90  # the worker starts after the flip, so it may still boot
    while worker_status("/health") != "200":
        assert time.monotonic() < deadline, docker("logs", "--tail", "30", f"{PREFIX}-blue-worker")
        time.sleep(1)
    assert worker_status("/hello") == "404"
    assert docker("inspect", "--format", "{{.Config.User}}", f"{PREFIX}-blue-server") == "node"
    # Migrations ran once, from the release step: the server's own start did not run them.
    tables = docker("exec", f"{PREFIX}-postgres", "psql", "-U", "medusa", "-d", "medusa", "-tAc",
                    "select count(*) from information_schema.tables where table_name = 'product'")
    assert tables == "1"


def test_2_code_change_released_to_green_under_load(stack: PulumiStack, app: Path) -> None:
    blue_ref = given_blue_live(stack, app)
    hello = app / HELLO
    hello.write_text(hello.read_text().replace('"Hello from Medusa"', '"Hello from Medusa v2"'))
    router = container_id(f"{PREFIX}-router")
    # What `bin/bluegreen release` does: pin the live color to the ref it was built as, build the idle one.
    configure(stack, activeColor="green", blueImage=blue_ref, greenBuild=build_config(app))
    steps = json.loads(stack.run("preview", "--json").stdout)["steps"]
    changed = {step["urn"].rsplit("::", 1)[-1] for step in steps if step["op"] != "same"}
    assert not changed & {"blue-server", "blue-image", "router", "postgres", "redis"}, changed
    with Load(f"{PUBLIC}/health") as load:
        run = stack.up()
        time.sleep(1)
    report = load.stop()
    measure(f"medusa 2. code-only change released to green under load: pulumi up {run.seconds:.1f}s "
            f"(build from warm cache included), {report.flip_summary('green')}: {report.summary()}")
    assert report.total > 0 and report.failed == 0, report.failures
    assert report.colors["blue"] > 0 and report.colors["green"] > 0
    assert get("/hello").json() == {"message": "Hello from Medusa v2", "color": "green", "mode": "server"}
    # Only a route changed: the migration step found blue's fingerprint and did no work.
    assert "bluegreen: nothing to migrate" in migrate_output(stack, "green")
    assert container_id(f"{PREFIX}-router") == router
    assert container_id(f"{PREFIX}-blue-worker") is None
    assert docker("inspect", "--format", "{{.State.Status}}", f"{PREFIX}-green-worker") == "running"


def migrate_output(stack: PulumiStack, color: str) -> str:
    """What the color's migrate step printed (secret in state: read with --show-secrets)."""
    state = json.loads(stack.run("stack", "export", "--show-secrets").stdout)
    for resource in state["deployment"]["resources"]:
        if resource["urn"].endswith(f"::{color}-migrate"):
            stdout = resource["outputs"]["stdout"]
            return str(json.loads(stdout["plaintext"]) if isinstance(stdout, dict) else stdout)
    raise AssertionError(f"no {color}-migrate in the state")


MIGRATION_V3 = "Migration20261203000000"
MIGRATION_V3_JS = f"""const {{ Migration }} = require("@medusajs/framework/mikro-orm/migrations")

class {MIGRATION_V3} extends Migration {{
  async up() {{
    this.addSql('create table if not exists "gift_note" ("id" text not null primary key, "body" text not null);')
  }}

  async down() {{
    this.addSql('drop table if exists "gift_note";')
  }}
}}

module.exports = {{ {MIGRATION_V3} }}
"""


def sql(query: str) -> str:
    return docker("exec", f"{PREFIX}-postgres", "psql", "-U", "bluegreen_admin", "-d", "medusa", "-XtAc", query)


def write_row(row_id: str) -> None:
    sql(f"insert into handled_event (id, event, entity_id, color, mode) values ('{row_id}', 'e2e', 'x', '-', 'e2e')")


def bluegreen(stack: PulumiStack, *args: str) -> subprocess.CompletedProcess[str]:
    words = [str(REPO / "bin/bluegreen"), "--stack", stack.stack, "--cwd", str(stack.workdir), *args]
    return subprocess.run(words, env=stack.env, capture_output=True, text=True, timeout=600, check=False)


def test_3_schema_check_refuses_a_flip_to_older_code_until_acknowledged_and_restore_brings_the_old_schema_back(
    stack: PulumiStack, app: Path, tmp_path: Path
) -> None:
    blue_ref = given_blue_live(stack, app)
    write_row("hev_before")
    newer = tmp_path / "app-v3"
    shutil.copytree(app, newer)
    (newer / f"src/modules/audit/migrations/{MIGRATION_V3}.js").write_text(MIGRATION_V3_JS)
    configure(stack, activeColor="green", blueImage=blue_ref, greenBuild=build_config(newer))
    run = stack.up()
    green_ref = stack.outputs()["imageRefs"]["green"]
    backup = stack.outputs()["backup"]
    measure(f"medusa 3. release with a new migration: pulumi up {run.seconds:.1f}s")
    assert MIGRATION_V3 in sql("select name from mikro_orm_migrations").split()
    migrated = migrate_output(stack, "green")
    assert "fingerprint" in migrated and "nothing to migrate" not in migrated, migrated[-2000:]
    write_row("hev_after")

    # A warm switch back to blue: blue's image does not know the migration green applied.
    configure(stack, activeColor="blue", blueImage=blue_ref, greenImage=green_ref)
    refused = stack.up(check=False)
    measure(f"medusa 3. switch back to blue refused by the schema check: pulumi up {refused.seconds:.1f}s")
    assert refused.returncode != 0
    said = refused.output[-4000:]
    assert "refusing to send traffic to blue" in refused.output and MIGRATION_V3 in refused.output, said
    assert f"restore {backup}" in refused.output
    assert get("/hello").headers["X-Bluegreen-Color"] == "green"

    # Acknowledged (it only adds a table blue never reads), the same switch goes ahead.
    configure(stack, activeColor="blue", blueImage=blue_ref, greenImage=green_ref,
              database={"acknowledgedMigrations": [MIGRATION_V3]})
    run = stack.up()
    measure(f"medusa 3. acknowledged warm switch back to blue: pulumi up {run.seconds:.1f}s")
    assert get("/hello").headers["X-Bluegreen-Color"] == "blue"

    # The restore puts the rows and the schema of before the release back, blue still live.
    began = time.monotonic()
    restored = bluegreen(stack, "restore", backup)
    seconds = time.monotonic() - began
    assert restored.returncode == 0, restored.stdout + restored.stderr
    measure(f"medusa 3. restore {backup}: {seconds:.1f}s (pre-restore dump included)")
    assert sql("select id from handled_event where event = 'e2e' order by id").split() == ["hev_before"]
    assert sql("select to_regclass('public.gift_note') is null") == "t"
    assert MIGRATION_V3 not in sql("select name from mikro_orm_migrations").split()
    assert f"blue ({blue_ref}): knows every migration now applied" in restored.stdout, restored.stdout
    # Green knows more migrations than are applied now: newer code, which the check does not
    # refuse (its release would migrate); only code older than the schema is.
    assert f"green ({green_ref}): knows every migration now applied" in restored.stdout, restored.stdout
    assert sql("select tableowner from pg_tables where tablename = 'handled_event'") == "medusa"
    health = get("/health")
    assert (health.status_code, health.headers["X-Bluegreen-Color"]) == (200, "blue")
    listed = bluegreen(stack, "restore", "--list")
    assert "-restore-before.dump" in listed.stdout and backup in listed.stdout, listed.stdout


ADMIN_EMAIL, ADMIN_PASSWORD = "admin@e2e.example.com", "e2e-only-admin-password"


def admin_token(server: str) -> str:
    """An admin user made the documented way (`medusa user` in a server container), logged in."""
    docker("exec", server, "node_modules/.bin/medusa", "user", "-e", ADMIN_EMAIL, "-p", ADMIN_PASSWORD, check=False)
    login = requests.post(f"{PUBLIC}/auth/user/emailpass", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                          timeout=30)
    assert login.status_code == 200, login.text
    token: str = login.json()["token"]
    return token


def test_4_products_created_across_a_release_are_each_handled_once_by_one_worker(
    stack: PulumiStack, app: Path
) -> None:
    blue_ref = given_blue_live(stack, app)
    token = admin_token(f"{PREFIX}-blue-server")
    created: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def create_products() -> None:
        while not stop.is_set():
            try:
                made = requests.post(
                    f"{PUBLIC}/admin/products", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                    json={"title": f"e2e {len(created)}", "options": [{"title": "Size", "values": ["One"]}]},
                )
                if made.status_code == 200:
                    created.append(made.json()["product"]["id"])
                else:
                    failures.append(f"{made.status_code} {made.text[:200]}")
            except requests.RequestException as error:
                failures.append(repr(error))
            stop.wait(0.5)

    hello = app / HELLO
    hello.write_text(hello.read_text().replace('"Hello from Medusa', '"Hello again from Medusa'))
    configure(stack, activeColor="green", blueImage=blue_ref, greenBuild=build_config(app))
    creator = threading.Thread(target=create_products, daemon=True)
    began = sql("select now()")
    creator.start()
    try:
        time.sleep(2)
        run = stack.up()
        # Long enough for the green worker to run the schedule more than once after the release.
        time.sleep(3 * HEARTBEAT_SECONDS)
    finally:
        stop.set()
        creator.join(timeout=60)
    heartbeats = [line.split() for line in sql(
        "select extract(epoch from entity_id::timestamptz)::float8 || ' ' || color || ' ' || mode "
        "|| ' ' || extract(epoch from created_at)::float8 "
        f"from handled_event where event = 'heartbeat' and created_at >= '{began}' order by created_at"
    ).splitlines() if line.strip()]
    assert created and not failures, failures[:5]
    ids = ",".join(f"'{product}'" for product in created)
    deadline = time.monotonic() + 90
    while True:
        rows = sql(f"select entity_id || ' ' || color || ' ' || mode from handled_event where entity_id in ({ids})")
        handled = [line.split() for line in rows.splitlines() if line.strip()]
        if len(handled) >= len(created) or time.monotonic() > deadline:
            break
        time.sleep(1)
    by_product = collections.Counter(product for product, _, _ in handled)
    # No worker runs between the old one's stop and the new one's first event (products keep
    # coming every 0.5 s, so this is the gap with no worker, plus at most that).
    gap = sql(f"select round(extract(epoch from min(created_at) filter (where color = 'green') "
              f"- max(created_at) filter (where color = 'blue'))::numeric, 1) from handled_event "
              f"where entity_id in ({ids})")
    measure(f"medusa 4. {len(created)} products created across a release (pulumi up {run.seconds:.1f}s): "
            f"handled by {dict(collections.Counter(color for _, color, _ in handled))}; "
            f"no event handled for {gap}s around the worker handover")
    assert {p: n for p, n in by_product.items() if n != 1} == {}, "handled more than once"
    assert set(by_product) == set(created), f"never handled: {set(created) - set(by_product)}"
    assert {mode for _, _, mode in handled} == {"worker"}, "the server handled events itself"
    # The scheduled job: one run per tick across the release, by one worker at a time. BullMQ
    # stamps each repeat job with the moment it was queued, the tick before the one it is due at.
    # Its queues deliver at least once: a run whose worker stopped before BullMQ recorded it done
    # is run again by the next worker, with the same stamp (docs/rules.md 7c). That retry, blue
    # then green, once at most, is the only second run allowed; any other is a tick run twice.
    by_tick: dict[int, list[str]] = collections.defaultdict(list)
    for queued, color, _, _ in heartbeats:
        by_tick[int(float(queued) // HEARTBEAT_SECONDS)].append(color)
    twice = {tick: ran_by for tick, ran_by in by_tick.items() if len(ran_by) > 1}
    retried = {tick: ran_by for tick, ran_by in twice.items() if ran_by == ["blue", "green"]}
    colors = [color for _, color, _, _ in heartbeats]
    measure(f"medusa 4. scheduled job every {HEARTBEAT_SECONDS}s across the release: {len(heartbeats)} runs, "
            f"by {dict(collections.Counter(colors))}, over {len(by_tick)} distinct ticks, "
            f"{len(retried)} run again by green after the handover")
    assert twice == retried and len(retried) <= 1, (
        f"a tick of the schedule ran more than once (queued at, color, mode, ran at): {heartbeats}")
    assert colors[0] == "blue" and colors[-1] == "green" and colors.count("green") >= 2, colors
    assert colors == sorted(colors), f"the schedule went back to blue after green ran it: {colors}"
    assert {mode for _, _, mode, _ in heartbeats} == {"worker"}, "the server ran the scheduled job itself"


def test_5_a_worker_that_cannot_reach_redis_fails_the_release_and_the_previous_worker_and_server_serve_again(
    stack: PulumiStack, app: Path, tmp_path: Path
) -> None:
    blue_ref = given_blue_live(stack, app)
    began = time.monotonic()
    ready = get("/ready")
    ready_ms = (time.monotonic() - began) * 1000
    began = time.monotonic()
    worker = get("/ready/worker")
    worker_ms = (time.monotonic() - began) * 1000
    measure(f"medusa 5. readiness through the router: /ready {ready_ms:.0f} ms, /ready/worker {worker_ms:.0f} ms "
            f"({worker.text})")
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "color": "blue"})
    assert (worker.status_code, worker.text.startswith("handled by the blue worker")) == (200, True), worker.text

    # Green's worker starts (its Redis address is wrong) but never processes anything.
    broken = tmp_path / "app-broken-worker"
    shutil.copytree(app, broken)
    config = broken / "medusa-config.js"
    config.write_text(config.read_text().replace(
        "const redisUrl = env.REDIS_URL || undefined",
        'const redisUrl = workerMode === "worker" ? "redis://127.0.0.1:1" : env.REDIS_URL || undefined',
    ))
    configure(stack, activeColor="green", blueImage=blue_ref, greenBuild=build_config(broken),
              healthGate={**GATE, "deadlineSeconds": 45})
    failed = stack.up(check=False)
    said = failed.output[-6000:]
    measure(f"medusa 5. release whose worker cannot reach Redis, refused: pulumi up {failed.seconds:.1f}s")
    assert failed.returncode != 0, said
    assert "worker check (/ready/worker -> 200)" in failed.output, said
    assert f"stopped {PREFIX}-green-worker" in failed.output, said
    assert f"started {PREFIX}-blue-worker again" in failed.output and "rolled back" in failed.output, said
    assert get("/health").headers["X-Bluegreen-Color"] == "blue"
    assert docker("inspect", "--format", "{{.State.Status}}", f"{PREFIX}-blue-worker") == "running"
    assert docker("inspect", "--format", "{{.State.Running}}", f"{PREFIX}-green-worker") == "false"
    worker = get("/ready/worker")
    assert (worker.status_code, worker.text.startswith("handled by the blue worker")) == (200, True), worker.text

    # Telling the program what is true again (blue live, its image) brings the stack back in line.
    configure(stack, activeColor="blue", blueImage=blue_ref)
    stack.up("--refresh")
    assert container_id(f"{PREFIX}-green-worker") is None
    assert get("/ready/worker").status_code == 200
