"""Blue-green MedusaJS on one Docker host: read settings, wire components, export outputs."""

import pulumi

from components.stack import build_stack
from core.settings import SettingsError, load_settings, read_pulumi_config, read_pulumi_secret_keys

try:
    settings = load_settings(read_pulumi_config(), read_pulumi_secret_keys())
except SettingsError as error:
    # RunError prints the message without a Python traceback, before any resource exists.
    raise pulumi.RunError(str(error)) from None

for name, value in build_stack(settings).items():
    pulumi.export(name, value)
