"""What each component is given, computed from the settings: pure, so unit-testable as is.

stack.py only wires; every value it hands a component that takes more than picking a section
is built here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pydantic import SecretStr

from core import acme
from core.app_build import BuildPlan, plan_build
from core.backup_copy import ACCESS_KEY_ENV, SECRET_KEY_ENV, CopyTarget
from core.docker_cli import hand_worker_back
from core.health_poll import PollSpec
from core.medusa_env import MedusaEnvInput
from core.meilisearch_keys import BACKEND_KEY, STOREFRONT_KEY, derive_key
from core.naming import (
    MEDUSA_PORT,
    Color,
    acme_container,
    other_color,
    postgres_container,
    router_container,
    server_replica_containers,
    worker_container,
)
from core.router_config import (
    TLS_IN_ROUTER,
    RouterConfigInput,
    TlsFiles,
    docker_upstreams,
    meilisearch_upstream,
)
from core.router_control import live_probe_url, preview_probe_url
from core.schema_check import SchemaCheck
from core.settings import Settings
from core.traffic_analysis import AnalysisSpec

# Relative build contexts are relative to the project (where Pulumi.yaml is).
PROJECT_DIR = Path(__file__).resolve().parent.parent
# The post-switch check proves the flip took; a color that passed its gate answers at once.
POST_SWITCH_DEADLINE_SECONDS = 60.0
# A first ACME issuance: an account, an order, one HTTP-01 validation; Let's Encrypt takes seconds
# to a minute, and the client retries a failed attempt after ACME_RETRY_SECONDS.
CERTIFICATE_DEADLINE_SECONDS = 600.0


def revealed(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def medusa_meilisearch_key(settings: Settings, master_key: str) -> str:
    """Medusa's MEILISEARCH_API_KEY: the scoped backend key with services.hardened. Without it the
    master key, as before, because a new value replaces the colors' containers (rule 8d)."""
    return derive_key(master_key, BACKEND_KEY) if settings.services.hardened else master_key


def storefront_search_key(master_key: str) -> str:
    return derive_key(master_key, STOREFRONT_KEY)


def hardening_advice(settings: Settings) -> str | None:
    """What `pulumi up` warns of while a stack runs bundled services without services.hardened."""
    bundled = [name for name, on in (("Postgres", settings.database.mode == "bundled"),
                                     ("Redis", settings.redis.mode == "bundled"),
                                     ("Meilisearch", settings.meilisearch.enabled)) if on]
    if settings.services.hardened or not bundled:
        return None
    reach = bundled[0] if len(bundled) == 1 else f"{', '.join(bundled[:-1])} and {bundled[-1]}"
    return (
        f"services.hardened is off, so the router can reach {reach}"
        + (", and Redis runs as root" if "Redis" in bundled else "")
        + (", and Medusa holds Meilisearch's master key" if "Meilisearch" in bundled else "")
        + ". In a quiet hour run `bin/bluegreen pulumi config set --path services.hardened true` and "
        "`bin/bluegreen pulumi up --yes`: it replaces those containers once (their data is kept; the "
        "database is away for seconds)"
    )


def backup_copy_target(settings: Settings) -> CopyTarget | None:
    """Where each pre-migration dump is copied (backups.copyTo), None when there is no copy."""
    copy = settings.backups.copy_to
    if copy is None or settings.database.mode != "bundled" or not settings.backups.enabled:
        return None
    return CopyTarget(endpoint=copy.endpoint, bucket=copy.bucket, region=copy.region,
                      prefix=copy.prefix or settings.prefix)


def backup_copy_credentials(settings: Settings) -> dict[str, str]:
    """The copy's env (values secret): what core/backup_copy.py's script reads."""
    return {
        ACCESS_KEY_ENV: revealed(settings.backups_access_key_id) or "",
        SECRET_KEY_ENV: revealed(settings.backups_secret_access_key) or "",
    }


def _router_tls(settings: Settings) -> TlsFiles | None:
    if settings.tls.acme_enabled:
        return acme.ROUTER_CERTIFICATE
    return TLS_IN_ROUTER if settings.tls.enabled else None


