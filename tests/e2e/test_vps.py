"""The simulated VPS and the runbook that prepares a real one (scripts/host/setup.sh).

The test process plays the CI runner: it reaches the VPS (harness/vps.sh) only over ssh, with the
host key pinned, and Docker only as `ssh://deploy@VPS`. The module starts from a fresh VPS (a
recreated container; the image cache stays warm), records what a fresh host exposes, runs
setup.sh once, and then proves what setup.sh promises:

(a) deploy logs in with its key and the pinned host key; a wrong or unknown host key is refused
(b) no password or keyboard-interactive login (sshd -T, and the methods sshd offers)
(c) docker over ssh works from the runner's environment, which holds no unix DOCKER_HOST
(d) a second run changes nothing and says so
(e) from outside, published ports other than 80 and stray listeners are unreachable; 80 is
(f) a scan of all 65535 TCP ports finds exactly ssh and http open
(g) after a VPS restart (a reboot) dockerd, sshd and the firewall are back by themselves

Nothing here skips: a missing harness, image or tool fails the module and says why.
Run: .venv/bin/python -m pytest tests/e2e/test_vps.py -q -p no:cacheprovider -x
"""

from __future__ import annotations

import collections
import errno
import re
import resource
import select
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import measure
from tests.e2e.vps import Vps, harness_env

# Inside the VPS: a published port that must stay closed, the port a router publishes, and a
# process of the host's own (a forgotten dev server) on a port nobody opened.
NGINX = "medusa-bg/nginx:1.28"
CLOSED_PUBLISHED = 9999
STRAY_LISTENER = 8081
INNER_NET = "10.214.0.0/24"  # the VPS dockerd's default bridge (harness/images/vps/daemon.json)
EXPECTED_OPEN = {22, 80}
EXPECTED_REFUSED = {443}  # allowed by INPUT, nothing listens: the kernel answers RST
CONNECT_TIMEOUT = 3.0

STRAY_LISTENER_PIDFILE = "/run/vps-t-listener.pid"
STRAY_LISTENER_CMD = (
    "setsid -f perl -MIO::Socket::INET -e '"
    f"my $s = IO::Socket::INET->new(LocalPort => {STRAY_LISTENER}, Listen => 16, ReuseAddr => 1) or die; "
    f'open(my $p, ">", "{STRAY_LISTENER_PIDFILE}") or die; print $p $$; close $p; '
    'while (my $c = $s->accept) { my $r = <$c>; print $c "HTTP/1.0 200 OK\\r\\n\\r\\nstray listener\\n"; close $c }'
    "' </dev/null >/dev/null 2>&1"
)


@dataclass
class Fresh:
    """What the fresh VPS looked like before setup.sh, and setup.sh's first run."""

    sshd_before: dict[str, str]
    methods_before: str
    reachable_before: dict[int, bool]
    first_run: subprocess.CompletedProcess[str]
    first_run_seconds: float
    container_ip: str


def sshd_settings(vps: Vps) -> dict[str, str]:
    out = vps.root_ssh("sshd -T").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def offered_methods(vps: Vps, user: str) -> str:
    """The authentication methods sshd offers USER, without trying a single password: with
    public keys off and BatchMode on, ssh gives up at once and prints the server's list."""
    done = vps.ssh(user, "true", "-o", "ControlPath=none", "-o", "PubkeyAuthentication=no",
                   "-o", "BatchMode=yes", check=False, timeout=60)
    match = re.search(r"Permission denied \(([^)]*)\)", done.stderr)
    assert done.returncode == 255 and match, f"expected a refusal listing the methods:\n{done.stderr}"
    return match.group(1)


