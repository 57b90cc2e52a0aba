"""The production path: CI runner -> ssh -> VPS, with TLS from ACME.

The test process plays the CI runner. The Docker host is the simulated VPS (harness/vps.sh), set
up by the runbook script (scripts/host/setup.sh) and reached only as ssh://deploy@ADDR with a
pinned host key; the runner has no Docker socket of its own. The certificate for DOMAIN comes
from Pebble (Let's Encrypt's test CA, on the harness network's gateway) over HTTP-01 through the
router, and the client trusts Pebble's root and nothing else. All traffic goes to the VPS's
address on the harness network, bounded in count and time.

Scenarios run in order but each brings the stack to what it needs first (`release`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.component.acme import Pebble
from tests.e2e.conftest import measure
from tests.e2e.load import Load
from tests.e2e.project import REPO, PulumiStack, Run
from tests.e2e.vps import Vps

PREFIX = "shop"
DOMAIN = "shop.test"
V1, V2, NEVER = "medusa-bg/testapp:v1", "medusa-bg/testapp:v2", "medusa-bg/testapp:never-healthy"
LEGO = "medusa-bg/lego:v5.6.0"
SERVICE_IMAGES = {"postgres": "medusa-bg/postgres:15", "redis": "medusa-bg/redis:7", "nginx": "medusa-bg/nginx:1.28",
                  "acme": LEGO}
CA_ON_HOST = "/etc/medusa-bluegreen/acme-test-ca.pem"
PREVIEW_TOKEN = "vps-preview-token-0123456789abcdef"
# What a scan from outside may find open: sshd (the deploy path itself) and the router.
OPEN_FROM_OUTSIDE = {22, 80, 443}


@pytest.fixture(scope="module")
def vps_images() -> list[str]:
    """What the VPS holds besides what its stack builds (it reaches no registry either)."""
    return [*SERVICE_IMAGES.values(), V1, V2, NEVER]


@pytest.fixture(scope="module")
def vps(engine: dict[str, str], vps_images: list[str]) -> Iterator[Vps]:
    built = subprocess.run([str(REPO / "harness/images.sh"), "lego"], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, f"harness/images.sh lego failed:\n{built.stderr[-3000:]}"
    host = Vps.up(fresh=True, images=vps_images)
    try:
        began = time.monotonic()
        host.setup_host()
        measure(f"vps. scripts/host/setup.sh on a fresh host: {time.monotonic() - began:.1f}s")
        yield host
    finally:
        host.down()


@pytest.fixture(scope="module")
def pebble(vps: Vps) -> Iterator[Pebble]:
    ca = Pebble(http_port=80, host=vps.gateway, validation_ipv4=vps.address).start()
    try:
        vps.root_ssh(f"install -d -m 755 {Path(CA_ON_HOST).parent} && rm -rf {CA_ON_HOST} && cat > {CA_ON_HOST}",
                     input=ca.listener_cert.read_text())
        yield ca
    finally:
        ca.stop()


@pytest.fixture(scope="module", autouse=True)
def domain_points_at_the_vps(vps: Vps) -> Iterator[None]:
    """The DNS record of the runbook, for this process only: DOMAIN resolves to the VPS."""
    real = socket.getaddrinfo

    def pinned(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(vps.address if host == DOMAIN else host, *args, **kwargs)

    socket.getaddrinfo = pinned  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


def stack_config(vps: Vps, pebble: Pebble, **changes: Any) -> dict[str, Any]:
    return {
        "domain": DOMAIN,
        "prefix": PREFIX,
        "dockerHost": vps.docker_host,
        "meilisearch": {"enabled": False},
        "services": {"hardened": True},  # as Pulumi.production.yaml
        "images": SERVICE_IMAGES,
        "router": {"rateLimitPerSecond": 5000, "rateLimitBurst": 5000},
        "tls": {"enabled": True, "acme": {"directoryUrl": pebble.directory_url, "email": "ops@shop.test",
                                          "caCertificatesPath": CA_ON_HOST}},
        "healthGate": {"deadlineSeconds": 40, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 3},
        "medusa": {"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 3},
        "activeColor": "blue",
        "blueImage": V1,
        **changes,
    }


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], vps: Vps, pebble: Pebble, workdir: Path) -> Iterator[PulumiStack]:
    # The runner: the built engine, the ssh wrapper on PATH, and DOCKER_HOST only as ssh://.
    env = {**engine, "PATH": f"{vps.ssh_wrapper_dir}:{engine['PATH']}", "DOCKER_HOST": vps.docker_host}
    stack = PulumiStack(workdir, env, stack=PREFIX)
    stack.set_config(stack_config(vps, pebble))
    yield stack
    stack.run("destroy", "--yes", check=False, timeout=600)


def release(stack: PulumiStack, vps: Vps, pebble: Pebble, **changes: Any) -> Run:
    stack.set_config(stack_config(vps, pebble, **changes))
    return stack.up()


def site(pebble: Pebble, path: str = "/", **kwargs: Any) -> requests.Response:
    return requests.get(f"https://{DOMAIN}{path}", verify=str(pebble.root_cert), timeout=10, **kwargs)


def live(pebble: Pebble) -> dict[str, Any]:
    response = site(pebble)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["X-Bluegreen-Color"] == body["color"]
    return body


def served_serial(pebble: Pebble) -> int:
    """The serial of the certificate a fresh handshake gets, checked against Pebble's root."""
    context = ssl.create_default_context(cafile=str(pebble.root_cert))
    with socket.create_connection((DOMAIN, 443), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
        cert = tls.getpeercert()
    assert cert is not None
    return int(str(cert["serialNumber"]), 16)


def https_load(pebble: Pebble, path: str = "/") -> Load:
    return Load(f"https://{DOMAIN}{path}", keepalive_clients=3, fresh_clients=2, rate_per_client=15,
                max_seconds=300, verify=str(pebble.root_cert))


def assert_clean(load: Load, label: str) -> None:
    report = load.stop()
    measure(f"{label}: {report.summary()}")
    assert report.total > 0
    assert report.failed == 0, report.failures


def test_a_first_release_over_ssh_obtains_the_certificate(stack: PulumiStack, vps: Vps, pebble: Pebble) -> None:
    run = release(stack, vps, pebble)
    measure(f"vps a. first release over ssh with ACME issuance: pulumi up {run.seconds:.1f}s")
    assert live(pebble) == {"color": "blue", "version": "v1", "mode": "server"}
    redirect = requests.get(f"http://{DOMAIN}/store/products?x=1", allow_redirects=False, timeout=10)
    assert (redirect.status_code, redirect.headers["Location"]) == (301, f"https://{DOMAIN}/store/products?x=1")
    challenge = requests.get(f"http://{DOMAIN}/.well-known/acme-challenge/none", allow_redirects=False, timeout=10)
    assert challenge.status_code == 404, "the challenge path is served on port 80, not redirected"


def test_b_release_to_green_under_https_load_drops_nothing(stack: PulumiStack, vps: Vps, pebble: Pebble) -> None:
    release(stack, vps, pebble)
    with https_load(pebble) as load:
        run = release(stack, vps, pebble, activeColor="green", greenImage=V2)
        time.sleep(1)
    assert_clean(load, f"vps b. release to green over ssh under HTTPS load: pulumi up {run.seconds:.1f}s")
    assert live(pebble)["color"] == "green"


def test_c_never_healthy_release_fails_and_no_token_is_in_its_message(
    stack: PulumiStack, vps: Vps, pebble: Pebble
) -> None:
    release(stack, vps, pebble, activeColor="green", greenImage=V2)
    stack.set_config(stack_config(vps, pebble, activeColor="blue", blueImage=NEVER, greenImage=V2))
    stack.run("config", "set", "--secret", "previewToken", PREVIEW_TOKEN)
    with https_load(pebble) as load:
        run = stack.up(check=False)
    assert run.returncode != 0 and "health gate failed for color blue" in run.output, run.output[-3000:]
    assert f"via {PREFIX}-router" in run.output
    assert PREVIEW_TOKEN not in run.output
    assert_clean(load, f"vps c. never-healthy release over ssh refused (pulumi up failed after {run.seconds:.1f}s)")
    assert live(pebble)["color"] == "green"


def test_d_manual_switch_back_to_the_warm_color(stack: PulumiStack, vps: Vps, pebble: Pebble) -> None:
    release(stack, vps, pebble, activeColor="green", blueImage=V1, greenImage=V2)
    with https_load(pebble) as load:
        run = release(stack, vps, pebble, activeColor="blue", blueImage=V1, greenImage=V2)
        time.sleep(1)
    assert_clean(load, f"vps d. switch back to warm blue over ssh: pulumi up {run.seconds:.1f}s")
    assert live(pebble)["color"] == "blue"


def test_e_preview_and_refresh_are_clean_over_ssh(stack: PulumiStack, vps: Vps, pebble: Pebble) -> None:
    release(stack, vps, pebble, activeColor="blue", blueImage=V1, greenImage=V2)
    preview = stack.run("preview", "--expect-no-changes", check=False)
    assert preview.returncode == 0, preview.output[-4000:]
    refreshed = stack.run("refresh", "--yes", "--expect-no-changes", check=False)
    assert refreshed.returncode == 0, refreshed.output[-4000:]
    measure(f"vps e. preview {preview.seconds:.1f}s, refresh {refreshed.seconds:.1f}s over ssh, no changes")


def _answers(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
        return True
    return False


def test_f_from_outside_only_ssh_http_and_https_answer(stack: PulumiStack, vps: Vps, pebble: Pebble) -> None:
    release(stack, vps, pebble, activeColor="blue", blueImage=V1, greenImage=V2)
    with ThreadPoolExecutor(max_workers=256) as pool:
        ports = range(1, 65536)
        answered = pool.map(lambda port: _answers(vps.address, port), ports)
        open_ports = {port for port, up in zip(ports, answered, strict=True) if up}
    assert open_ports == OPEN_FROM_OUTSIDE
    # The preview route is still there for people on the host (an ssh tunnel), on its loopback
    # only: the scan above did not find it, and the gate never needed it.
    inside = vps.ssh("deploy", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9080/", check=False)
    assert inside.stdout.strip() == "200", inside.stdout + inside.stderr


def test_g_forced_renewal_under_load_is_served_without_a_reload(stack: PulumiStack, vps: Vps, pebble: Pebble) -> None:
    release(stack, vps, pebble, activeColor="blue", blueImage=V1, greenImage=V2)
    router = vps.docker("inspect", "--format", "{{.Id}}", f"{PREFIX}-router").stdout.strip()
    master = vps.docker("exec", f"{PREFIX}-router", "cat", "/run/nginx.pid").stdout.strip()
    before = served_serial(pebble)
    with https_load(pebble) as load:
        time.sleep(1)
        began = time.monotonic()
        renewed = subprocess.run([str(REPO / "bin/bluegreen"), "--stack", PREFIX, "--cwd", str(stack.workdir),
                                  "renew-cert"], env=stack.env, capture_output=True, text=True, timeout=180)
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        renewed_at = time.monotonic()
        while served_serial(pebble) == before and time.monotonic() - renewed_at < 10:
            time.sleep(0.05)
        first_new = time.monotonic()
        time.sleep(2)
    report = load.report
    assert_clean(load, f"vps g. forced renewal under HTTPS load: bin/bluegreen renew-cert {renewed_at - began:.1f}s, "
                       f"new certificate on the first handshake {1000 * (first_new - renewed_at):.0f} ms after it")
    assert report.total > 0
    assert served_serial(pebble) != before
    assert vps.docker("inspect", "--format", "{{.Id}}", f"{PREFIX}-router").stdout.strip() == router
    assert vps.docker("exec", f"{PREFIX}-router", "cat", "/run/nginx.pid").stdout.strip() == master
