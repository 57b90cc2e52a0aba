"""Blue-green MedusaJS on one Docker host.

Pure modules (no Pulumi resources): settings, urls, medusa_env, router_config, health_poll,
naming. Components (ComponentResources that only wire resources): base_services, color_stack,
router, health_gate, release.
"""