def tcp_connect(address: str, port: int, timeout: float = CONNECT_TIMEOUT) -> str:
    """'open', 'refused' or 'timeout' (a drop) for one connect from the runner."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"


def http_get(url: str, timeout: float = CONNECT_TIMEOUT) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body.decode(errors="replace")


def scan(address: str, ports: range, wait: float = 0.5) -> dict[str, set[int]]:
    """A TCP connect scan: non-blocking connects, up to a few thousand in flight. Each socket
    gets at least `wait` seconds, and its verdict is the kernel's (connected, refused, or still
    waiting for a SYN-ACK) read when that time is up, so a busy machine can only make the scan
    more patient, never report an open port as dropped."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    window = max(256, min(12000, soft - 1024))
    found: dict[str, set[int]] = {"open": set(), "refused": set(), "timeout": set(), "other": set()}
    todo = iter(ports)
    inflight: collections.deque[tuple[float, socket.socket, int]] = collections.deque()
    done: set[int] = set()  # ports classified early, by an epoll event
    poller = select.epoll()

    def verdict(sock: socket.socket) -> str:
        try:
            sock.getpeername()  # ENOTCONN while SYN_SENT or after a refusal
            return "open"
        except OSError:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            return "timeout" if err == 0 else "refused" if err == errno.ECONNREFUSED else "other"

    by_fd: dict[int, tuple[socket.socket, int]] = {}
    try:
        exhausted = False
        while inflight or not exhausted:
            while not exhausted and len(inflight) < window:
                port = next(todo, None)
                if port is None:
                    exhausted = True
                    break
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                # Closing a connected socket sends RST, not FIN: nothing lingers in TIME_WAIT.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                err = sock.connect_ex((address, port))
                if err not in (0, errno.EINPROGRESS):
                    found["other"].add(port)
                    sock.close()
                    continue
                poller.register(sock.fileno(), select.EPOLLOUT | select.EPOLLERR)
                by_fd[sock.fileno()] = (sock, port)
                inflight.append((time.monotonic() + wait, sock, port))
            full = exhausted or len(inflight) >= window
            timeout = max(inflight[0][0] - time.monotonic(), 0) if (inflight and full) else 0
            for fd, _ in poller.poll(timeout):
                sock, port = by_fd.pop(fd)
                poller.unregister(fd)
                kind = verdict(sock)
                if kind != "timeout":
                    found[kind].add(port)
                    done.add(port)
            now = time.monotonic()
            while inflight and inflight[0][0] <= now:
                _, sock, port = inflight.popleft()
                if port not in done:
                    found[verdict(sock)].add(port)
                by_fd.pop(sock.fileno(), None)
                sock.close()
    finally:
        poller.close()
        for _, sock, _ in inflight:
            sock.close()
    return found


@pytest.fixture(scope="module")
def vps() -> Iterator[Vps]:
    began = time.monotonic()
    vps = Vps.up(fresh=True)
    measure(f"vps: up --fresh {time.monotonic() - began:.1f}s ({vps.up_output.strip().splitlines()[-1]})")
    yield vps
    # The VPS stays up for the next module (warm); only this module's containers go.
    vps.root_ssh("docker rm -f vps-t-published vps-t-http >/dev/null 2>&1; "
                 f"kill $(cat {STRAY_LISTENER_PIDFILE} 2>/dev/null) 2>/dev/null; rm -f {STRAY_LISTENER_PIDFILE}",
                 check=False)
    vps.close_ssh_masters()


@pytest.fixture(scope="module")
def fresh(vps: Vps) -> Fresh:
    """The fresh host, as a provider hands it over: root by key, sshd defaults, no firewall.
    Listeners go up first, so the firewall is proven to close what was open."""
    sshd_before = sshd_settings(vps)
    methods_before = offered_methods(vps, "root")
    vps.root_ssh(
        f"docker run -d --name vps-t-published -p 0.0.0.0:{CLOSED_PUBLISHED}:80 {NGINX} >/dev/null"
        f" && docker run -d --name vps-t-http -p 80:80 {NGINX} >/dev/null && {STRAY_LISTENER_CMD}")
    container_ip = vps.root_ssh("docker inspect -f '{{.NetworkSettings.IPAddress}}' vps-t-http").stdout.strip()
    reachable_before = {}
    for port in (80, CLOSED_PUBLISHED, STRAY_LISTENER):
        reachable_before[port] = wait_open(vps.address, port)
    began = time.monotonic()
    first = vps.setup_host()
    seconds = time.monotonic() - began
    measure(f"vps: setup.sh first run {seconds:.1f}s")
    return Fresh(sshd_before, methods_before, reachable_before, first, seconds, container_ip)


