"""The router's in-container control script (nginx/bluegreen-router.sh) at the edge.

Run with POSIX `sh` exactly as the container runs it, against a temporary conf dir
(BLUEGREEN_CONF_DIR) and with `true` standing in for nginx where nginx is not the point.
Bad input is refused with exit 2 and a message on stderr before anything on disk changes;
a flip is one atomic rename in the state dir.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "nginx" / "bluegreen-router.sh"

Snapshot = dict[str, tuple[str, int, int, int]]


def run(
    conf_dir: Path,
    *args: str,
    stdin: str = "",
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), f"{SCRIPT} is missing"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BLUEGREEN_CONF_DIR": str(conf_dir),
        "BLUEGREEN_NGINX": "true",
        **(extra_env or {}),
    }
    return subprocess.run(
        ["sh", str(SCRIPT), *args], input=stdin, env=env, capture_output=True, text=True, timeout=20, check=False
    )


def snapshot(root: Path, dir_mtimes: bool = True) -> Snapshot:
    """Every path under root with its type, size, mtime and inode (directory mtimes optional)."""
    found: Snapshot = {}
    if not root.exists():
        return found
    for path in sorted([root, *root.rglob("*")]):
        info = path.lstat()
        kind = "dir" if path.is_dir() else "file"
        mtime = info.st_mtime_ns if dir_mtimes or kind == "file" else 0
        found[str(path.relative_to(root))] = (kind, info.st_size, mtime, info.st_ino)
    return found


@pytest.fixture()
def conf_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    return conf


@pytest.fixture()
def state_with_preview_green(conf_dir: Path) -> Path:
    """A state dir that already holds something (preview on green), so changes would show."""
    done = run(conf_dir, "switch", "preview", "green")
    assert done.returncode == 0, done.stderr
    return conf_dir


BAD_SWITCH_ARGS = [
    pytest.param(["switch", "live", "purple"], "color must be 'blue' or 'green', got 'purple'", id="unknown-color"),
    pytest.param(["switch", "live", ""], "color must be 'blue' or 'green', got ''", id="empty-color"),
    pytest.param(["switch", "live", "../green"], "got '../green'", id="relative-path-color"),
    pytest.param(["switch", "live", "/etc/passwd"], "got '/etc/passwd'", id="absolute-path-color"),
    pytest.param(["switch", "live", "green/../blue"], "got 'green/../blue'", id="traversal-color"),
    pytest.param(["switch", "live", "Green"], "got 'Green'", id="case-color"),
    pytest.param(["switch", "live", "green "], "got 'green '", id="trailing-space-color"),
    pytest.param(["switch", "public", "green"], "route must be 'live' or 'preview', got 'public'", id="unknown-route"),
    pytest.param(["switch", "../live", "green"], "got '../live'", id="path-route"),
    pytest.param(["switch", "", "green"], "route must be 'live' or 'preview', got ''", id="empty-route"),
    pytest.param(["switch", "live"], "color must be 'blue' or 'green', got ''", id="missing-color"),
    pytest.param(["switch"], "route must be 'live' or 'preview', got ''", id="missing-everything"),
    pytest.param(["flip", "live", "green"], "unknown command 'flip'", id="unknown-command"),
    pytest.param([], "unknown command ''", id="no-command"),
]


@pytest.mark.parametrize(("args", "message"), BAD_SWITCH_ARGS)
def test_bad_switch_input_is_refused_without_touching_state(
    state_with_preview_green: Path, args: list[str], message: str
) -> None:
    conf_dir = state_with_preview_green
    before = snapshot(conf_dir)
    assert "bluegreen/state/preview-green" in before
    done = run(conf_dir, *args)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "bluegreen-router: refusing:" in done.stderr and message in done.stderr, done.stderr
    assert done.stdout == ""
    assert snapshot(conf_dir) == before
    # Nothing was written next to the state dir either (e.g. a "live-../green" or "/etc/passwd" target).
    assert not (conf_dir / "bluegreen" / "green").exists()


@pytest.mark.parametrize(("args", "message"), BAD_SWITCH_ARGS)
def test_bad_switch_input_on_a_fresh_volume_creates_nothing(conf_dir: Path, args: list[str], message: str) -> None:
    done = run(conf_dir, *args)
    assert done.returncode == 2 and message in done.stderr, (done.returncode, done.stderr)
    assert list(conf_dir.iterdir()) == []  # not even the bluegreen/state dir


def _mv_logger(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH shim that records every `mv` the script runs, then runs the real one."""
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "mv.log"
    real_mv = subprocess.run(["sh", "-c", "command -v mv"], capture_output=True, text=True, check=True).stdout.strip()
    (shim / "mv").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{log}"\nexec {real_mv} "$@"\n')
    (shim / "mv").chmod(0o755)
    return {"PATH": f"{shim}:{os.environ.get('PATH', '/usr/bin:/bin')}"}, log