def router_config_input(settings: Settings) -> RouterConfigInput:
    return RouterConfigInput(
        domain=settings.domain,
        upstreams=docker_upstreams(settings.prefix),
        tls=_router_tls(settings),
        acme_webroot=acme.ROUTER_WEBROOT if settings.tls.acme_enabled else None,
        public_https_port=settings.router.https_port,
        meilisearch_upstream=meilisearch_upstream() if settings.meilisearch.enabled else None,
        search_cors_origins=settings.medusa.store_cors,
        preview_token=revealed(settings.preview_token),
        rate_limit_per_second=settings.router.rate_limit_per_second,
        rate_limit_burst=settings.router.rate_limit_burst,
        max_body_size=settings.router.max_body_size,
        max_connections_per_client=settings.router.max_connections_per_client,
        client_timeout_seconds=settings.router.client_timeout_seconds,
        trusted_proxies=tuple(settings.router.trusted_proxies),
        maintenance_retry_after_seconds=settings.maintenance.retry_after_seconds,
    )


def medusa_env_input(settings: Settings, color: Color) -> MedusaEnvInput:
    medusa = settings.medusa
    return MedusaEnvInput(
        color=color,
        public_url=settings.public_url,
        backend_url=medusa.backend_url,
        storefront_url=medusa.storefront_url,
        store_cors=medusa.store_cors,
        admin_cors=medusa.admin_cors,
        auth_cors=medusa.auth_cors,
        extra_env=medusa.env,
        database_driver_options=settings.database.driver_options,
        meilisearch_enabled=settings.meilisearch.enabled,
        s3=settings.s3.model_dump(),
    )


# The build argument an app's Dockerfile reads to fix the admin dashboard's backend URL in its
# bundle (examples/medusa-app): the same URL the containers get at run time, unless
# `build.args` sets it.
ADMIN_BACKEND_URL_ARG = "MEDUSA_BACKEND_URL"


def build_plan(settings: Settings, color: Color) -> BuildPlan | None:
    build = settings.build_for(color)
    if build is None:
        return None
    backend = settings.medusa.backend_url or settings.public_url
    return plan_build(
        context=build.context,
        project_dir=PROJECT_DIR,
        repository=build.repository or f"{settings.prefix}-app",
        args={ADMIN_BACKEND_URL_ARG: backend, **build.args},
        secret_files=build.secret_files,
        target=build.target,
    )


# The healthGate fields that say what is checked; every other one is a PollSpec field of the same name.
GATE_WHAT_FIELDS = frozenset({"path", "checks", "worker_check"})


def _gate_timing(settings: Settings) -> dict[str, object]:
    return settings.health_gate.model_dump(exclude=set(GATE_WHAT_FIELDS))


def analysis_spec(settings: Settings, color: Color) -> AnalysisSpec | None:
    """The post-flip analysis of `color`'s live traffic, or None when `analysis.windowSeconds`
    is 0 (off)."""
    analysis = settings.analysis
    if analysis.window_seconds <= 0:
        return None
    return AnalysisSpec(
        color=color,
        **analysis.model_dump(),
        via_router=router_container(settings.prefix),
        docker_host=settings.docker_host,
    )


def gate_spec(settings: Settings, color: Color) -> PollSpec:
    """The health gate: the target color through the preview route, before any traffic. The
    request runs inside the router container (rule 6b), so it needs neither a published preview
    port nor the preview token."""
    return PollSpec(
        url=preview_probe_url(settings.health_gate.path), color=color,
        via_router=router_container(settings.prefix), docker_host=settings.docker_host,
        **_gate_timing(settings),  # type: ignore[arg-type]
    )


def check_specs(settings: Settings, color: Color) -> list[PollSpec]:
    """`healthGate.checks` (rule 6c): each through the preview route like the gate, with the
    gate's timing and its own path, status and body."""
    gate = gate_spec(settings, color)
    return [
        replace(
            gate, url=preview_probe_url(check.path), expect_status=check.expect_status,
            expect_body=check.expect_body, what=f"health check {number} ({check.path} -> {check.expect_status})",
        )
        for number, check in enumerate(settings.health_gate.checks, start=1)
    ]


