"""The nginx router: one container that is never recreated by a release or a flip.

Rule 1: none of the container's inputs depends on the active color, on a color's outputs or on
the rendered config. The config lives in a volume the container mounts and is written by
pulumi-command through `docker exec` (apply = nginx -t, then reload; a refused config is
rolled back). A flip is `switch`, a file rename in that volume that nginx consults per request:
no reload, no dropped connection (rule 1b).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from core import docker_cli, naming
from core.container_defaults import LOG_DRIVER, LOG_OPTS, go_duration
from core.router_config import CONF_DIR, CONTROL_SCRIPT, HTTP_PORT, HTTPS_PORT, PREVIEW_PORT, SCRIPT_PATH, TLS_DIR

# Start from the control script once it is installed: it refuses to crash-loop on a bad file.
BOOT = f"if [ -f {SCRIPT_PATH} ]; then exec sh {SCRIPT_PATH} boot; fi; exec nginx -g 'daemon off;'"


@dataclass(frozen=True)
class RouterArgs:
    prefix: str
    image: str
    network_name: pulumi.Input[str]
    bind_address: str
    http_port: int
    https_port: int
    preview_bind_address: str
    preview_port: int
    tls_cert_path: str | None
    tls_key_path: str | None
    config_text: pulumi.Input[str]
    docker_host: str


class Router(pulumi.ComponentResource):
    container: docker.Container
    config_applied: command.local.Command

    def __init__(self, name: str, args: RouterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("medusa-bluegreen:index:Router", name, None, opts)
        self._args = args
        self.container_name = naming.router_container(args.prefix)
        child = pulumi.ResourceOptions(parent=self)

        config_volume = docker.Volume(
            "router-config-volume", name=naming.volume(args.prefix, "router-config"), opts=child
        )
        image = docker.RemoteImage("router-image", name=args.image, keep_locally=True, opts=child)
        ports = [
            docker.ContainerPortArgs(internal=HTTP_PORT, external=args.http_port, ip=args.bind_address),
            docker.ContainerPortArgs(
                internal=PREVIEW_PORT, external=args.preview_port, ip=args.preview_bind_address
            ),
        ]
        volumes = [docker.ContainerVolumeArgs(volume_name=config_volume.name, container_path=CONF_DIR)]
        if args.tls_cert_path and args.tls_key_path:
            ports.append(docker.ContainerPortArgs(internal=HTTPS_PORT, external=args.https_port, ip=args.bind_address))
            volumes += [
                docker.ContainerVolumeArgs(
                    host_path=args.tls_cert_path, container_path=f"{TLS_DIR}/fullchain.pem", read_only=True
                ),
                docker.ContainerVolumeArgs(
                    host_path=args.tls_key_path, container_path=f"{TLS_DIR}/privkey.pem", read_only=True
                ),
            ]
        self.container = docker.Container(
            "router",
            name=self.container_name,
            image=image.image_id,
            command=["sh", "-c", BOOT],
            ports=ports,
            volumes=volumes,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name)],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", f"curl -fsS http://127.0.0.1:{PREVIEW_PORT}/_bluegreen/health || wget -qO- http://127.0.0.1:{PREVIEW_PORT}/_bluegreen/health"],
                interval=go_duration(10), timeout=go_duration(3), retries=3, start_period=go_duration(5),
            ),
            restart="unless-stopped",
            stop_timeout=30,
            log_driver=LOG_DRIVER, log_opts=LOG_OPTS,
            opts=child,
        )

        environment = {"DOCKER_HOST": args.docker_host}
        script_installed = command.local.Command(
            "router-control-script",
            create=docker_cli.router_install_script(self.container_name),
            stdin=CONTROL_SCRIPT.read_text(),
            environment=environment,
            triggers=[self.container.id],
            opts=child,
        )
        self.config_applied = command.local.Command(
            "router-config",
            create=docker_cli.router_apply(self.container_name),
            stdin=args.config_text,
            environment=environment,
            triggers=[self.container.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[script_installed]),
        )
        self.register_outputs({"container_id": self.container.id})

    def switch(
        self,
        route: str,
        color: naming.Color,
        triggers: Sequence[pulumi.Input[object]],
        depends_on: Sequence[pulumi.Resource],
    ) -> command.local.Command:
        """Point `route` (live or preview) at `color`; stdout says which color it replaced."""
        return command.local.Command(
            f"{route}-route",
            create=docker_cli.router_switch(self.container_name, route, color),
            environment={"DOCKER_HOST": self._args.docker_host},
            triggers=[self.container.id, *triggers],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config_applied, *depends_on]),
        )

    def switch_back_command(self, color: naming.Color) -> dict[str, object]:
        """What the post-switch check runs to put the live route back on `color`."""
        return {
            "argv": docker_cli.router_switch_argv(self.container_name, "live", color),
            "env": {"DOCKER_HOST": self._args.docker_host},
        }