def wait_open(address: str, port: int, within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if tcp_connect(address, port, timeout=1) == "open":
            return True
        time.sleep(0.2)
    return False


# --- (a) ssh as deploy, host key pinned -------------------------------------------------------


def test_setup_first_run_reports_its_changes(fresh: Fresh) -> None:
    out = fresh.first_run.stdout
    assert re.search(r"^setup\.sh: .*: \d+ changes$", out, re.M), out
    for what in ("created user deploy", "docker group", "deploy key added", "sshd reloaded", "INPUT policy DROP",
                 "DOCKER-USER rules"):
        assert what in out, f"setup.sh's first run does not mention {what!r}:\n{out}"


def test_deploy_logs_in_with_its_key_and_the_pinned_host_key(vps: Vps, fresh: Fresh, tmp_path: Path) -> None:
    ssh = shutil.which("ssh", path=vps.env["PATH"])
    assert ssh and Path(ssh).parent.name == "bin" and "vps" in ssh, f"runner's ssh is not the wrapper: {ssh}"
    # ControlPath=none: a new connection, so the host key is really checked (a master would not).
    done = vps.ssh("deploy", "id -un; id -nG", "-o", "ControlPath=none")
    assert done.stdout.split("\n")[0] == "deploy" and "docker" in done.stdout.split(), done.stdout
    # A different key for the same address: refused, as a MITM would be.
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"{vps.address} {' '.join(other.with_suffix('.pub').read_text().split()[:2])}\n")
    refused = vps.ssh("deploy", "true", "-o", "ControlPath=none", "-o", f"UserKnownHostsFile={wrong}",
                      check=False, timeout=60)
    assert refused.returncode == 255, refused
    assert "Host key verification failed" in refused.stderr, refused.stderr
    # An unknown host (empty known_hosts) is refused too, never learned (StrictHostKeyChecking yes).
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    unknown = vps.ssh("deploy", "true", "-o", "ControlPath=none", "-o", f"UserKnownHostsFile={empty}",
                      check=False, timeout=60)
    assert unknown.returncode == 255 and "Host key verification failed" in unknown.stderr, unknown.stderr
    assert empty.read_text() == "", "ssh learned the host key"
    # The deploy key is not root's, and the root key still works (prohibit-password).
    assert vps.root_ssh("id -un").stdout.strip() == "root"


# --- (b) no password login ----------------------------------------------------------------------


def test_password_and_keyboard_interactive_logins_are_off(vps: Vps, fresh: Fresh) -> None:
    # The fresh host allowed passwords (Debian's default sshd_config): setup.sh turned them off.
    assert fresh.sshd_before["passwordauthentication"] == "yes", fresh.sshd_before
    assert "password" in fresh.methods_before.split(","), fresh.methods_before
    after = sshd_settings(vps)
    assert after["passwordauthentication"] == "no"
    assert after["kbdinteractiveauthentication"] == "no"
    assert after["permitrootlogin"] == "without-password"  # sshd -T's name for prohibit-password
    for user in ("deploy", "root"):
        assert offered_methods(vps, user) == "publickey", user
    shadow = vps.root_ssh("getent shadow deploy").stdout.split(":")
    assert shadow[1] == "*", f"deploy has a password hash: {shadow[1]!r}"


# --- (c) docker over ssh from the runner ----------------------------------------------------


def test_docker_over_ssh_from_the_runner_environment(vps: Vps, fresh: Fresh) -> None:
    assert vps.env["DOCKER_HOST"] == f"ssh://deploy@{vps.address}"
    unix = {k: v for k, v in vps.env.items() if "unix://" in v or v.endswith("docker.sock")}
    assert not unix, f"the runner's environment points at a Docker socket: {unix}"
    explicit = vps.docker("-H", f"ssh://deploy@{vps.address}", "info", "--format", "{{.ID}} {{.Name}}").stdout.split()
    implicit = vps.docker("info", "--format", "{{.ID}} {{.Name}}").stdout.split()
    inner = vps.harness_exec("docker", "info", "--format", "{{.ID}} {{.Name}}").stdout.split()
    harness = subprocess.run(["docker", "info", "--format", "{{.ID}}"], env=harness_env(),
                             capture_output=True, text=True, check=True).stdout.strip()
    assert explicit == implicit == inner, (explicit, implicit, inner)
    assert explicit[1] == "mbg-vps" and explicit[0] != harness


# --- (d) idempotent -------------------------------------------------------------------------


