"""What loading the certificate in every handshake costs nginx: full TLS handshakes per
second with a static `ssl_certificate` against the per-handshake form
(`ssl_certificate .../fullchain.pem$bg_tls_per_handshake`, which lets a renewed certificate be
picked up with no reload).

    .venv/bin/python bench/tls_handshake.py [--seconds 4] [--rounds 3] [--clients 2]

One nginx (the router image's, as in tests/component/nginx_harness.py: 2 workers as nobody) with two
HTTPS servers on 127.0.0.1 that differ only in that line, both on the same files: an EC P-256
leaf plus its issuer (the shape of a Let's Encrypt fullchain.pem) made with openssl. Client
processes open fresh connections and complete a full TLS 1.3 handshake on each (no session is
offered, so none is resumed), then close; no HTTP request. Rounds alternate between the two
servers. Printed per form: the median handshakes/s over the rounds and nginx's CPU time per
handshake (its workers' utime+stime from /proc), which is the cost itself even when the
clients, on the same 2 cores, are what limits the rate. Then the ratio.
Traffic goes only to 127.0.0.1; every round is bounded by --seconds and --handshakes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.component.acme import low_port  # noqa: E402
from tests.component.nginx_harness import Ports, Router, workers_cpu_seconds  # noqa: E402

SERVER_NAME = "bench.example.com"

CONF = """\
map "" $bg_tls_per_handshake {{
    default "";
}}

server {{
    listen 127.0.0.1:{static_port} ssl;
    server_name {name};
    ssl_certificate {tls}/fullchain.pem;
    ssl_certificate_key {tls}/privkey.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ return 200 "ok\\n"; }}
}}

server {{
    listen 127.0.0.1:{variable_port} ssl;
    server_name {name};
    ssl_certificate {tls}/fullchain.pem$bg_tls_per_handshake;
    ssl_certificate_key {tls}/privkey.pem$bg_tls_per_handshake;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ return 200 "ok\\n"; }}
}}
"""


def make_chain(directory: Path) -> None:
    """A CA and a leaf signed by it; fullchain.pem = leaf + CA, as an ACME CA hands it out."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=directory)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    openssl("req", *ec, "-keyout", "privkey.pem", "-out", "leaf.csr", "-subj", f"/CN={SERVER_NAME}")
    extensions = directory / "leaf.ext"
    extensions.write_text(f"subjectAltName=DNS:{SERVER_NAME}\n")
    openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    (directory / "fullchain.pem").write_bytes(
        (directory / "leaf.pem").read_bytes() + (directory / "ca.pem").read_bytes()
    )
    (directory / "privkey.pem").chmod(0o644)  # the per-handshake form reads it in the worker (nobody)


def handshakes(port: int, seconds: float, limit: int, out: multiprocessing.SimpleQueue[tuple[int, int]]) -> None:
    """Client process: fresh connections with a full handshake each, until the time or count."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The server's cost is under test, not the client's: no chain or name check here.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    done = failed = 0
    deadline = time.monotonic() + seconds
    while done < limit and time.monotonic() < deadline:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
            ):
                if not tls.getpeercert(binary_form=True):
                    raise ssl.SSLError("no certificate")
            done += 1
        except OSError:
            failed += 1
    out.put((done, failed))


@dataclass
class Round:
    form: str
    handshakes: int
    failed: int
    seconds: float
    nginx_cpu: float

    @property
    def rate(self) -> float:
        return self.handshakes / self.seconds

    @property
    def cpu_us_per_handshake(self) -> float:
        return 1e6 * self.nginx_cpu / max(self.handshakes, 1)


def run_round(router: Router, form: str, port: int, clients: int, seconds: float, limit: int) -> Round:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.SimpleQueue[tuple[int, int]] = ctx.SimpleQueue()
    per_client = max(1, limit // clients)
    procs = [ctx.Process(target=handshakes, args=(port, seconds, per_client, out)) for _ in range(clients)]
    cpu_before = workers_cpu_seconds(router.master_pid)
    started = time.monotonic()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=seconds + 30)
        if proc.is_alive():
            proc.kill()
            raise RuntimeError("a client process did not finish in time")
    elapsed = time.monotonic() - started
    cpu = workers_cpu_seconds(router.master_pid) - cpu_before
    results = [out.get() for _ in procs]
    return Round(form, sum(r[0] for r in results), sum(r[1] for r in results), elapsed, cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="cap per round (default 4)")
    parser.add_argument("--handshakes", type=int, default=20000, help="cap per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per form, alternating (default 3)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    args = parser.parse_args()

    router = Router(ports=Ports(http=low_port(), https=low_port(), preview=low_port()))
    static_port, variable_port = router.ports.http, router.ports.https
    try:
        make_chain(router.root / "tls")
        (router.root / "tls").chmod(0o755)
        router.install(
            CONF.format(static_port=static_port, variable_port=variable_port, name=SERVER_NAME, tls=router.root / "tls")
        )
        router.start_plain()
        forms = {"static": static_port, "per-handshake": variable_port}
        for form, port in forms.items():  # warm-up: page cache, worker allocations
            run_round(router, form, port, args.clients, 0.5, 200)
        rounds: list[Round] = []
        for _ in range(args.rounds):
            for form, port in forms.items():
                result = run_round(router, form, port, args.clients, args.seconds, args.handshakes)
                rounds.append(result)
                print(
                    f"  {form:>13}: {result.handshakes} handshakes in {result.seconds:.2f} s = {result.rate:.0f}/s, "
                    f"nginx {result.cpu_us_per_handshake:.0f} us CPU each, {result.failed} failed",
                    flush=True,
                )
        if any(r.failed for r in rounds):
            print(f"failed handshakes:\n{router.logs()}", file=sys.stderr)
            return 1
        summary = {}
        for form in forms:
            mine = [r for r in rounds if r.form == form]
            summary[form] = (
                statistics.median(r.rate for r in mine),
                statistics.median(r.cpu_us_per_handshake for r in mine),
            )
            print(f"{form:>13}: {summary[form][0]:.0f} handshakes/s, nginx {summary[form][1]:.0f} us CPU per handshake")
        rate_ratio = summary["per-handshake"][0] / summary["static"][0]
        cpu_ratio = summary["per-handshake"][1] / summary["static"][1]
        print(f"per-handshake / static: {rate_ratio:.2f}x the handshakes/s, {cpu_ratio:.2f}x nginx CPU per handshake")
        return 0
    finally:
        router.stop()
        shutil.rmtree(router.root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
