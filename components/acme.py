"""The certificate's keeper: the TLS volume the router reads, and the ACME client that fills it.

The volume exists before the router (which mounts it read-only); the client container starts
after the router serves port 80, because the CA's HTTP-01 request for the challenge comes through
the router. The client obtains the certificate and renews it by itself for as long as it runs
(acme/renew.sh loop): no `pulumi up` is needed to renew. Neither volume is deleted with the stack,
so a destroy and up again reuses the certificate instead of spending the CA's rate limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from core import acme, naming
from core.container_defaults import LOG_DRIVER, LOG_OPTS
from core.settings import AcmeSettings


@dataclass(frozen=True)
class AcmeArgs:
    prefix: str
    domain: str
    settings: AcmeSettings
    image: str
    network_name: pulumi.Input[str]


class AcmeClient(pulumi.ComponentResource):
    tls_volume: docker.Volume
    container: docker.Container | None

    def __init__(self, name: str, args: AcmeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("medusa-bluegreen:index:AcmeClient", name, None, opts)
        self._args = args
        self.container_name = naming.acme_container(args.prefix)
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        self.tls_volume = docker.Volume("tls-volume", name=naming.volume(args.prefix, "tls"), opts=keep)
        self._state_volume = docker.Volume("acme-state-volume", name=naming.volume(args.prefix, "acme"), opts=keep)
        self.container = None
        self.register_outputs({"tls_volume": self.tls_volume.name})

    def start(self, after: Sequence[pulumi.Resource]) -> docker.Container:
        """The renewal container, once the router answers on port 80 (`after`)."""
        args = self._args
        child = pulumi.ResourceOptions(parent=self, depends_on=list(after))
        image = docker.RemoteImage("acme-image", name=args.image, keep_locally=True, opts=child)
        env = acme.client_env(args.domain, args.settings, acme.RENEW_SCRIPT.read_text())
        volumes = [
            docker.ContainerVolumeArgs(volume_name=self.tls_volume.name, container_path=acme.CLIENT_TLS_DIR),
            docker.ContainerVolumeArgs(volume_name=self._state_volume.name, container_path=acme.CLIENT_STATE_DIR),
        ]
        if args.settings.ca_certificates_path:
            volumes.append(docker.ContainerVolumeArgs(
                host_path=args.settings.ca_certificates_path, container_path=acme.CLIENT_CA_FILE, read_only=True))
        self.container = docker.Container(
            "acme",
            name=self.container_name,
            image=image.image_id,
            entrypoints=["sh", "-c", acme.BOOT],
            envs=[f"{key}={value}" for key, value in sorted(env.items())],
            volumes=volumes,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name)],
            restart="unless-stopped",
            stop_timeout=10,
            log_driver=LOG_DRIVER, log_opts=LOG_OPTS,
            opts=child,
        )
        return self.container
