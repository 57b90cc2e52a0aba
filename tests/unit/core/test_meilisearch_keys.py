"""Scoped Meilisearch keys: the derivation Meilisearch uses, and the script that makes the keys,
run by real sh and curl against a stand-in of Meilisearch's /keys API on loopback."""

import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from core import meilisearch_keys
from core.meilisearch_keys import BACKEND_KEY, KEYS, STOREFRONT_KEY, KeySpec, derive_key, ensure_keys_script

MASTER = 'master-key-with-"quote"-and-\\-0123456789'


def test_a_key_is_derived_from_its_uid_as_meilisearch_does():
    # Meilisearch's own test vector (crates/meilisearch/tests/auth/api_keys.rs, master key MASTER_KEY).
    spec = KeySpec(uid="4bc0887a-0e41-4f3b-935d-0c451dcee9c8", name="x", purpose="x", actions=("search",))
    assert derive_key("MASTER_KEY", spec) == "d9e776b8412f1db6974c9a5556b961c3559440b6588216f4ea5d9ed49f7c8f3c"


def test_the_storefront_key_searches_only_and_the_backend_key_cannot_touch_keys_dumps_or_snapshots():
    assert STOREFRONT_KEY.actions == ("search",)
    assert not [a for a in BACKEND_KEY.actions if a.split(".")[0] in ("keys", "dumps", "snapshots", "*")]
    assert "indexes.swap" not in BACKEND_KEY.actions
    assert len({spec.uid for spec in KEYS}) == len(KEYS)


class FakeMeilisearch(http.server.BaseHTTPRequestHandler):
    """Meilisearch's key routes as documented: 201 on create, 409 for a uid that exists, 204 on
    delete, 404 for an unknown uid, 401/403 without the master key."""

    keys: ClassVar[dict[str, dict[str, Any]]] = {}
    calls: ClassVar[list[str]] = []

    def _auth(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {MASTER}":
            self._reply(403, {"code": "invalid_api_key"})
            return False
        return True

    def _reply(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            return self._reply(200, {"status": "available"})
        self.calls.append(f"GET {self.path}")
        if not self._auth():
            return None
        uid = self.path.removeprefix("/keys/")
        return self._reply(200, self.keys[uid]) if uid in self.keys else self._reply(404, {"code": "api_key_not_found"})

    def do_DELETE(self) -> None:
        self.calls.append(f"DELETE {self.path}")
        if self._auth():
            self.keys.pop(self.path.removeprefix("/keys/"))
            self._reply(204)

    def do_POST(self) -> None:
        self.calls.append(f"POST {self.path}")
        if not self._auth():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["uid"] in self.keys:
            return self._reply(409, {"code": "api_key_already_exists"})
        self.keys[body["uid"]] = {**body, "key": "derived"}
        return self._reply(201, self.keys[body["uid"]])

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def meilisearch() -> Iterator[str]:
    FakeMeilisearch.keys, FakeMeilisearch.calls = {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeMeilisearch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_script(url: str, master: str = MASTER) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", ensure_keys_script(url)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "MEILI_MASTER_KEY": master})


def test_the_keys_are_made_once_and_a_second_run_changes_nothing(meilisearch: str):
    first = run_script(meilisearch)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split("\n")[:2] == ["key medusa-backend: created", "key storefront-search: created"]
    assert FakeMeilisearch.keys[STOREFRONT_KEY.uid]["actions"] == ["search"]
    assert FakeMeilisearch.keys[BACKEND_KEY.uid]["expiresAt"] is None
    FakeMeilisearch.calls.clear()
    again = run_script(meilisearch)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout
    assert [c.split()[0] for c in FakeMeilisearch.calls] == ["GET", "GET"]


def test_a_key_made_with_another_spec_is_made_again_under_the_same_uid(meilisearch: str, monkeypatch):
    assert run_script(meilisearch).returncode == 0
    wider = KeySpec(uid=STOREFRONT_KEY.uid, name=STOREFRONT_KEY.name, purpose="x", actions=("search", "documents.get"))
    monkeypatch.setattr(meilisearch_keys, "KEYS", (BACKEND_KEY, wider))
    FakeMeilisearch.calls.clear()
    done = run_script(meilisearch)
    assert done.returncode == 0, done.stderr
    assert FakeMeilisearch.calls[-3:] == [f"GET /keys/{wider.uid}", f"DELETE /keys/{wider.uid}", "POST /keys"]
    assert FakeMeilisearch.keys[wider.uid]["actions"] == ["search", "documents.get"]


def test_a_refusal_fails_the_step_saying_which_key_and_what_came_back(meilisearch: str):
    done = run_script(meilisearch, master="not-the-master-key-0123")
    assert done.returncode == 1
    assert "meilisearch keys: reading the medusa-backend key answered 403: " in done.stderr
    assert "not-the-master-key" not in done.stderr + done.stdout
