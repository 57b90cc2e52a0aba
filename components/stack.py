"""Wires the components in the order of docs/rules.md, every arrow a real dependency:

    base services -> color[target] (backup, migrate, server) -> preview route -> health gate
      -> live route (the flip) -> post-switch check -> target worker
    color[other]: server kept warm or removed, worker removed (deletes run last in an update)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker

from components.base_services import BaseServices, BaseServicesArgs
from components.color_stack import ColorStack, ColorStackArgs
from components.image_retention import prune_old_images
from components.router import Router, RouterArgs
from components.stack_secrets import StackSecrets, as_secret, optional_secret
from core import naming
from core.app_build import BuildPlan, plan_build
from core.medusa_env import MedusaEnvInput, MedusaSecrets, plain_env, secret_env
from core.router_config import (
    TLS_DIR,
    RouterConfigInput,
    TlsFiles,
    docker_upstreams,
    meilisearch_upstream,
    render_router_config,
)
from core.settings import Settings
from providers.health_gate import HealthGate

# Relative build contexts are relative to the project (where Pulumi.yaml is).
PROJECT_DIR = Path(__file__).resolve().parent.parent


def router_config_text(settings: Settings) -> str:
    return render_router_config(
        RouterConfigInput(
            domain=settings.domain,
            upstreams=docker_upstreams(settings.prefix),
            tls=TlsFiles(f"{TLS_DIR}/fullchain.pem", f"{TLS_DIR}/privkey.pem") if settings.tls.enabled else None,
            public_https_port=settings.router.https_port,
            meilisearch_upstream=meilisearch_upstream() if settings.meilisearch.enabled else None,
            search_cors_origins=settings.medusa.store_cors,
            preview_token=optional_secret(settings.preview_token),
            rate_limit_per_second=settings.router.rate_limit_per_second,
            rate_limit_burst=settings.router.rate_limit_burst,
            max_body_size=settings.router.max_body_size,
        )
    )


def medusa_env_input(settings: Settings, color: naming.Color) -> MedusaEnvInput:
    return MedusaEnvInput(
        color=color,
        public_url=settings.public_url,
        backend_url=settings.medusa.backend_url,
        storefront_url=settings.medusa.storefront_url,
        store_cors=settings.medusa.store_cors,
        admin_cors=settings.medusa.admin_cors,
        auth_cors=settings.medusa.auth_cors,
        extra_env=settings.medusa.env,
        database_driver_options=settings.database.driver_options,
        meilisearch_enabled=settings.meilisearch.enabled,
        s3=settings.s3.model_dump(),
    )


def _previous_color(stdout: str) -> str | None:
    for part in stdout.split():
        if part.startswith("previous="):
            return part.removeprefix("previous=")
    return None


def _rollback_to(router: Router, previous: str | None, target: naming.Color) -> dict[str, Any] | None:
    """The post-switch check flips back to the color that was live before, if there was one."""
    if previous in ("blue", "green") and previous != target:
        return router.switch_back_command("blue" if previous == "blue" else "green")
    return None


def build_plan(settings: Settings, color: naming.Color) -> BuildPlan | None:
    build = settings.build_for(color)
    if build is None:
        return None
    return plan_build(
        context=build.context,
        project_dir=PROJECT_DIR,
        repository=build.repository or f"{settings.prefix}-app",
        args=build.args,
        secret_files=build.secret_files,
        target=build.target,
    )


def build_stack(settings: Settings) -> dict[str, Any]:
    provider = docker.Provider("docker", host=settings.docker_host)
    opts = pulumi.ResourceOptions(providers={"docker": provider})
    secrets = StackSecrets("secrets", settings)

    base = BaseServices(
        "base",
        BaseServicesArgs(
            prefix=settings.prefix,
            postgres_image=settings.images.postgres,
            redis_image=settings.images.redis,
            meilisearch_image=settings.images.meilisearch,
            bundled_postgres=settings.database.mode == "bundled",
            bundled_redis=settings.redis.mode == "bundled",
            meilisearch=settings.meilisearch.enabled,
            database_name=settings.database.name,
            database_user=settings.database.user,
            postgres_password=secrets["postgres_password"],
            redis_password=secrets["redis_password"],
            meilisearch_key=secrets["meilisearch_master_key"],
            docker_host=settings.docker_host,
        ),
        opts=opts,
    )

    config_text = router_config_text(settings)
    router = Router(
        "router",
        RouterArgs(
            prefix=settings.prefix,
            image=settings.images.nginx,
            network_name=base.network_name,
            bind_address=settings.router.bind_address,
            http_port=settings.router.http_port,
            https_port=settings.router.https_port,
            preview_bind_address=settings.router.preview_bind_address,
            preview_port=settings.router.preview_port,
            tls_cert_path=settings.tls.cert_path if settings.tls.enabled else None,
            tls_key_path=settings.tls.key_path if settings.tls.enabled else None,
            config_text=as_secret(config_text) if settings.preview_token else config_text,
            docker_host=settings.docker_host,
        ),
        opts=opts,
    )

    database_url = base.database_url or as_secret(optional_secret(settings.database_url) or "")
    redis_url = base.redis_url or as_secret(optional_secret(settings.redis_url) or "")
    medusa_secrets: pulumi.Output[dict[str, str]] = as_secret(
        pulumi.Output.all(
            database_url, redis_url, secrets["jwt_secret"], secrets["cookie_secret"],
            secrets["meilisearch_master_key"],
        ).apply(
            lambda v: secret_env(
                MedusaSecrets(
                    database_url=v[0], redis_url=v[1], jwt_secret=v[2], cookie_secret=v[3],
                    meilisearch_key=v[4] if settings.meilisearch.enabled else None,
                    stripe_api_key=optional_secret(settings.stripe_api_key),
                    resend_api_key=optional_secret(settings.resend_api_key),
                    s3_access_key_id=optional_secret(settings.s3_access_key_id),
                    s3_secret_access_key=optional_secret(settings.s3_secret_access_key),
                    extra={k: s.get_secret_value() for k, s in settings.extra_secret_env.items()},
                )
            )
        )
    )

    def color_stack(
        color: naming.Color, image: str, build: BuildPlan | None = None, after: list[pulumi.Resource] | None = None
    ) -> ColorStack:
        env = medusa_env_input(settings, color)
        return ColorStack(
            f"{color}-stack",
            ColorStackArgs(
                prefix=settings.prefix,
                color=color,
                image=image,
                network_name=base.network_name,
                server_env=plain_env(env, "server"),
                worker_env=plain_env(env, "worker"),
                secret_env=medusa_secrets,
                server_memory_mb=settings.medusa.server_memory_mb,
                worker_memory_mb=settings.medusa.worker_memory_mb,
                stop_timeout_seconds=settings.medusa.stop_timeout_seconds,
                postgres_container=f"{settings.prefix}-postgres"
                if settings.database.mode == "bundled" and settings.backups.enabled
                else None,
                migrate_command=settings.medusa.migrate_command,
                docker_host=settings.docker_host,
                timeouts=settings.timeouts,
                base_services=[*base.ready, *(after or [])],
                build=build,
            ),
            opts=pulumi.ResourceOptions(providers={"docker": provider}),
        )

    target = settings.active_color
    other = naming.other_color(target)
    target_build = build_plan(settings, target)
    target_image = target_build.image_ref if target_build else settings.image_for(target)
    assert target_image is not None  # guaranteed by settings validation
    target_stack = color_stack(target, target_image, target_build)

    gate_settings = settings.health_gate
    token_headers = (
        {"X-Bluegreen-Preview-Token": settings.preview_token.get_secret_value()}
        if settings.preview_token
        else None
    )
    preview = router.switch("preview", target, triggers=[], depends_on=[target_stack.server])
    gate = HealthGate(
        f"{target}-health-gate",
        url=f"{settings.preview_url}{gate_settings.path}",
        color=target,
        triggers=[target_stack.image.image_id, target_stack.server.id, preview.id],
        expect_body=gate_settings.expect_body,
        timeout_seconds=gate_settings.timeout_seconds,
        deadline_seconds=gate_settings.deadline_seconds,
        initial_backoff_seconds=gate_settings.initial_backoff_seconds,
        max_backoff_seconds=gate_settings.max_backoff_seconds,
        headers=token_headers,
        opts=pulumi.ResourceOptions(depends_on=[preview]),
    )
    live = router.switch("live", target, triggers=[gate.id], depends_on=[gate])

    scheme_port = (
        ("https", settings.router.https_port) if settings.tls.enabled else ("http", settings.router.http_port)
    )
    live_probe_url = f"{scheme_port[0]}://{settings.router.probe_host}:{scheme_port[1]}{gate_settings.path}"
    rollback = live.stdout.apply(lambda out: _rollback_to(router, _previous_color(out), target))
    post_check = HealthGate(
        "post-switch-check",
        url=live_probe_url,
        color=target,
        triggers=[live.id],
        expect_body=gate_settings.expect_body,
        timeout_seconds=gate_settings.timeout_seconds,
        deadline_seconds=min(60.0, gate_settings.deadline_seconds),
        initial_backoff_seconds=gate_settings.initial_backoff_seconds,
        max_backoff_seconds=gate_settings.max_backoff_seconds,
        headers={"Host": settings.domain},
        verify_tls=False,
        rollback=rollback,
        opts=pulumi.ResourceOptions(depends_on=[live]),
    )
    worker = target_stack.start_worker(after=[live, post_check])
    # Last, so a prune problem can never stand between a healthy image and its traffic.
    prune_old_images(
        "image-prune",
        release_ref=target_image,
        service_refs=settings.images.model_dump().values(),
        keep=settings.releases.keep,
        docker_host=settings.docker_host,
        release_image_id=target_stack.image.image_id,
        after=[worker],
    )

    images: dict[str, pulumi.Input[str]] = {target: target_stack.image.image_id}
    other_image = settings.image_for(other)
    if other_image is not None and settings.other_color == "warm":
        # When one update changes both colors' images (a rollback does), their release steps run
        # one after the other: two versions never migrate the same database at once.
        images[other] = color_stack(other, other_image, after=[target_stack.release.migrate]).image.image_id

    return {
        "liveColor": target,
        "images": images,
        "imageRefs": {color: target_image if color == target else settings.image_for(color) for color in naming.COLORS},
        "publicUrl": settings.public_url,
        "previewUrl": settings.preview_url,
        "lastGateResult": gate.result,
        "postSwitchCheck": post_check.result,
        "backup": target_stack.release.backup_name,
        "routerContainerId": router.container.id,
    }
