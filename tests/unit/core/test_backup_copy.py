"""The off-host backup copy's command line and the credentials' way into curl (real curl, real sh)."""

import base64
import http.server
import shlex
import subprocess
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from core.backup_copy import ACCESS_KEY_ENV, CURL_AUTH, SECRET_KEY_ENV, CopyTarget, copy_backup, copy_backup_line

TARGET = CopyTarget(endpoint="https://s3.example.com", bucket="shop-backups", region="eu-central-1", prefix="shop/db")
NAME = "20261204T040000Z-blue-shop-1.2.dump"
WHERE = {"image": "nginx:1.28", "network": "shop-net", "volume": "shop-backups", "container": "shop-backup-copy"}


def test_the_object_is_addressed_path_style_under_the_prefix():
    assert TARGET.object_url(NAME) == f"https://s3.example.com/shop-backups/shop/db/{NAME}"


def test_the_container_reads_the_volume_only_and_gets_the_keys_by_name():
    argv = copy_backup(NAME, TARGET, **WHERE)
    assert argv[:4] == ["docker", "run", "--rm", "--name"]
    assert "shop-backups:/backups:ro" in argv
    for name in (ACCESS_KEY_ENV, SECRET_KEY_ENV):
        assert argv[argv.index(name) - 1] == "-e", name
    assert argv[-3:] == [NAME, TARGET.object_url(NAME), "eu-central-1"]
    assert shlex.split(copy_backup_line(NAME, TARGET, **WHERE)) == list(argv)


@pytest.mark.parametrize("name", ["../etc/passwd", "x.dump", f"{NAME}; rm -rf /", "20261204T040000Z-a/b.dump"])
def test_a_name_that_is_not_a_backup_is_refused(name: str):
    with pytest.raises(ValueError, match="is not a backup name"):
        copy_backup(name, TARGET, **WHERE)


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.parametrize("secret", ['plain+/Secret', 'has"quote', 'back\\slash\\', 'both\\"mixed"\\n'])
def test_credentials_reach_curl_exactly_whatever_they_hold(recorder: str, secret: str):
    # Basic auth carries the config's user line back verbatim, which is what sigv4 signs with.
    script = CURL_AUTH + '; printf "%s\\n" "$auth" | curl --silent --fail -K - "$URL"'
    env = {"PATH": "/usr/bin:/bin", ACCESS_KEY_ENV: "AKIDEXAMPLE", SECRET_KEY_ENV: secret, "URL": recorder}
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    (header,) = _Recorder.seen
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == f"AKIDEXAMPLE:{secret}"
