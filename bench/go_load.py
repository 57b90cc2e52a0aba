"""The Go load client (bench/loadgen) behind the interface of tests/component's LoadClient.

Built on first use with the machine's Go (standard library only) into the cache, keyed by the
source's digest. Its samples carry CLOCK_MONOTONIC times, so they line up with the
time.monotonic() a benchmark reads around its switch.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.component.nginx_harness import Sample  # noqa: E402

SOURCE = Path(__file__).resolve().parent / "loadgen" / "main.go"


def binary() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("MEDUSA_BG_CACHE") or Path.home() / ".cache/medusa-bluegreen")
    built = cache / "tools" / f"loadgen-{digest}" / "loadgen"
    if not built.exists():
        built.parent.mkdir(parents=True, exist_ok=True)
        partial = built.with_suffix(".partial")
        subprocess.run(["go", "build", "-trimpath", "-o", str(partial), str(SOURCE)], check=True,
                       cwd=SOURCE.parent, capture_output=True, timeout=600)
        partial.rename(built)
    return built


def parse(output: str) -> list[Sample]:
    """The client's `T0` line and `S` lines as Samples (seconds on the monotonic clock)."""
    lines = output.splitlines()
    if not lines or not lines[0].startswith("T0 "):
        raise ValueError(f"loadgen printed no T0 line: {output[:200]!r}")
    t0 = int(lines[0].split()[1]) / 1e9
    samples = []
    for line in lines[1:]:
        _, stream, start, end, status, color, fresh, error = line.split(" ", 7)
        samples.append(Sample(
            stream=stream, start=t0 + int(start) / 1e9, end=t0 + int(end) / 1e9,
            status=None if status == "-" else int(status), color=None if color == "-" else color,
            error=None if error == "-" else error.replace("_", " "), new_connection=fresh == "1",
        ))
    return sorted(samples, key=lambda s: s.start)


class GoLoadClient:
    """`connections` keep-alive connections at `per_connection_rate` requests/s each for
    `duration` seconds, never retrying (bench/loadgen/main.go)."""

    def __init__(self, port: int, connections: int = 20, per_connection_rate: float = 20.0,
                 duration: float = 12.0, path: str = "/") -> None:
        self.argv = [
            str(binary()), f"-addr=127.0.0.1:{port}", f"-path={path}", f"-conns={connections}",
            f"-rate={per_connection_rate}", f"-duration={duration}s",
        ]
        self.duration = duration
        self.started_at = 0.0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> GoLoadClient:
        self._process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.started_at = time.monotonic()
        return self

    def join(self) -> list[Sample]:
        assert self._process is not None, "start() first"
        out, err = self._process.communicate(timeout=self.duration + 60)
        if self._process.returncode != 0:
            raise RuntimeError(f"loadgen exited {self._process.returncode}: {err.strip()[:500]}")
        samples = parse(out)
        if samples:
            self.started_at = min(s.start for s in samples)
        return samples
