"""The migrate wrapper (core/migrate_once.js) under real node, with a stand-in `pg` module in the
app's node_modules that keeps the table in a file: which changes migrate again, which do not,
and that any doubt migrates. The real Postgres and Medusa run it in tests/e2e/test_medusa_release.py."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.migrate_once import SCRIPT, env_digest, wrapped

FAKE_PG = """
const fs = require('fs');
const store = process.env.FAKE_PG_STORE;
const read = () => (fs.existsSync(store) ? JSON.parse(fs.readFileSync(store, 'utf8')) : []);
class Client {
  async connect() { if (process.env.FAKE_PG_DOWN) throw new Error('connect ECONNREFUSED 10.0.0.1:5432'); }
  async query(sql, params) {
    if (/^select/i.test(sql)) return { rows: read().map((r) => ({ ...r, migrated_at: new Date(r.migrated_at) })) };
    if (/^delete/i.test(sql)) fs.writeFileSync(store, '[]');
    if (/^insert/i.test(sql)) fs.writeFileSync(store, JSON.stringify(
      [...read(), { fingerprint: params[0], migrated_at: new Date().toISOString() }]));
    return { rows: [] };
  }
  async end() {}
}
module.exports = { Client };
"""



APP_FILES = {
    "node_modules/pg/index.js": FAKE_PG,
    "node_modules/@medusajs/product/dist/migrations/Migration1.js": "one",
    "src/modules/audit/migrations/Migration2.js": "two",
    "src/api/route.js": "a route",
    "medusa-config.js": "module.exports = {}",
    "package-lock.json": "{}",
}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    for name, text in APP_FILES.items():
        (tmp_path / "app" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "app" / name).write_text(text)
    return tmp_path / "app"


def migrate(app: Path, digest: str = "env-a", code: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
    command = ["sh", "-c", f'echo ran >> "{app}/ran"; exit {code}']
    return subprocess.run(wrapped(command, digest), cwd=app, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "FAKE_PG_STORE": str(app / "table.json"), **env})


def runs(app: Path) -> int:
    return len((app / "ran").read_text().split()) if (app / "ran").exists() else 0


def test_an_unchanged_app_is_not_migrated_twice(app: Path):
    first = migrate(app)
    assert first.returncode == 0 and runs(app) == 1, first.stdout + first.stderr
    assert "fingerprint" in first.stdout and "recorded" in first.stdout
    second = migrate(app)
    assert second.returncode == 0 and runs(app) == 1
    assert "bluegreen: nothing to migrate" in second.stdout


def test_code_outside_the_migration_inputs_does_not_migrate_again(app: Path):
    migrate(app)
    (app / "src/api/route.js").write_text("another route")
    assert migrate(app).returncode == 0 and runs(app) == 1


@pytest.mark.parametrize("change", [
    lambda app: (app / "src/modules/audit/migrations/Migration3.js").write_text("three"),
    lambda app: (app / "node_modules/@medusajs/product/dist/migrations/Migration1.js").write_text("one, edited"),
    lambda app: (app / "src/links").mkdir() or (app / "src/links/product-audit.js").write_text("a link"),
    lambda app: (app / "src/migration-scripts").mkdir() or (app / "src/migration-scripts/seed.js").write_text("s"),
    lambda app: (app / "medusa-config.js").write_text("module.exports = { modules: [] }"),
    lambda app: (app / "package-lock.json").write_text('{"lockfileVersion": 3}'),
], ids=["new app migration", "package migration", "new link", "migration script", "config", "lockfile"])
def test_a_change_to_a_migration_input_migrates_again(app: Path, change):
    migrate(app)
    change(app)
    assert migrate(app).returncode == 0 and runs(app) == 2


def test_a_new_env_migrates_again_and_a_failed_migration_is_not_recorded(app: Path):
    migrate(app)
    assert migrate(app, digest="env-b").returncode == 0 and runs(app) == 2
    failed = migrate(app, digest="env-c", code=3)
    assert failed.returncode == 3 and runs(app) == 3
    again = migrate(app, digest="env-c")
    assert again.returncode == 0 and runs(app) == 4, "a failed migration counted as done"


def test_any_doubt_migrates(app: Path):
    migrate(app)
    down = migrate(app, FAKE_PG_DOWN="1")
    assert down.returncode == 0 and runs(app) == 2
    assert "migrating without comparing with the last migration (connect ECONNREFUSED" in down.stdout
    shutil.rmtree(app / "node_modules/pg")
    no_pg = migrate(app)
    assert no_pg.returncode == 0 and runs(app) == 3 and "Cannot find module 'pg'" in no_pg.stdout


def test_a_stop_reaches_the_migration(tmp_path: Path):
    started = tmp_path / "started"
    command = ["sh", "-c", f"trap 'echo stopped > {tmp_path}/stopped; exit 143' TERM; touch {started}; "
                           "while :; do sleep 0.1; done"]
    wrapper = subprocess.Popen(["node", "-e", SCRIPT, "env", *command], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and wrapper.poll() is None, "the migration never started"
        time.sleep(0.05)
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=30) == 143
    assert (tmp_path / "stopped").read_text().strip() == "stopped"


def test_secret_values_stay_out_of_the_env_digest():
    plain = {"MEDUSA_FF_RBAC": "true"}
    assert env_digest(plain, ["DATABASE_URL"]) == env_digest(plain, ["DATABASE_URL"])
    assert env_digest(plain, ["DATABASE_URL"]) != env_digest({"MEDUSA_FF_RBAC": "false"}, ["DATABASE_URL"])
    assert env_digest(plain, ["DATABASE_URL"]) != env_digest(plain, ["DATABASE_URL", "STRIPE_API_KEY"])
    assert json.dumps(wrapped(["npx", "medusa", "db:migrate"], "d")[-4:]) == '["d", "npx", "medusa", "db:migrate"]'


def test_the_color_is_no_part_of_the_env_digest():
    assert env_digest({"DEPLOY_COLOR": "blue", "X": "1"}, []) == env_digest({"DEPLOY_COLOR": "green", "X": "1"}, [])


def test_a_stop_before_the_migration_starts_ends_it_without_migrating(app: Path):
    # The fingerprint is being taken (a slow stand-in pg connect): a stop then must not be lost.
    slow = APP_FILES["node_modules/pg/index.js"].replace(
        "async connect() {", "async connect() { await new Promise((r) => setTimeout(r, 30000));")
    (app / "node_modules/pg/index.js").write_text(slow)
    command = ["sh", "-c", f'echo ran >> "{app}/ran"']
    wrapper = subprocess.Popen(wrapped(command, "env"), cwd=app, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={"PATH": os.environ["PATH"], "FAKE_PG_STORE": str(app / "t.json")})
    time.sleep(1)
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=10) == 143
    assert runs(app) == 0
