"""Pure modules: no Pulumi resource is imported here, so everything is unit-testable as is.

Settings, names and ports, the rendered router config, Medusa's env, docker command lines, the
health poll and the build context digest. The components (components/) and the dynamic
provider (providers/) only wire what these modules compute.
"""