def host_state(vps: Vps) -> str:
    """Everything setup.sh writes, in one text (iptables without packet counters)."""
    return vps.root_ssh(
        "iptables-save | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'; ip6tables-save | grep -v '^#' | "
        "sed 's/\\[[0-9]*:[0-9]*\\]//'; cat /etc/ssh/sshd_config.d/*.conf /home/deploy/.ssh/authorized_keys "
        "/etc/default/medusa-bg-firewall; getent passwd deploy; getent group docker; "
        "sha256sum /usr/local/sbin/medusa-bg-firewall").stdout


def test_second_run_changes_nothing_and_says_so(vps: Vps, fresh: Fresh) -> None:
    before = host_state(vps)
    began = time.monotonic()
    second = vps.setup_host()
    measure(f"vps: setup.sh second run {time.monotonic() - began:.1f}s")
    assert re.search(r"^setup\.sh: .*: no changes \(already set up\)$", second.stdout, re.M), second.stdout
    assert not re.search(r"^changed", second.stdout, re.M), second.stdout
    assert host_state(vps) == before


# --- (e) what the outside can reach ---------------------------------------------------------


def test_only_port_80_reaches_a_container_from_outside(vps: Vps, fresh: Fresh) -> None:
    assert all(fresh.reachable_before.values()), f"before setup.sh, a listener did not answer: {fresh.reachable_before}"
    assert "Welcome to nginx" in http_get(f"http://{vps.address}/")
    assert tcp_connect(vps.address, CLOSED_PUBLISHED) == "timeout"
    assert tcp_connect(vps.address, STRAY_LISTENER) == "timeout"
    # The listeners are there; the firewall is what keeps them in.
    inside = vps.root_ssh(f"curl -s -o /dev/null -w '%{{http_code}}' http://{vps.address}:{CLOSED_PUBLISHED}/;"
                          f" echo; curl -s http://127.0.0.1:{STRAY_LISTENER}/").stdout
    assert inside.startswith("200") and "stray listener" in inside, inside
    # Containers' own outbound traffic and name resolution still work (replies are ESTABLISHED).
    out = vps.docker("run", "--rm", NGINX, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
                     "http://deb.debian.org/debian/", timeout=120)
    assert out.stdout == "200", out
    # A neighbour routing straight at a container's address (FORWARD's policy is ACCEPT on a
    # host where ip_forward was on before dockerd) gets nothing, not even port 80.
    route = ["ip", "route", "replace", INNER_NET, "via", vps.address]
    subprocess.run(route, check=True)
    try:
        assert tcp_connect(fresh.container_ip, 80) == "timeout"
    finally:
        subprocess.run(["ip", "route", "del", INNER_NET, "via", vps.address], check=False)


# --- (f) the whole port range -----------------------------------------------------------------


def test_port_scan_finds_exactly_ssh_and_http(vps: Vps, fresh: Fresh) -> None:
    began = time.monotonic()
    found = scan(vps.address, range(1, 65536))
    seconds = time.monotonic() - began
    counts = {kind: len(ports) for kind, ports in found.items()}
    measure(f"vps: port scan 1-65535 in {seconds:.1f}s: open {sorted(found['open'])}, "
            f"refused {sorted(found['refused'])}, dropped {counts['timeout']}, other {counts['other']}")
    assert found["open"] == EXPECTED_OPEN, found["open"]
    assert found["refused"] == EXPECTED_REFUSED, found["refused"]
    assert not found["other"], found["other"]
    assert counts["timeout"] == 65535 - len(EXPECTED_OPEN) - len(EXPECTED_REFUSED)


# --- (g) a reboot -------------------------------------------------------------------------------


def test_a_restarted_vps_comes_back_with_dockerd_sshd_and_firewall(vps: Vps, fresh: Fresh) -> None:
    began = time.monotonic()
    back = vps.restart()
    measure(f"vps: restart until ssh and dockerd answer {time.monotonic() - began:.1f}s")
    assert back.docker("info", "--format", "{{.Name}}").stdout.strip() == "mbg-vps"
    deadline = time.monotonic() + 60
    rules = ""
    while time.monotonic() < deadline:
        rules = back.root_ssh("iptables -S INPUT; iptables -S DOCKER-USER").stdout
        if "-P INPUT DROP" in rules and "medusa-bg:drop-public" in rules:
            break
        time.sleep(0.5)
    assert "-P INPUT DROP" in rules and "medusa-bg:drop-public" in rules, rules
    assert re.search(r"no changes", back.setup_host().stdout), "the firewall came back incomplete"
