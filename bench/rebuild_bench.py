"""How long a release waits for its image: cold build, code-only rebuild, no-change rebuild.

    .venv/bin/python bench/rebuild_bench.py        (make bench)

Builds examples/medusa-app exactly as `pulumi up` does for a `<color>Build` (the same
docker_cli.build_image line, BuildKit, on the harness dockerd), from a copy of the app:
  cold:        the BuildKit cache pruned first (`docker builder prune -af`; base image kept)
  code change: src/api/hello/route.ts edited, warm cache
  no change:   the same context again (what `pulumi up` skips entirely: same digest, same tag)
The seed system spent about 20 of its 22 minutes per deploy building. Prints one line each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.app_build import context_digest  # noqa: E402
from core.docker_cli import build_image  # noqa: E402
from tests.e2e.project import (  # noqa: E402
    copy_example_app,
    engine_env,
)

ARGS = {"NODE_IMAGE": "medusa-bg/node:22"}
SECRETS = {"ca": "/etc/ssl/certs/ca-certificates.crt"}


def docker_env() -> dict[str, str]:
    """The harness environment (dockerd started if needed, its docker client first on PATH)."""
    env = engine_env()
    subprocess.run([str(REPO / "harness/images.sh")], env=env, check=True, capture_output=True)
    return {**env, "DOCKER_BUILDKIT": "1"}


def build(app: Path, tag: str, env: dict[str, str]) -> float:
    began = time.monotonic()
    subprocess.run(["sh", "-c", build_image(str(app), tag, ARGS, SECRETS, None)], env=env, check=True,
                   capture_output=True, text=True)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-cache", action="store_true", help="skip the cold build (do not prune)")
    options = parser.parse_args()
    env = docker_env()
    with tempfile.TemporaryDirectory() as scratch:
        app = copy_example_app(Path(scratch))
        results = []
        if not options.keep_cache:
            subprocess.run(["docker", "builder", "prune", "-af"], env=env, check=True, capture_output=True)
            results.append(("cold (empty BuildKit cache)", build(app, "bench-app:cold", env)))
        hello = app / "src/api/hello/route.ts"
        hello.write_text(hello.read_text().replace("Hello from Medusa", "Hello from Medusa (bench)"))
        results.append(("code-only change, warm cache", build(app, "bench-app:code", env)))
        results.append(("no change, warm cache", build(app, "bench-app:same", env)))
        digest = context_digest(app, ARGS)[:20]
        size = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", "bench-app:same"],
                              env=env, check=True, capture_output=True, text=True).stdout.strip()
        for tag in ("bench-app:cold", "bench-app:code", "bench-app:same"):
            subprocess.run(["docker", "image", "rm", tag], env=env, capture_output=True)
    print("image rebuild (examples/medusa-app, docker_cli.build_image, BuildKit on the harness dockerd)")
    for label, seconds in results:
        print(f"  {label:32s} {seconds:7.1f} s")
    print(f"  no change under pulumi up: 0 s (context digest {digest}... unchanged, no build step)")
    print(f"  runtime image size: {int(size) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
