"""The stack's settings: the only reader of Pulumi stack config.

`load_settings(raw)` validates a plain mapping (key -> string as Pulumi stores it) into a
typed `Settings`, or raises `SettingsError` listing every problem: which key, what is wrong
and how to fix it, never a secret's value. Nothing here creates a resource, so `pulumi
preview` fails before anything is touched and the rules are unit-testable.

types.py: field types that validate themselves; sections.py: one model per config section;
model.py: the whole config; checks.py: the rules that span keys; problems.py: messages;
load.py: raw config in, Settings out.
"""

from core.settings.load import load_settings, read_pulumi_config, read_pulumi_secret_keys
from core.settings.model import KNOWN_KEYS, OBJECT_KEYS, SECRET_KEYS, Settings
from core.settings.problems import SettingsError
from core.settings.sections import (
    AcmeSettings,
    AnalysisSettings,
    BackupSettings,
    CanarySettings,
    DatabaseSettings,
    HealthGateSettings,
    ImageBuild,
    MaintenanceSettings,
    MedusaSettings,
    MeilisearchSettings,
    RedisSettings,
    ReleaseSettings,
    RouterSettings,
    S3Settings,
    ServiceImages,
    ServiceSettings,
    TimeoutSettings,
    TlsSettings,
)

__all__ = [
    "KNOWN_KEYS", "OBJECT_KEYS", "SECRET_KEYS", "AcmeSettings", "AnalysisSettings", "BackupSettings",
    "CanarySettings", "DatabaseSettings",
    "HealthGateSettings",
    "ImageBuild", "MaintenanceSettings", "MedusaSettings", "MeilisearchSettings", "RedisSettings", "ReleaseSettings",
    "RouterSettings",
    "S3Settings", "ServiceImages", "ServiceSettings", "Settings", "SettingsError", "TimeoutSettings", "TlsSettings",
    "load_settings", "read_pulumi_config", "read_pulumi_secret_keys",
]
