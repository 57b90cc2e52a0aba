"""TLS from an ACME CA, renewed under load with no nginx reload: Debian's nginx, Pebble as the
CA, and `acme/renew.sh` driving lego, all on 127.0.0.1.

nginx loads a certificate given with a variable in its path (nginx >= 1.15.9) in every
handshake, so `ssl_certificate .../fullchain.pem$bg_tls_per_handshake` (a map that is always
empty) serves whatever file is there now. `renew.sh` renews with the same private key and
renames the new fullchain.pem into place: the next handshake serves it.

The nginx config is the product's (core/router_config.py with an ACME certificate: the HTTPS
server loads it per handshake; port 80 serves the ACME challenges from the webroot and
redirects the rest). No assertion depends on timing: a handshake started after the rename
was seen must serve the new certificate (causal), waits are bounded, and the measured time
from the rename to the first handshake with the new certificate is reported, not asserted.
"""

from __future__ import annotations

import grp
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.router_config import RouterConfigInput, TlsFiles, render_router_config
from tests.component.acme import (
    RENEW_SCRIPT,
    AcmeError,
    AcmeSite,
    Pebble,
    RenewalMeasurement,
    fresh_handshake,
    low_port,
    public_key_pem,
    renew_env,
    renew_under_load,
    run_renew,
    tools_dir,
    wait_for,
)
from tests.component.nginx_harness import HarnessError, Ports, Router, fetch, loopback_only

DOMAIN = "shop.example.com"
# Workers run as nobody:nogroup when the tests run as root (tests/component/nginx_harness.py),
# and a per-handshake certificate is read by the worker: the key must be readable by its group.
WORKER_GROUP = "nogroup" if os.geteuid() == 0 else None

CHALLENGE_LOCATION = "location ^~ /.well-known/acme-challenge/ {"
ROUTER_HEALTH = "/_bluegreen/health"


def render_site(router: Router, site: AcmeSite) -> str:
    """The product's router config (core/router_config.py) for an ACME certificate, bound to
    loopback, with an access log on the challenge location so the test can count validations."""
    closed = f"127.0.0.1:{low_port()}"  # no color is needed: the tests talk to the router itself
    rendered = render_router_config(RouterConfigInput(
        domain=site.domain,
        upstreams={"blue": closed, "green": closed},
        state_dir=str(router.state_dir),
        resolver=None,
        **router.listen(),
        public_https_port=router.ports.https,
        tls=TlsFiles(str(site.tls_dir / "fullchain.pem"), str(site.tls_dir / "privkey.pem"), per_handshake=True),
        acme_webroot=str(site.webroot),
    ))
    assert CHALLENGE_LOCATION in rendered
    access_log = f"access_log {router.root / 'acme-http.log'};"
    logged = rendered.replace(CHALLENGE_LOCATION, f"{CHALLENGE_LOCATION}\n        {access_log}")
    return loopback_only(logged)


def challenge_hits(router: Router) -> int:
    """Challenge files nginx served with 200 on port 80 (the CA's HTTP-01 validations)."""
    log = router.root / "acme-http.log"
    if not log.exists():
        return 0
    return sum(
        1 for line in log.read_text().splitlines() if "/.well-known/acme-challenge/" in line and '" 200 ' in line
    )


def first_cert_serial(fullchain: Path) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-serial", "-in", str(fullchain)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.strip().split("=", 1)[1].upper()


