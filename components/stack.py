"""Wires the components in the order of docs/rules.md, every arrow a real dependency:

    base services -> color[target] (backup, migrate, server) -> preview route -> health gate
      -> [checks] -> schema check -> live route (the flip) -> post-switch check -> [post-flip analysis] -> target worker
      -> [worker check] -> image prune
    with ACME: TLS volume -> router -> ACME client -> certificate check -> live route
    color[other]: release steps after the target's; server kept warm (changed only after the
      post-switch check and the analysis) or removed, worker removed (deletes run last in an update)

Every value handed to a component comes from a settings section or from core/component_inputs.py;
this file only says what runs after what.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.acme import AcmeArgs, AcmeClient
from components.base_services import BaseServices, BaseServicesArgs
from components.color_stack import ColorStack, ColorStackArgs
from components.image_retention import prune_old_images
from components.release import BackupCopyArgs
from components.router import Router, RouterArgs
from components.stack_secrets import StackSecrets, as_secret
from core import component_inputs as inputs
from core import naming
from core.app_build import BuildPlan
from core.medusa_env import MedusaSecrets, plain_env, secret_env
from core.router_config import render_router_config
from core.schema_check import SchemaCheck
from core.settings import Settings
from providers.health_gate import HealthGate
from providers.traffic_analysis import TrafficAnalysis


def _medusa_secrets(settings: Settings, base: BaseServices, secrets: StackSecrets) -> pulumi.Output[dict[str, str]]:
    database_url = base.database_url or as_secret(inputs.revealed(settings.database_url) or "")
    redis_url = base.redis_url or as_secret(inputs.revealed(settings.redis_url) or "")
    combined = pulumi.Output.all(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=secrets["jwt_secret"],
        cookie_secret=secrets["cookie_secret"],
        meilisearch_key=secrets["meilisearch_master_key"],
    )
    return as_secret(
        combined.apply(
            lambda v: secret_env(
                MedusaSecrets(
                    database_url=v["database_url"],
                    redis_url=v["redis_url"],
                    jwt_secret=v["jwt_secret"],
                    cookie_secret=v["cookie_secret"],
                    meilisearch_key=inputs.medusa_meilisearch_key(settings, v["meilisearch_key"])
                    if settings.meilisearch.enabled else None,
                    stripe_api_key=inputs.revealed(settings.stripe_api_key),
                    resend_api_key=inputs.revealed(settings.resend_api_key),
                    s3_access_key_id=inputs.revealed(settings.s3_access_key_id),
                    s3_secret_access_key=inputs.revealed(settings.s3_secret_access_key),
                    extra={k: s.get_secret_value() for k, s in settings.extra_secret_env.items()},
                )
            )
        )
    )


def _schema_check(
    settings: Settings, color: naming.Color, gate: HealthGate, after: list[pulumi.Resource]
) -> list[pulumi.Resource]:
    check = inputs.schema_check(settings, color, pulumi.get_stack())
    if check is None:
        return []
    return [command.local.Command(
        f"{color}-schema-check",
        create=check.script(),
        environment={"DOCKER_HOST": settings.docker_host},
        # Again whenever the gate ran again, which is whenever the flip may happen.
        triggers=[gate.id],
        opts=pulumi.ResourceOptions(depends_on=after),
    )]


def _guarded(
    undo: pulumi.Output[dict[str, object] | None], check: SchemaCheck | None, docker_host: str
) -> pulumi.Output[dict[str, object] | None]:
    if check is None:
        return undo
    guard = {"argv": check.argv(), "env": {"DOCKER_HOST": docker_host}}
    return undo.apply(lambda command: {**command, "guard": guard} if command else None)


def _worker_check(
    settings: Settings, color: naming.Color, worker: docker.Container,
    flip_back: pulumi.Output[dict[str, object] | None],
) -> HealthGate | None:
    """The worker proven processing (rule 7d). Failing, it hands the queues back to the other
    color's worker and flips back, so both halves of the previous release serve again."""
    spec = inputs.worker_check_spec(settings, color)
    if spec is None:
        return None
    hand_back = inputs.worker_hand_back(settings, color)
    return HealthGate(
        f"{color}-worker-check",
        spec=spec,
        triggers=[worker.id],
        rollback=flip_back.apply(lambda undo: {**undo, "before": [hand_back]} if undo else None),
        opts=pulumi.ResourceOptions(depends_on=[worker]),
    )


