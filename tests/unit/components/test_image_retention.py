"""Image retention: which repositories are looked at, and what the prune script removes.

The script runs for real under /bin/sh against a fake `docker` that serves a canned image
list and records removals, so the keep/skip/fail rules are tested without an engine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.image_retention import prune_repository, repository_of
from core.docker_cli import prune_app_images

SERVICES = ["medusa-bg/postgres:15", "redis:7.4-bookworm", "docker.io/library/nginx:1.27-bookworm"]


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("shop-app:src-0123456789abcdef0123", "shop-app"),
        ("ghcr.io/acme/shop:1.4.2", "ghcr.io/acme/shop"),
        ("localhost:5000/shop:1.4.2", "localhost:5000/shop"),
        ("localhost:5000/shop", "localhost:5000/shop"),
        ("ghcr.io/acme/shop:1.4.2@sha256:" + "a" * 64, "ghcr.io/acme/shop"),
        ("ghcr.io/acme/shop@sha256:" + "a" * 64, "ghcr.io/acme/shop"),
        ("docker.io/library/medusa:2", "medusa"),
        ("docker.io/acme/medusa:2", "acme/medusa"),
    ],
)
def test_repository_is_spelled_as_docker_image_ls_prints_it(ref: str, repository: str):
    assert repository_of(ref) == repository


def test_a_repository_a_service_image_lives_in_is_never_pruned():
    assert prune_repository("ghcr.io/acme/shop:1.4.2", SERVICES) == "ghcr.io/acme/shop"
    assert prune_repository("docker.io/medusa-bg/postgres:16-app", SERVICES) is None
    assert prune_repository("nginx:1.26", SERVICES) is None


def test_prune_command_line_exact():
    assert prune_app_images("shop-app", "shop-app:src-b", 2) == (
        "sh -c 'set -uf; release=shop-app:src-b\n"
        "containers=$(docker ps -aq --no-trunc) || exit 1\n"
        "protected=\" $release $({ docker image inspect --format '\"'\"'{{.Id}}'\"'\"' \"$release\"; "
        "[ -z \"$containers\" ] || docker inspect --format '\"'\"'{{.Image}}'\"'\"' $containers; } 2>/dev/null | "
        "tr '\"'\"'\\n'\"'\"' '\"'\"' '\"'\"') \"\n"
        "listed=$(TZ=UTC docker image ls --no-trunc --digests --format "
        "'\"'\"'{{.CreatedAt}}|{{.ID}}|{{.Repository}}|{{.Tag}}|{{.Digest}}'\"'\"' --filter reference=shop-app)"
        " || exit 1\n"
        "old=$(printf '\"'\"'%s\\n'\"'\"' \"$listed\" | LC_ALL=C sort -r | "
        "while IFS='\"'\"'|'\"'\"' read -r created id repo tag digest; do\n"
        '  [ -n "$id" ] || continue\n'
        '  if [ "$tag" = "<none>" ]; then ref="$repo@$digest"; else ref="$repo:$tag"; fi\n'
        '  case "$protected" in *" $id "*|*" $ref "*) continue ;; esac\n'
        '  case "$tag" in src-*) ;; *) [ "$digest" != "<none>" ] || continue ;; esac\n'
        '  echo "$ref"\n'
        "done | tail -n +3)\n"
        "removed=0; skipped=0; failed=0\n"
        "for ref in $old; do\n"
        '  if out=$(docker image rm "$ref" 2>&1); then removed=$((removed + 1))\n'
        '  else case "$out" in\n'
        '    *conflict*|*"No such image"*) skipped=$((skipped + 1)) ;;\n'
        '    *) failed=$((failed + 1)); echo "image-prune: could not remove $ref: $out" >&2 ;;\n'
        "  esac; fi\n"
        "done\n"
        "total=$(printf '\"'\"'%s\\n'\"'\"' \"$listed\" | grep -c .)\n"
        'echo "app images: kept=$((total - removed)) removed=$removed skipped=$skipped failed=$failed"\n'
        "[ \"$failed\" -eq 0 ]'"
    )


def test_keep_below_one_is_refused():
    with pytest.raises(ValueError, match="keep must be at least 1"):
        prune_app_images("shop-app", "shop-app:src-b", 0)


FAKE_DOCKER = """\
import json, os, sys
state = json.load(open(os.environ["FAKE_STATE"]))
args = sys.argv[1:]
if args[:1] == ["ps"]:
    print("\\n".join(state.get("containers", {})))
    sys.exit(0)
if args[:1] == ["inspect"]:
    print("\\n".join(state["containers"][c] for c in args[3:]))
    sys.exit(0)
if args[:2] == ["image", "inspect"]:
    found = [state["ids"][ref] for ref in args[4:] if ref in state["ids"]]
    print("\\n".join(found))
    sys.exit(0 if len(found) == len(args[4:]) else 1)
if args[:2] == ["image", "ls"]:
    if state.get("ls_fails"):
        print("Cannot connect to the Docker daemon", file=sys.stderr)
        sys.exit(1)
    assert os.environ.get("TZ") == "UTC"
    print("\\n".join(state["listing"]))
    sys.exit(0)
