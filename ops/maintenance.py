"""`bluegreen maintenance on|off`: the storefront answers 503 with a page, or serves again.

    bin/bluegreen maintenance on
    bin/bluegreen --stack production maintenance off

Sets `maintenance.enabled` (keeping `maintenance.retryAfterSeconds`) and runs `pulumi up`, so
the stack config stays the one description of what runs. That update changes one resource:
the router's maintenance command, a state-file rename inside the router; nginx is not
reloaded and no color is touched. /health, the admin (/app, /admin/, /auth/) and every release
step keep working while it is on. A failed `pulumi up` puts the config back exactly.

Exit codes: 0 done (or already so), 1 `pulumi up` failed (config restored), 2 a config
problem, 3 the config could not be restored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from ops.environment import Target
from ops.pulumi_cli import (
    DONE,
    MAINTENANCE_KEY,
    ConfigChange,
    PulumiCli,
    Runner,
    StackConfig,
    apply_and_up,
    object_entry,
    read_config,
)

WHO = "bluegreen maintenance"


@dataclass(frozen=True)
class MaintenancePlan:
    change: ConfigChange
    message: str


def plan_maintenance(config: StackConfig, enabled: bool) -> MaintenancePlan | None:
    """The config change that turns maintenance on or off; None when it already is."""
    current = config.object(MAINTENANCE_KEY) or {}
    if bool(current.get("enabled", False)) == enabled:
        return None
    wanted = {**current, "enabled": enabled}
    state = "on" if enabled else "off"
    return MaintenancePlan(
        change=ConfigChange.of(config, {MAINTENANCE_KEY: object_entry(wanted)}),
        message=f"{WHO}: storefront maintenance {state}",
    )


def maintenance(runner: Runner, cli: PulumiCli, target: Target, enabled: bool, out: TextIO, log: TextIO) -> int:
    state = "on" if enabled else "off"
    plan = plan_maintenance(read_config(runner, cli), enabled)
    if plan is None:
        print(f"maintenance is already {state} on stack {cli.stack}; nothing to do", file=out)
        return 0
    print(f"{WHO}: stack {cli.stack}: turning storefront maintenance {state}", file=log)
    code = apply_and_up(runner, cli, plan.change, cli.up(plan.message), log, WHO)
    if code != DONE:
        return code
    if enabled:
        print(f"maintenance is on for stack {cli.stack}: the storefront answers 503 with a page; "
              f"/health and the admin still work. Turn it off: `{target.command('maintenance', 'off')}`", file=out)
    else:
        print(f"maintenance is off for stack {cli.stack}: the storefront serves again", file=out)
    return 0
