"""Where the time of a code-only Medusa release goes, phase by phase.

    .venv/bin/python bench/medusa_release_phases.py        (make bench)

A real `pulumi up` on the harness dockerd with the real example app (examples/medusa-app) and
the checks the shipped stacks run (/ready, /app, the worker check): blue is deployed first, then
a one-line change of a route is released to green, and that second run is timed. pulumi prints a
line when a resource starts and when it is done; each line is stamped as it arrives, so a phase
is the span from its resource's first line to its last, to within the output's buffering (well
under 0.1 s). The phases run one after the other (each waits for the one before, docs/rules.md),
so the total is close to their sum; the rest is the engine's own work (plan, state writes).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.project import (  # noqa: E402
    PulumiStack,
    copy_example_app,
    destroy_with_data,
    docker,
    engine_env,
    local_stack_config,
    remove_leftovers,
)
from tests.e2e.test_medusa_release import GATE, HELLO, build_config  # noqa: E402

PREFIX = "benchmed"
HTTP_PORT, PREVIEW_PORT = 10080, 11080
# One line per resource step: "+  docker:index/container:Container green-server creating (0s)".
STEP = re.compile(r"^\s*[-+~<>]+\s+\S+\s+(?P<name>[\w.-]+)\s+(?P<verb>[a-z]+(?: replacement)?)\b")
# What each phase of a release is, by the name of the resource that does it (the target is green).
PHASES = [
    ("build", "green-build"),
    ("backup (dump, read back)", "green-backup"),
    ("migrate", "green-migrate"),
    ("server container", "green-server"),
    ("health gate (server boot)", "green-health-gate"),
    ("extra checks (/ready, /app)", "green-health-check"),
    ("schema check", "green-schema-check"),
    ("flip (live route)", "live-route"),
    ("post-switch check", "post-switch-check"),
    ("worker handover", "green-worker-handover"),
    ("worker container", "green-worker"),
    ("worker check", "green-worker-check"),
    ("image prune", "image-prune"),
]


STARTED = {"creating", "updating", "replacing", "deleting", "creating replacement", "deleting original"}
DONE = {"created", "updated", "replaced", "deleted", "created replacement", "deleted original"}


def timed_up(stack: PulumiStack) -> tuple[float, dict[str, tuple[float, float]]]:
    """`pulumi up` of the stack; its wall time and each resource's (started, done) line times,
    the first of each (the display prints a resource again at the end)."""
    started: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    began = time.monotonic()
    process = stack.start("up", "--yes", "--skip-preview")
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        now = time.monotonic() - began
        lines.append(line)
        step = STEP.match(line)
        if step is None:
            continue
        name, verb = step["name"], step["verb"]
        if verb in STARTED:
            started.setdefault(name, now)
        elif verb in DONE and name in started and name not in spans:
            spans[name] = (started[name], now)
    if process.wait() != 0:
        raise SystemExit("pulumi up failed:\n" + "".join(lines[-60:]))
    return time.monotonic() - began, spans


def phase_span(spans: dict[str, tuple[float, float]], prefix: str) -> tuple[float, float] | None:
    """The span of the resources named `prefix` or `prefix-N` (the extra checks are numbered)."""
    found = [span for name, span in spans.items() if name == prefix or re.fullmatch(rf"{prefix}-\d+", name)]
    if not found:
        return None
    return min(start for start, _ in found), max(end for _, end in found)


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None).parse_args()
    env = engine_env()  # the built engine and the harness dockerd (started if needed)
    os.environ.update({k: env[k] for k in ("DOCKER_HOST", "PATH", "PULUMI_HOME") if k in env})
    subprocess.run([str(REPO / "harness/images.sh")], env=env, check=True, capture_output=True, timeout=3600)
    remove_leftovers(PREFIX)
    with tempfile.TemporaryDirectory(prefix="medusa-bg-phases-") as scratch:
        app = copy_example_app(Path(scratch))
        workdir = Path(scratch) / "stack"
        workdir.mkdir()
        stack = PulumiStack(workdir, env, stack="bench")
        base = {
            **local_stack_config(PREFIX, HTTP_PORT, PREVIEW_PORT, healthGate=GATE,
                                 medusa={"serverMemoryMb": 1024, "workerMemoryMb": 1024, "stopTimeoutSeconds": 10}),
            "dockerHost": env["DOCKER_HOST"],
        }
        try:
            stack.set_config({**base, "activeColor": "blue", "blueBuild": build_config(app)})
            stack.up()
            blue_ref = stack.outputs()["imageRefs"]["blue"]
            hello = app / HELLO
            hello.write_text(hello.read_text().replace('"Hello from Medusa"', f'"Hello from Medusa, {time.time_ns()}"'))
            stack.set_config({**base, "activeColor": "green", "blueImage": blue_ref, "greenBuild": build_config(app)})
            total, spans = timed_up(stack)
            image = docker("image", "inspect", "--format", "{{.Size}}", stack.outputs()["imageRefs"]["green"])
        finally:
            destroy_with_data(stack, PREFIX)
    print("medusa release phases: a code-only change released to green (warm build cache, quiet machine)")
    accounted = 0.0
    for label, prefix in PHASES:
        span = phase_span(spans, prefix)
        if span is None:
            print(f"  {label:<28} -")
            continue
        start, end = span
        accounted += end - start
        print(f"  {label:<28} {end - start:6.1f}s   (from {start:5.1f}s to {end:5.1f}s)")
    named = {name for name in spans if any(phase_span({name: spans[name]}, prefix) for _, prefix in PHASES)}
    for name, (start, end) in sorted(spans.items(), key=lambda item: item[1]):
        if name not in named and end - start >= 0.3:
            print(f"  {'(' + name + ')':<28} {end - start:6.1f}s   (from {start:5.1f}s to {end:5.1f}s)")
    print(f"  {'total (pulumi up)':<28} {total:6.1f}s   ({total - accounted:.1f}s in no phase: plan, state, "
          f"the engine)")
    print(f"medusa release phases: app image {int(image) / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
