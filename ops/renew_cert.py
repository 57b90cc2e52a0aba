"""`bluegreen renew-cert`: renew the ACME certificate now, on the stack's Docker host.

    bin/bluegreen --stack production renew-cert

Runs the renewal container's own script (`sh /tmp/renew.sh now` in `<prefix>-acme`, attached to
the terminal), the one it runs by itself when renewal is due. nginx serves the new certificate
from its next handshake; nothing is reloaded. Refused, naming the settings, when the stack's
certificate does not come from ACME.
"""

from __future__ import annotations

from pydantic import ValidationError

from core import acme
from core.naming import acme_container
from core.settings import TlsSettings
from ops.docker_host import ContainerState, DockerHost, parse_inspect
from ops.environment import Target
from ops.pulumi_cli import Command, OpsError, PulumiCli, Runner, StackConfig, read_config


def uses_acme(config: StackConfig) -> bool:
    try:
        tls = TlsSettings.model_validate(config.object("tls") or {})
    except ValidationError as error:
        raise OpsError(f"tls config is not valid: {error.errors()[0]['msg']}") from None
    return tls.acme_enabled


def plan_renewal(docker: DockerHost, state: ContainerState, target: Target) -> Command:
    if not state.exists:
        raise OpsError(f"the renewal container {state.name} does not exist on {docker.url}; a `pulumi up` "
                       f"with tls.enabled creates it: see `{target.command('status')}`")
    return docker.exec_attached(state.name, *acme.RENEW_NOW)


def renew_cert(runner: Runner, cli: PulumiCli, target: Target) -> int:
    config = read_config(runner, cli)
    if not uses_acme(config):
        raise OpsError("this stack's certificate does not come from ACME (tls.enabled is false, or "
                       "tls.certPath and tls.keyPath bring your own): nothing to renew here")
    docker = DockerHost(config.docker_host())
    name = acme_container(config.prefix())
    state = parse_inspect(runner.run(docker.inspect([name])), [name])[name]
    return runner.run(plan_renewal(docker, state, target)).returncode
