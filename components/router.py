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

from core import naming, router_control
from core.container_defaults import LOG_DRIVER, LOG_OPTS, go_duration
from core.router_config import (
    CONF_DIR,
    CONTROL_SCRIPT,
    HTTP_PORT,
    HTTPS_PORT,
    METRICS_EXPORTER,
    PREVIEW_PORT,
    SCRIPT_PATH,
    TLS_DIR,
    TLS_IN_ROUTER,
)
from core.router_control import Route, SwitchResult, parse_switch
from core.settings import RouterSettings, TlsSettings

# Start from the control script once it is installed: it refuses to crash-loop on a bad file.
BOOT = f"if [ -f {SCRIPT_PATH} ]; then exec sh {SCRIPT_PATH} boot; fi; exec nginx -g 'daemon off;'"


@dataclass(frozen=True)
class RouterArgs:
    prefix: str
    image: str
    network_name: pulumi.Input[str]
    ports: RouterSettings  # published ports and their bind addresses
    tls: TlsSettings  # the certificate files on the Docker host, when enabled
    config_text: pulumi.Input[str]
    docker_host: str
    # The ACME client's TLS volume (components/acme.py), when the certificate comes from ACME.
    tls_volume: pulumi.Input[str] | None = None
    # Storefront maintenance (settings.maintenance.enabled): a state file, like a flip.
    maintenance: bool = False


@dataclass(frozen=True)
class RouteSwitch:
    """One flip of a route: the command that made it, what it replaced, and how to undo it."""

    command: command.local.Command
    result: pulumi.Output[SwitchResult]
    # {"argv": [...], "env": {...}} for the post-switch check, or None when nothing changed.
    undo: pulumi.Output[dict[str, object] | None]


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
        self.image = image = docker.RemoteImage("router-image", name=args.image, keep_locally=True, opts=child)
        published = args.ports
        ports = [
            docker.ContainerPortArgs(internal=HTTP_PORT, external=published.http_port, ip=published.bind_address),
            docker.ContainerPortArgs(
                internal=PREVIEW_PORT, external=published.preview_port, ip=published.preview_bind_address
            ),
        ]
        volumes = [docker.ContainerVolumeArgs(volume_name=config_volume.name, container_path=CONF_DIR)]
        if args.tls.acme_enabled and args.tls_volume is not None:
            ports.append(
                docker.ContainerPortArgs(internal=HTTPS_PORT, external=published.https_port, ip=published.bind_address)
            )
            volumes.append(
                docker.ContainerVolumeArgs(volume_name=args.tls_volume, container_path=TLS_DIR, read_only=True)
            )
        elif args.tls.enabled and args.tls.cert_path and args.tls.key_path:
            ports.append(
                docker.ContainerPortArgs(internal=HTTPS_PORT, external=published.https_port, ip=published.bind_address)
            )
            volumes += [
                docker.ContainerVolumeArgs(
                    host_path=args.tls.cert_path, container_path=TLS_IN_ROUTER.certificate, read_only=True
                ),
                docker.ContainerVolumeArgs(
                    host_path=args.tls.key_path, container_path=TLS_IN_ROUTER.key, read_only=True
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
            create=router_control.install_script_command(self.container_name),
            stdin=CONTROL_SCRIPT.read_text(),
            environment=environment,
            triggers=[self.container.id],
            opts=child,
        )
        self.config_applied = command.local.Command(
            "router-config",
            create=router_control.apply_command(self.container_name),
            stdin=args.config_text,
            environment=environment,
            triggers=[self.container.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[script_installed]),
        )
        # Runs again whenever the setting changes or the container is new; the state file lives
        # in the config volume, so it outlives a recreated container either way.
        self.maintenance = command.local.Command(
            "router-maintenance",
            create=router_control.maintenance_command(self.container_name, args.maintenance),
            environment=environment,
            triggers=[self.container.id, args.maintenance],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config_applied]),
        )
        # Per-color traffic figures (rule 2f): the exporter runs inside the router container, next
        # to nginx; `router.sh boot` starts it again whenever the container starts.
        self.metrics = command.local.Command(
            "router-metrics",
            create=router_control.metrics_command(self.container_name),
            stdin=METRICS_EXPORTER.read_text(),
            environment=environment,
            triggers=[self.container.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[script_installed]),
        )
        self.register_outputs({"container_id": self.container.id})

    def switch(
        self,
        route: Route,
        color: naming.Color,
        triggers: Sequence[pulumi.Input[object]],
        depends_on: Sequence[pulumi.Resource],
    ) -> RouteSwitch:
        """Point `route` at `color`. The result says which color it replaced (read from the
        control script's own output by router_control) and how to put that color back."""
        switched = command.local.Command(
            f"{route}-route",
            create=router_control.switch_command(self.container_name, route, color),
            environment={"DOCKER_HOST": self._args.docker_host},
            triggers=[self.container.id, *triggers],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config_applied, *depends_on]),
        )
        result = switched.stdout.apply(parse_switch)
        undo = result.apply(lambda done: self._undo_input(done))
        return RouteSwitch(command=switched, result=result, undo=undo)

    def canary(
        self, percent: int, triggers: Sequence[pulumi.Input[object]], depends_on: Sequence[pulumi.Resource]
    ) -> command.local.Command:
        """Send `percent` of the live route's clients to the preview color (0: nobody), by state
        files in the router: no reload (rule 1d)."""
        return command.local.Command(
            "router-canary",
            create=router_control.canary_command(self.container_name, percent),
            environment={"DOCKER_HOST": self._args.docker_host},
            triggers=[self.container.id, percent, *triggers],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config_applied, *depends_on]),
        )

    def canary_undo(self) -> dict[str, object]:
        return router_control.canary_undo(self.container_name, self._args.docker_host)

    def _undo_input(self, done: SwitchResult) -> dict[str, object] | None:
        undo = done.undo(self.container_name, self._args.docker_host)
        return undo.as_input() if undo else None
