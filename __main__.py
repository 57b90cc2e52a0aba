"""Blue-green MedusaJS on one Docker host: read settings, wire components, export outputs."""

import pulumi

from components.stack import build_stack
from core.settings import SettingsError, load_settings, read_pulumi_config

try:
    settings = load_settings(read_pulumi_config())
except SettingsError as error:
    # RunError prints the message without a Python traceback, before any resource exists.
    raise pulumi.RunError(str(error)) from None

for name, value in build_stack(settings).items():
    pulumi.export(name, value)