@pytest.fixture
def pebble_and_router(request: pytest.FixtureRequest) -> Iterator[tuple[Pebble, Router, AcmeSite]]:
    failed_before = request.session.testsfailed
    try:
        tools_dir()
        router = Router(ports=Ports(http=low_port(), https=low_port(), preview=low_port(), probe=low_port()))
    except (AcmeError, HarnessError) as exc:
        pytest.fail(str(exc), pytrace=False)
    site_root = router.root / "site"
    site = AcmeSite(
        domain=DOMAIN, webroot=site_root / "webroot", state_dir=site_root / "state", tls_dir=site_root / "tls"
    )
    for directory in (site_root, site.webroot):
        directory.mkdir(parents=True)
        directory.chmod(0o755)
    pebble: Pebble | None = None
    set_up = False
    try:
        router.install(render_site(router, site))
        test = router.nginx_test()
        assert test.returncode == 0, test.stderr
        router.start_plain()
        pebble = Pebble(http_port=router.ports.http)
        pebble.start()
        set_up = True
        yield pebble, router, site
    finally:
        if pebble is not None:
            pebble.stop()
        router.stop()
        # The call's report is in by teardown: the logs only when this test failed (or setup did).
        if request.session.testsfailed != failed_before or not set_up:
            if pebble is not None:
                sys.stderr.write(pebble.logs() + "\n")
            sys.stderr.write(f"nginx in {router.root}:\n{router.logs()}\n")
            if site.lego_log.exists():
                sys.stderr.write(f"--- lego-last-run.log\n{site.lego_log.read_text()[-3000:]}\n")
        shutil.rmtree(router.root, ignore_errors=True)
        if pebble is not None:
            shutil.rmtree(pebble.root, ignore_errors=True)


def test_certificate_from_acme_renewed_under_load_without_reload(
    pebble_and_router: tuple[Pebble, Router, AcmeSite], router_report: Callable[[str], None]
) -> None:
    """nginx starts with no certificate at all; `renew.sh once` gets one from Pebble over
    HTTP-01 through nginx's port 80 and installs it; a second `once` finds nothing due (exit
    3). Then `renew.sh now` under continuous HTTPS load (keep-alive and fresh connections,
    never retried): zero failed requests, the same nginx master and workers (no reload, no
    restart), a new certificate serial on the next fresh handshake, the same private key, and
    every handshake begun after the rename serves the new certificate."""
    pebble, router, site = pebble_and_router
    env = renew_env(site, pebble, tls_group=WORKER_GROUP)
    context = pebble.client_context()
    master, workers = router.master_pid, router.workers()
    https = router.ports.https

    # Before the first certificate nginx runs, answers on port 80, and fails handshakes only.
    with pytest.raises((OSError, ValueError)):
        fresh_handshake(site.domain, https, context, timeout=5)
    redirect = fetch("127.0.0.1", router.ports.http, "/app/x?y=1", headers={"Host": site.domain})
    assert (redirect.status, redirect.headers["location"]) == (301, f"https://{site.domain}:{https}/app/x?y=1")

    started = time.monotonic()
    obtained = run_renew("once", env)
    obtain_seconds = time.monotonic() - started
    assert obtained.returncode == 0, f"{obtained.stdout}\n{obtained.stderr}"
    assert "obtain:" in obtained.stdout and "installed" in obtained.stdout, obtained.stdout
    assert challenge_hits(router) >= 1, "the CA did not fetch the challenge through nginx's port 80"
    assert site.lego_log.exists()
    assert "PRIVATE KEY" not in obtained.stdout + obtained.stderr

    key_mode = site.privkey.stat()
    assert stat.S_IMODE(key_mode.st_mode) == (0o640 if WORKER_GROUP else 0o600)
    if WORKER_GROUP:
        assert key_mode.st_gid == grp.getgrnam(WORKER_GROUP).gr_gid
    assert stat.S_IMODE(site.fullchain.stat().st_mode) == 0o644
    assert not list(site.tls_dir.glob(".*")), "a temporary file was left in the TLS directory"

    first_serial, first_der = fresh_handshake(site.domain, https, context)
    assert first_serial.upper() == first_cert_serial(site.fullchain)
    key_before = site.privkey.read_bytes()
    public_key = public_key_pem(key_before, "pkey")
    assert public_key_pem(first_der, "x509") == public_key

    again = run_renew("once", env)
    assert again.returncode == 3, f"{again.stdout}\n{again.stderr}"
    assert "not due" in again.stdout, again.stdout
    assert fresh_handshake(site.domain, https, context)[0] == first_serial
    hits_before = challenge_hits(router)

    # The router's own location: no color is involved in what TLS does.
    measured: RenewalMeasurement = renew_under_load(env, site, https, context, path=ROUTER_HEALTH)
    print(f"\nfirst issuance (renew.sh once, HTTP-01 through nginx): {obtain_seconds:.2f} s")
    print(measured.summary())
    router_report(measured.summary())

    result = measured.result
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "forced renewal:" in result.stdout and "installed" in result.stdout, result.stdout
    assert "key changed" not in result.stdout
    failures = measured.failures
    assert not failures, f"{len(failures)} failed requests, first: {failures[:5]}"
    assert len(measured.samples) >= 300, f"load too thin to mean anything ({len(measured.samples)} requests)"
    assert measured.during_renewal, "no request ran during the renewal"

    assert router.running() and router.master_pid == master, "nginx restarted"
    assert router.pid_file.read_text().strip() == str(master)
    assert router.workers() == workers, "nginx reloaded (its workers changed)"

    new_serial, new_der = fresh_handshake(site.domain, https, context)
    assert new_serial != first_serial, "the renewal did not change the served certificate"
    assert new_serial.upper() == first_cert_serial(site.fullchain)
    assert site.privkey.read_bytes() == key_before, "the private key changed"
    assert public_key_pem(new_der, "x509") == public_key
    assert challenge_hits(router) > hits_before, "the renewal was not validated through nginx's port 80"

    assert measured.renamed_at is not None, "the new fullchain.pem was never renamed into place"
    assert measured.renamed_at <= measured.renew_ended
    assert measured.first_new_handshake is not None
    fresh = [s for s in measured.samples if s.new_connection and s.serial]
    late_old = [s for s in fresh if s.start > measured.renamed_at and s.serial == first_serial]
    assert not late_old, f"handshakes begun after the rename served the old certificate: {late_old[:5]}"
    early_new = [s for s in fresh if s.end < measured.renew_started and s.serial != first_serial]
    assert not early_new, early_new[:5]
    keepalive = {s.stream for s in measured.samples if s.stream.startswith("ka")}
    reopened = [s for s in measured.samples if s.stream in keepalive and s.new_connection]
    assert len(reopened) == len(keepalive), "a keep-alive connection was closed during the renewal"


