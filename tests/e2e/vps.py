"""The simulated VPS (harness/vps.sh) for e2e tests: the test process plays the CI runner.

    vps = Vps.up()                      # or Vps.up(fresh=True): a fresh host, warm image cache
    vps.setup_host()                    # scripts/host/setup.sh root@ADDR <deploy key>.pub
    subprocess.run([...], env=vps.env)  # the runner: `ssh` = the wrapper, DOCKER_HOST=ssh://deploy@ADDR
    vps.root_ssh("sshd -T")             # an admin's root shell on the host, over ssh
    vps.down()                          # container and network go; the image volume stays

`vps.env` holds no unix DOCKER_HOST: the runner reaches the VPS's dockerd only through ssh, with
the host key pinned in `vps.ssh_config`. `vps.docker_host` is the `dockerHost` for a stack.
`harness_exec` (docker exec into the VPS over the harness socket) is plumbing for fault
injection, never what a runner could do.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VPS_SH = REPO / "harness" / "vps.sh"
DOCKERD_SH = REPO / "harness" / "dockerd.sh"
SETUP_SH = REPO / "scripts" / "host" / "setup.sh"
NAME = "mbg-vps"
DOCKER_VARS = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")


def _shell_env(script: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment a bash `script` leaves behind, started from `base`."""
    done = subprocess.run(
        ["bash", "-c", f"{script} && env -0"], env=dict(base), capture_output=True, timeout=600, check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"`{script}` failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


@functools.cache
def harness_env() -> dict[str, str]:
    """os.environ plus the harness dockerd's DOCKER_HOST and docker CLI (plumbing only; read-only)."""
    return _shell_env(f'eval "$({DOCKERD_SH} env)"', os.environ)


@dataclass(frozen=True)
class Vps:
    address: str
    gateway: str  # the runner's address on the VPS's network: where the VPS reaches back to it
    ssh_config: Path
    deploy_key: Path
    env: dict[str, str] = field(repr=False)
    up_output: str = field(default="", repr=False)

    @classmethod
    def up(cls, *, fresh: bool = False, images: Sequence[str] = (), timeout: float = 3600) -> Vps:
        """`harness/vps.sh up` (idempotent; fresh=True: a recreated VPS with no containers, networks
        or volumes, images kept), then the runner's environment from `harness/vps.sh env`."""
        base = harness_env()
        args = [str(VPS_SH), "up", *(["--fresh"] if fresh else []), *images]
        done = subprocess.run(args, env=base, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"harness/vps.sh up failed ({done.returncode}):\n{done.stderr[-4000:]}")
        # The runner: harness PATH (its docker CLI) and the ssh wrapper, but not the harness socket.
        runner_base = {k: v for k, v in base.items() if k not in DOCKER_VARS}
        env = _shell_env(f'eval "$({VPS_SH} env)"', runner_base)
        vps = cls(
            address=env["VPS_ADDRESS"], gateway=env["VPS_GATEWAY"], ssh_config=Path(env["VPS_SSH_CONFIG"]),
            deploy_key=Path(env["VPS_DEPLOY_KEY"]), env=env, up_output=done.stderr,
        )
        if env.get("DOCKER_HOST") != vps.docker_host or any(k in env for k in DOCKER_VARS[1:]):
            raise AssertionError(f"runner env has Docker settings other than {vps.docker_host}: "
                                 f"{ {k: env[k] for k in DOCKER_VARS if k in env} }")
        return vps

    @property
    def ssh_wrapper_dir(self) -> str:
        """The directory whose `ssh` runs with the pinned config; first on the runner's PATH."""
        return self.env["PATH"].split(":", 1)[0]

    @property
    def docker_host(self) -> str:
        return f"ssh://deploy@{self.address}"

    @property
    def deploy_public_key(self) -> Path:
        return self.deploy_key.with_name(self.deploy_key.name + ".pub")

    def run(self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """A command on the runner, with the runner's environment."""
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True, input=input,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done

    def ssh(self, user: str, command: str, *ssh_options: str, check: bool = True, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`ssh USER@VPS COMMAND` as the runner does it (the wrapper on PATH, pinned host key)."""
        return self.run("ssh", *ssh_options, f"{user}@{self.address}", command, check=check, timeout=timeout,
                        input=input)

    def root_ssh(self, command: str, *, check: bool = True, timeout: float = 300,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.ssh("root", command, check=check, timeout=timeout, input=input)

    def setup_host(self, *flags: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """The runbook: `scripts/host/setup.sh [FLAGS] root@VPS DEPLOY_PUBLIC_KEY_FILE` from the runner."""
        return self.run(str(SETUP_SH), *flags, f"root@{self.address}", str(self.deploy_public_key),
                        check=check, timeout=timeout)

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The runner's docker CLI against the VPS (DOCKER_HOST=ssh://deploy@VPS)."""
        return self.run("docker", *args, check=check, timeout=timeout)

    def harness_exec(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`docker exec mbg-vps ARGS` over the harness socket: plumbing, not the runner's path."""
        done = subprocess.run(["docker", "exec", NAME, *args], env=harness_env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"docker exec {NAME} {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def close_ssh_masters(self) -> None:
        """Ends the multiplexed ssh connections (ControlPersist): after a VPS restart, a master whose
        TCP connection died would fail the next session instead of reconnecting."""
        for user in ("root", "deploy"):
            self.run("ssh", "-O", "exit", f"{user}@{self.address}", check=False, timeout=30)

    def restart(self, timeout: float = 600) -> Vps:
        """Restarts the VPS container (a host reboot: dockerd, sshd and the firewall come back by
        themselves) and waits until it answers over ssh again."""
        self.close_ssh_masters()
        done = subprocess.run(["docker", "restart", NAME], env=harness_env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"docker restart {NAME} failed: {done.stderr}")
        return Vps.up(timeout=timeout)

    def down(self, *, purge: bool = False) -> None:
        done = subprocess.run([str(VPS_SH), "down", *(["--purge"] if purge else [])], env=harness_env(),
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise AssertionError(f"harness/vps.sh down failed:\n{done.stderr}")