def replica_gate_specs(settings: Settings, color: Color) -> list[PollSpec]:
    """With more than one server per color, a gate per replica (rule 7b): straight to the
    replica's own name from inside the router container, where the preview route would spread the
    tries over them all. No color header there: the router adds it, and nothing routes these.
    None with one server: the preview gate proves it."""
    names = server_replica_containers(settings.prefix, color, settings.medusa.server_replicas)
    if len(names) == 1:
        return []
    return [
        PollSpec(
            url=f"http://{name}:{MEDUSA_PORT}{settings.health_gate.path}", color=color,
            expect_color_header=False, via_router=router_container(settings.prefix),
            docker_host=settings.docker_host, what=f"health gate of replica {name}",
            hint=f"its log: docker logs {name}",
            **_gate_timing(settings),  # type: ignore[arg-type]
        )
        for name in names
    ]


def post_switch_spec(settings: Settings, color: Color) -> PollSpec:
    """The check after the flip: the live route as a customer's request meets it (the public
    server block, with the site's Host header), from inside the router container like the gate."""
    timing = {
        **_gate_timing(settings),
        "deadline_seconds": min(POST_SWITCH_DEADLINE_SECONDS, settings.health_gate.deadline_seconds),
    }
    return PollSpec(
        url=live_probe_url(settings.health_gate.path, tls=settings.tls.enabled), color=color,
        headers={"Host": settings.domain}, verify_tls=False,
        via_router=router_container(settings.prefix), docker_host=settings.docker_host,
        **timing,  # type: ignore[arg-type]
    )


def worker_check_spec(settings: Settings, color: Color) -> PollSpec | None:
    """`healthGate.workerCheck` (rule 7d): after `color`'s worker starts, through the live route
    like the post-switch check, with the gate's whole deadline (a worker boots like a server)."""
    check = settings.health_gate.worker_check
    if check is None:
        return None
    return PollSpec(
        url=live_probe_url(check.path, tls=settings.tls.enabled), color=color,
        headers={"Host": settings.domain}, verify_tls=False, expect_status=check.expect_status,
        via_router=router_container(settings.prefix), docker_host=settings.docker_host,
        what=f"worker check ({check.path} -> {check.expect_status})",
        hint=f"the worker's log: docker logs {worker_container(settings.prefix, color)}",
        **{**_gate_timing(settings), "expect_body": check.expect_body},  # type: ignore[arg-type]
    )


def worker_hand_back(settings: Settings, color: Color) -> dict[str, object]:
    """What a failed worker check runs before the flip back: `color`'s worker stopped, the other
    color's started again (core.docker_cli.hand_worker_back)."""
    workers = (worker_container(settings.prefix, color), worker_container(settings.prefix, other_color(color)))
    return {
        "argv": hand_worker_back(*workers, settings.medusa.stop_timeout_seconds),
        "env": {"DOCKER_HOST": settings.docker_host},
    }


def certificate_spec(settings: Settings, color: Color) -> PollSpec:
    """Before the first flip with ACME: the router completes a TLS handshake with the issued
    certificate (its own health location, so no color is involved)."""
    return PollSpec(
        url=live_probe_url("/_bluegreen/health", tls=True), color=color, expect_body="ok",
        expect_color_header=False, verify_tls=False, timeout_seconds=5, deadline_seconds=CERTIFICATE_DEADLINE_SECONDS,
        initial_backoff_seconds=1, max_backoff_seconds=10,
        via_router=router_container(settings.prefix), docker_host=settings.docker_host,
        what="certificate check",
        hint=f"the ACME client's log: docker logs {acme_container(settings.prefix)}",
    )


def schema_check(settings: Settings, color: Color, stack: str) -> SchemaCheck | None:
    """The check before traffic flips to `color` (rule 9e); None when there is nothing to check
    it against: no image for the color, or an external database (its own backups and
    migrations history are outside this host, see README)."""
    image = settings.image_for(color)
    if color == settings.active_color:
        plan = build_plan(settings, color)
        image = plan.image_ref if plan else image
    if image is None or settings.database.mode != "bundled":
        return None
    return SchemaCheck(
        color=color,
        image=image,
        postgres_container=postgres_container(settings.prefix),
        stack=stack,
        acknowledged=tuple(settings.database.acknowledged_migrations),
    )
