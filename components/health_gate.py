"""Where stacks created before the move to providers/ find the health gate's provider.

Pulumi pickles a dynamic provider by its module path into the state, and `pulumi refresh` or
a delete unpickles it from there; without this module those stacks could not be refreshed.
"""

from providers.health_gate import HealthGateProvider

__all__ = ["HealthGateProvider"]