def build_stack(settings: Settings) -> dict[str, Any]:
    advice = inputs.hardening_advice(settings)
    if advice:
        pulumi.log.warn(advice)
    provider = docker.Provider("docker", host=settings.docker_host)
    opts = pulumi.ResourceOptions(providers={"docker": provider})
    secrets = StackSecrets("secrets", settings)

    base = BaseServices(
        "base",
        BaseServicesArgs(
            prefix=settings.prefix,
            images=settings.images,
            database=settings.database,
            redis=settings.redis,
            meilisearch=settings.meilisearch,
            services=settings.services,
            postgres_password=secrets["postgres_password"],
            redis_password=secrets["redis_password"],
            meilisearch_key=secrets["meilisearch_master_key"],
            docker_host=settings.docker_host,
        ),
        opts=opts,
    )

    certificates = (
        AcmeClient(
            "acme",
            AcmeArgs(prefix=settings.prefix, domain=settings.domain, settings=settings.tls.acme,
                     image=settings.images.acme, network_name=base.network_name),
            opts=opts,
        )
        if settings.tls.acme_enabled
        else None
    )
    config_text = render_router_config(inputs.router_config_input(settings))
    router = Router(
        "router",
        RouterArgs(
            prefix=settings.prefix,
            image=settings.images.nginx,
            network_name=base.network_name,
            ports=settings.router,
            tls=settings.tls,
            config_text=as_secret(config_text) if settings.preview_token else config_text,
            docker_host=settings.docker_host,
            tls_volume=certificates.tls_volume.name if certificates else None,
            maintenance=settings.maintenance.enabled,
        ),
        opts=opts,
    )
    certificate_ready: list[pulumi.Resource] = []
    if certificates:
        client = certificates.start(after=[router.config_applied])
        certificate_ready.append(HealthGate(
            "certificate-ready",
            spec=inputs.certificate_spec(settings, settings.active_color),
            triggers=[client.id, router.container.id],
            opts=pulumi.ResourceOptions(depends_on=[client]),
        ))
    medusa_secrets = _medusa_secrets(settings, base, secrets)
    copy_target = inputs.backup_copy_target(settings)
    backup_copy = BackupCopyArgs(
        target=copy_target, image=settings.images.nginx, volume=naming.backups_volume(settings.prefix),
        container=naming.backup_copy_container(settings.prefix),
        credentials=as_secret(inputs.backup_copy_credentials(settings)), after=[router.image],
    ) if copy_target else None

    def color_stack(
        color: naming.Color, image: str, build: BuildPlan | None = None, after: list[pulumi.Resource] | None = None,
        serve_after: list[pulumi.Resource] | None = None,
    ) -> ColorStack:
        env = inputs.medusa_env_input(settings, color)
        return ColorStack(
            f"{color}-stack",
            ColorStackArgs(
                prefix=settings.prefix,
                color=color,
                image=image,
                network_name=base.network_name,
                data_network_name=base.data_network_name,
                server_env=plain_env(env, "server"),
                worker_env=plain_env(env, "worker"),
                secret_env=medusa_secrets,
                medusa=settings.medusa,
                postgres_container=naming.postgres_container(settings.prefix)
                if settings.database.mode == "bundled" and settings.backups.enabled
                else None,
                docker_host=settings.docker_host,
                timeouts=settings.timeouts,
                backups=settings.backups,
                backup_copy=backup_copy,
                base_services=[*base.ready, *(after or [])],
                build=build,
                serve_after=serve_after or [],
            ),
            opts=pulumi.ResourceOptions(providers={"docker": provider}),
        )

    target = settings.active_color
    other = naming.other_color(target)
    target_build = inputs.build_plan(settings, target)
    target_image = target_build.image_ref if target_build else settings.image_for(target)
    assert target_image is not None  # guaranteed by settings validation
    target_stack = color_stack(target, target_image, target_build)

    preview = router.switch("preview", target, triggers=[], depends_on=[target_stack.server])
    # With replicas (rule 7b) each one is proven by name before the route is, whenever the route
    # is (a warm color's replicas were made after its flip and never gated).
    replica_specs = inputs.replica_gate_specs(settings, target)
    replica_gates = [
        HealthGate(
            f"{target}-server-{replica}-gate",
            spec=spec,
            triggers=[target_stack.image.image_id, server.id, preview.command.id],
            opts=pulumi.ResourceOptions(depends_on=[server, preview.command]),
        )
        for replica, (spec, server) in enumerate(zip(replica_specs, target_stack.servers, strict=False), start=1)
    ]
    gate = HealthGate(
        f"{target}-health-gate",
        spec=inputs.gate_spec(settings, target),
        triggers=[target_stack.image.image_id, target_stack.server.id, preview.command.id],
        opts=pulumi.ResourceOptions(depends_on=[preview.command, *replica_gates]),
    )
    # healthGate.checks (rule 6c): once the gate passes, each one must too before the flip.
    checks = [
        HealthGate(
            f"{target}-health-check-{number}",
            spec=spec,
            triggers=[target_stack.image.image_id, target_stack.server.id, preview.command.id],
            opts=pulumi.ResourceOptions(depends_on=[gate]),
        )
        for number, spec in enumerate(inputs.check_specs(settings, target), start=1)
    ]
    # A canary step (rule 1d) leaves the live route on the other color and sends canary.weight %
    # of its clients to the target instead; otherwise the live route flips to the target and any
    # earlier canary's clients (already on the target) need nothing more.
    canary = settings.canary.partial
    live_color = other if canary else target
    # The schema check (rule 9e): the target's code must know every migration applied.
    schema_check = _schema_check(settings, target, gate, after=[gate, *checks])
    live = router.switch(
        "live", live_color, triggers=[gate.id], depends_on=[gate, *checks, *certificate_ready, *schema_check]
    )
    # A flip back (post-switch check or analysis failed) is a flip too: it goes only to code that
    # knows the schema, else traffic stays and the failure says why.
    flip_back = _guarded(live.undo, inputs.schema_check(settings, other, pulumi.get_stack()), settings.docker_host)
    post_check = HealthGate(
        "post-switch-check",
        spec=inputs.post_switch_spec(settings, live_color),
        triggers=[live.command.id],
        rollback=flip_back,
        opts=pulumi.ResourceOptions(depends_on=[live.command]),
    )
    share = settings.canary.weight if canary and settings.canary.weight is not None else 0
    # Which color a canary client meets is the preview route's, so only the share is an input.
    split = router.canary(share, triggers=[], depends_on=[post_check])
    # Traffic stays on the target only once the flip is proven: the check, then real traffic.
    flip_proven: list[pulumi.Resource] = [post_check, split]
    analysis_spec = inputs.analysis_spec(settings, target)
    analysis = None
    if analysis_spec is not None:
        analysis = TrafficAnalysis(
            "post-flip-analysis",
            spec=analysis_spec,
            triggers=[split.id if canary else live.command.id],
            rollback=router.canary_undo() if canary else flip_back,
            opts=pulumi.ResourceOptions(depends_on=[post_check, split]),
        )
        flip_proven.append(analysis)

    images: dict[str, pulumi.Input[str]] = {target: target_stack.image.image_id}
    other_image = settings.image_for(other)
    other_stack = None
    if other_image is not None and settings.other_color == "warm":
        # When one update changes both colors' images (a rollback does), their release steps run
        # one after the other: two versions never migrate the same database at once.
        # Its server is touched only after the flip: until then it may be the live color.
        other_stack = color_stack(other, other_image, after=[target_stack.release.migrate], serve_after=flip_proven)
        images[other] = other_stack.image.image_id
    # One worker version at a time: the live color's. In a canary step that is still the other.
    worker_check: HealthGate | None = None
    if canary:
        assert other_stack is not None  # settings check canary_keeps_a_warm_color_live
        worker = other_stack.start_worker(after=[], handover=False)
    else:
        worker = target_stack.start_worker(after=[live.command, *flip_proven])
        worker_check = _worker_check(settings, target, worker, flip_back)
    # Last, so a prune problem can never stand between a healthy image and its traffic.
    prune_old_images(
        "image-prune",
        release_ref=target_image,
        service_refs=settings.images.model_dump().values(),
        keep=settings.releases.keep,
        docker_host=settings.docker_host,
        release_image_id=target_stack.image.image_id,
        after=[worker_check or worker],
    )

    outputs: dict[str, Any] = {
        "liveColor": live_color,
        "images": images,
        "imageRefs": {color: target_image if color == target else settings.image_for(color) for color in naming.COLORS},
        "publicUrl": settings.public_url,
        "previewUrl": settings.preview_url,
        "lastGateResult": gate.result,
        "postSwitchCheck": post_check.result,
        "backup": target_stack.release.backup_name,
        "routerContainerId": router.container.id,
    }
    if settings.meilisearch.enabled:
        # For the storefront's browser (`pulumi stack output --show-secrets storefrontSearchKey`).
        outputs["storefrontSearchKey"] = as_secret(
            secrets["meilisearch_master_key"].apply(inputs.storefront_search_key))
    if analysis is not None:
        outputs["postFlipAnalysis"] = analysis.result
    if worker_check is not None:
        outputs["workerCheck"] = worker_check.result
    if canary:
        outputs["canary"] = {"color": target, "weight": share}
    return outputs
