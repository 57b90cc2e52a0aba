"""Policy pack `medusa-bluegreen-guard`: `pulumi preview --policy-pack policy` fails when the plan
replaces or deletes the router, the network or a data service (guard.py says how it tells).

The engine (pulumi 3.259) starts this directory through the Python language host's RunPlugin
(`python policy/ <engine address>`, in the virtualenv PulumiPolicy.yaml names, with the CLI's
environment and the project directory as working directory). An analyzer is told nothing about
the previous state, so the stack policy reads it itself: `pulumi stack export` of the stack its
resources' URNs name, run once per analysis, read only (no lock is taken, secrets stay encrypted).
If that fails the policy fails: a guard that cannot look does not pass.

A stack policy runs once all steps are done. In a preview nothing was done, so the export is the
state before the change; `pulumi up --policy-pack policy` is stopped by its own preview, while
`up --skip-preview` applies first and then compares with the state it just wrote, which passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

if TYPE_CHECKING:  # mypy and the tests know this directory as the package `policy`
    from policy.guard import POLICY_NAME, Planned, deployed_from_export, stack_of, violations
else:  # the engine runs `python <this directory>`, which puts the directory itself on sys.path
    from guard import POLICY_NAME, Planned, deployed_from_export, stack_of, violations

EXPORT_TIMEOUT_SECONDS = 120


def planned_id(resource: PolicyResource) -> str | None:
    """The planned `id` output; None when the engine does not know it yet (a create)."""
    try:
        value = resource.props["id"]
    except (UnknownValueError, KeyError):
        return None
    return value if isinstance(value, str) and value else None


def export_stack(stack: str) -> dict[str, Any]:
    """`pulumi stack export` of `stack`, run in the project directory (the engine runs us there)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise RuntimeError("the pulumi CLI is not on PATH")
    done = subprocess.run(
        [pulumi, "stack", "export", "--stack", stack, "--non-interactive"],
        capture_output=True, text=True, timeout=EXPORT_TIMEOUT_SECONDS, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`pulumi stack export --stack {stack}` failed ({done.returncode}): {done.stderr[-800:]}")
    exported: dict[str, Any] = json.loads(done.stdout)
    return exported


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    planned = [
        Planned(r.urn, planned_id(r), tuple(r.opts.aliases or ()))
        for r in args.resources
    ]
    stack = stack_of(r.urn for r in args.resources)
    if stack is None:
        return  # no resources at all: nothing to compare
    try:
        deployed = deployed_from_export(export_stack(stack))
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as error:
        report_violation(f"cannot read the deployed state of stack {stack!r} to compare the plan with: {error}", None)
        return
    for violation in violations(deployed, planned):
        report_violation(violation.message, violation.urn)


PolicyPack(
    name="medusa-bluegreen-guard",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name=POLICY_NAME,
            description=(
                "The router, the network and the data services (Postgres, Redis, Meilisearch and their "
                "volumes) are never replaced or deleted by a change (docs/rules.md, rules 1 and 3)."
            ),
            validate=validate,
        ),
    ],
)