if args[:2] == ["image", "rm"]:
    ref = args[2]
    with open(os.environ["FAKE_STATE"] + ".rm", "a") as log:
        log.write(ref + "\\n")
    if ref in state.get("in_use", []):
        print(f"Error response from daemon: conflict: unable to remove repository reference {ref!r} "
              "(must force) - container 0123 is using its referenced image 4567", file=sys.stderr)
        sys.exit(1)
    if ref in state.get("broken", []):
        print("Error response from daemon: permission denied", file=sys.stderr)
        sys.exit(1)
    print(f"Untagged: {ref}")
    sys.exit(0)
sys.exit(f"fake docker: unexpected {args}")
"""


def row(day: int, image_id: str, repo: str, tag: str, digest: str = "<none>", hour: int = 10) -> str:
    return f"2026-11-{day:02d} {hour:02d}:00:00 +0000 UTC|sha256:{image_id}|{repo}|{tag}|{digest}"


def run_prune(tmp_path: Path, state: dict[str, object], release: str, keep: int, repository: str = "shop-app"):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    docker.chmod(0o755)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    done = subprocess.run(
        ["/bin/sh", "-c", prune_app_images(repository, release, keep)],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_STATE": str(state_file)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    log = Path(f"{state_file}.rm")
    attempted = log.read_text().split() if log.exists() else []
    return done, attempted


def test_prune_keeps_the_release_what_runs_the_newest_and_what_cannot_be_had_again(tmp_path: Path):
    listing = [
        row(1, "a1", "shop-app", "src-r1"),
        row(5, "a5", "shop-app", "src-r5"),  # released now
        row(2, "a2", "shop-app", "src-r2"),
        row(4, "a4", "shop-app", "src-r4"),  # the warm color's: a container uses it
        row(3, "a3", "shop-app", "src-r3"),
        row(6, "a5", "shop-app", "hand-made"),  # another tag of the released image
        row(7, "b0", "shop-app", "local-only"),  # neither built here nor pullable: kept, takes no slot
    ]
    state = {
        "listing": listing,
        "ids": {"shop-app:src-r5": "sha256:a5"},
        "containers": {"c-live": "sha256:a5", "c-warm": "sha256:a4", "c-other-stack": "sha256:x"},
    }
    done, attempted = run_prune(tmp_path, state, "shop-app:src-r5", keep=1)
    assert done.returncode == 0, done.stderr
    # r4 runs, so r3 is the newest of the rest and the one kept (keep=1).
    assert attempted == ["shop-app:src-r2", "shop-app:src-r1"]
    assert done.stdout.strip() == "app images: kept=5 removed=2 skipped=0 failed=0"


def test_prune_of_registry_images_removes_tags_and_digest_only_pulls(tmp_path: Path):
    repo = "ghcr.io/acme/shop"
    listing = [
        row(3, "c3", repo, "1.3.0", "sha256:" + "3" * 64),
        row(2, "c2", repo, "1.2.0", "sha256:" + "2" * 64),
        row(1, "c1", repo, "<none>", "sha256:" + "1" * 64),  # pulled by digest only
        row(1, "c0", repo, "1.0.0", hour=9),  # tagged by hand, never pushed: kept
    ]
    state = {"listing": listing, "ids": {f"{repo}:1.3.0": "sha256:c3"}, "containers": {}}
    done, attempted = run_prune(tmp_path, state, f"{repo}:1.3.0", keep=1, repository=repo)
    assert done.returncode == 0, done.stderr
    assert attempted == [f"{repo}@sha256:" + "1" * 64]
    assert done.stdout.strip() == "app images: kept=3 removed=1 skipped=0 failed=0"


def test_prune_skips_an_image_taken_meanwhile_and_fails_loudly_on_any_other_error(tmp_path: Path):
    listing = [row(day, f"a{day}", "shop-app", f"src-r{day}") for day in range(1, 6)]
    state = {
        "listing": listing,
        "ids": {"shop-app:src-r5": "sha256:a5"},
        "containers": {},
        "in_use": ["shop-app:src-r2"],  # a container created after the listing
        "broken": ["shop-app:src-r1"],
    }
    done, attempted = run_prune(tmp_path, state, "shop-app:src-r5", keep=1)
    assert attempted == ["shop-app:src-r3", "shop-app:src-r2", "shop-app:src-r1"]
    assert done.stdout.strip() == "app images: kept=4 removed=1 skipped=1 failed=1"
    assert done.stderr.strip() == (
        "image-prune: could not remove shop-app:src-r1: Error response from daemon: permission denied"
    )
    assert done.returncode == 1, "a real error is not hidden: the command fails and runs again next release"


def test_prune_fails_at_once_when_the_engine_cannot_be_listed(tmp_path: Path):
    state = {"listing": [], "ids": {}, "containers": {}, "ls_fails": True}
    done, attempted = run_prune(tmp_path, state, "shop-app:src-r5", keep=1)
    assert done.returncode == 1 and attempted == []
    assert "Cannot connect to the Docker daemon" in done.stderr