def test_switch_live_green_creates_the_marker_by_atomic_rename(conf_dir: Path, tmp_path: Path) -> None:
    env, mv_log = _mv_logger(tmp_path)
    state = conf_dir / "bluegreen" / "state"
    done = run(conf_dir, "switch", "live", "green", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "route=live previous=blue current=green\n"
    assert (state / "live-green").is_file()
    # Exactly the marker, no temp file left behind, preview untouched.
    assert sorted(p.name for p in state.iterdir()) == ["live-green"]
    # The marker appeared through one `mv -f <temp in the same dir> <state>/live-green`: a
    # rename(2) within one directory, so nginx sees either no file or the complete one.
    moves = mv_log.read_text().splitlines()
    assert len(moves) == 1, moves
    flag, source, target = moves[0].split(" ")
    assert flag == "-f" and target == str(state / "live-green")
    assert Path(source).parent == state and Path(source).name.startswith(".live.")

    again = run(conf_dir, "switch", "live", "green")
    assert again.returncode == 0 and again.stdout == "route=live previous=green current=green\n"
    assert sorted(p.name for p in state.iterdir()) == ["live-green"]


def test_switch_live_blue_removes_the_marker(conf_dir: Path) -> None:
    state = conf_dir / "bluegreen" / "state"
    assert run(conf_dir, "switch", "live", "green").returncode == 0
    assert run(conf_dir, "switch", "preview", "green").returncode == 0
    done = run(conf_dir, "switch", "live", "blue")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "route=live previous=green current=blue\n"
    assert not (state / "live-green").exists()
    assert (state / "preview-green").is_file()  # the other route is untouched
    # Idempotent: blue again is a no-op that still succeeds.
    again = run(conf_dir, "switch", "live", "blue")
    assert again.returncode == 0 and again.stdout == "route=live previous=blue current=blue\n"


def test_status_prints_both_routes(conf_dir: Path) -> None:
    fresh = run(conf_dir, "status")
    assert (fresh.returncode, fresh.stdout) == (0, "live=blue preview=blue maintenance=off canary=0\n"), fresh.stderr
    assert run(conf_dir, "switch", "preview", "green").returncode == 0
    assert run(conf_dir, "status").stdout == "live=blue preview=green maintenance=off canary=0\n"
    assert run(conf_dir, "switch", "live", "green").returncode == 0
    assert run(conf_dir, "status").stdout == "live=green preview=green maintenance=off canary=0\n"
    assert run(conf_dir, "switch", "preview", "blue").returncode == 0
    assert run(conf_dir, "status").stdout == "live=green preview=blue maintenance=off canary=0\n"


def test_apply_refuses_an_empty_config(conf_dir: Path) -> None:
    good = "server { listen 127.0.0.1:8080; }\n"
    applied = run(conf_dir, "apply", stdin=good)
    assert applied.returncode == 0, applied.stderr
    assert (conf_dir / "bluegreen.conf").read_text() == good
    before = snapshot(conf_dir, dir_mtimes=False)

    refused = run(conf_dir, "apply", stdin="")
    assert refused.returncode == 2, (refused.returncode, refused.stdout, refused.stderr)
    assert "refusing: empty config on stdin" in refused.stderr
    assert "reloaded" not in refused.stdout
    # Live config, last-good copy and state kept, no temp file left. (The bluegreen/ dir's own
    # mtime moves: the script stages stdin in a temp file there before it can know it is empty.)
    assert snapshot(conf_dir, dir_mtimes=False) == before
    assert (conf_dir / "bluegreen.conf").read_text() == good


def test_apply_refuses_an_empty_config_on_a_fresh_volume(conf_dir: Path) -> None:
    refused = run(conf_dir, "apply", stdin="")
    assert refused.returncode == 2 and "empty config on stdin" in refused.stderr
    assert not (conf_dir / "bluegreen.conf").exists()
    leftovers = [p.name for p in (conf_dir / "bluegreen").iterdir() if p.is_file()]
    assert leftovers == [], leftovers
