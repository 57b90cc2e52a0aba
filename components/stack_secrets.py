"""The stack's secrets: given in config, or generated once with pulumi-random.

Everything leaves here as a secret Output, so it is encrypted in the state and masked in logs.
Generated values are alphanumeric: easy to paste into a psql prompt, and the URL builders are
tested with hostile characters anyway.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_random as random
from pydantic import SecretStr

from core.settings import Settings

# name -> (config key, length)
GENERATED = {
    "postgres_password": 32,
    "redis_password": 32,
    "meilisearch_master_key": 32,
    "jwt_secret": 48,
    "cookie_secret": 48,
}


class StackSecrets(pulumi.ComponentResource):
    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("medusa-bluegreen:index:StackSecrets", name, None, opts)
        self._values: dict[str, pulumi.Output[str]] = {}
        for field_name, length in GENERATED.items():
            given: SecretStr | None = getattr(settings, field_name)
            if given is not None:
                self._values[field_name] = as_secret(given.get_secret_value())
            else:
                generated = random.RandomPassword(
                    field_name.replace("_", "-"), length=length, special=False,
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self._values[field_name] = as_secret(generated.result)
        self.register_outputs({})

    def __getitem__(self, field_name: str) -> pulumi.Output[str]:
        return self._values[field_name]


def optional_secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def as_secret(value: object) -> pulumi.Output[Any]:
    """Output.secret with its type kept (the SDK's annotation makes mypy infer Never)."""
    wrap: Any = pulumi.Output.secret
    return cast(pulumi.Output[Any], wrap(value))