def test_loop_checks_then_stops_on_sigterm(pebble_and_router: tuple[Pebble, Router, AcmeSite]) -> None:
    """`renew.sh loop` obtains on its first pass, logs when it checks next, and a SIGTERM
    during its sleep ends it at once with exit 0 (a container's PID 1 needs the handler).
    Also the other way to let the worker read the key: no group, ACME_KEY_MODE=0644; and no
    account email (optional since lego v5)."""
    pebble, router, site = pebble_and_router
    env = renew_env(site, pebble, ACME_CHECK_SECONDS="3600", ACME_KEY_MODE="0644", ACME_EMAIL="")
    out = router.root / "loop.out"
    with out.open("w") as stdout:
        loop = subprocess.Popen(["sh", str(RENEW_SCRIPT), "loop"], env=env, stdout=stdout)
    try:
        wait_for(lambda: "next check in 3600s" in out.read_text(), 120, "the loop's first pass")
        assert "installed" in out.read_text()
        assert stat.S_IMODE(site.privkey.stat().st_mode) == 0o644
        assert fresh_handshake(site.domain, router.ports.https, pebble.client_context())[0]
        os.kill(loop.pid, signal.SIGTERM)
        assert loop.wait(timeout=10) == 0
        assert out.read_text().rstrip().endswith("stopped")
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait(timeout=10)


@pytest.mark.parametrize(
    ("verb", "unset", "message"),
    [
        ("once", "ACME_DOMAIN", "ACME_DOMAIN is not set"),
        ("now", "ACME_TLS_DIR", "ACME_TLS_DIR is not set"),
        ("bogus", None, "usage:"),
    ],
)
def test_renew_refuses_bad_usage(verb: str, unset: str | None, message: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ACME_DOMAIN": DOMAIN,
        "ACME_EMAIL": "ops@shop.example.com",
        "ACME_DIRECTORY_URL": "https://127.0.0.1:1/dir",
        "ACME_WEBROOT": str(tmp_path),
        "ACME_STATE_DIR": str(tmp_path / "state"),
        "ACME_TLS_DIR": str(tmp_path / "tls"),
    }
    if unset:
        del env[unset]
    result = subprocess.run(["sh", str(RENEW_SCRIPT), verb], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert not (tmp_path / "tls").exists()
