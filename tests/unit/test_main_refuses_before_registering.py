"""The real entry point refuses a bad stack config before it registers anything (rule 10).

__main__.py runs as `pulumi up` runs it: the config comes in PULUMI_CONFIG and the keys set
with --secret in PULUMI_CONFIG_SECRET_KEYS (as the Python language host passes them), and the
engine is the suite's recording mock monitor. A refusal is a pulumi.RunError naming the key, the
problem and the fix, and not one resource is registered, not even the provider. (The root
`pulumi:pulumi:Stack` is the SDK's, registered before the program runs, in `pulumi up` as here.)
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest

from core.naming import PROJECT
from core.settings import SECRET_KEYS
from tests.unit.configs import config
from tests.unit.mock_stack import RecordingMonitor, StackMocks

MAIN = Path(__file__).resolve().parents[2] / "__main__.py"


def program_resources(monitor: RecordingMonitor) -> list[str]:
    return sorted(name for name, r in monitor.registrations.items() if r.type != "pulumi:pulumi:Stack")


def run_main(
    monkeypatch: pytest.MonkeyPatch, raw: dict[str, str], secret: set[str] | None = None
) -> tuple[RecordingMonitor, pulumi.RunError | None]:
    """__main__.py under mocks with `raw` as the stack config; `secret`: the keys set with --secret
    (default: every secret key the config sets). The monitor, and the run's RunError if it failed."""
    secret = {k for k in raw if k in SECRET_KEYS} if secret is None else secret
    scoped = {key if ":" in key else f"{PROJECT}:{key}": value for key, value in raw.items()}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(scoped))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(sorted(f"{PROJECT}:{k}" for k in secret)))
    mocks = StackMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="unit", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def program() -> Any:
        runpy.run_path(str(MAIN), run_name="__main__")

    try:
        program()
    except pulumi.RunError as error:
        return monitor, error
    return monitor, None


G = {"activeColor": "green", "greenImage": "", "blueImage": "registry.example.com/shop/medusa:1.0.0"}

REFUSED = [
    pytest.param(
        {**G, "greenBuild": json.dumps({"context": "apps/missing-shop"})},
        "greenBuild.context: ",
        "apps/missing-shop does not exist on this machine; point it at the app directory: "
        "`pulumi config set --path greenBuild.context ./app`",
        id="build-context-missing",
    ),
    pytest.param(
        {"router": json.dumps({"probeHost": "https://api.example.com"})},
        "router.probeHost: 'https://api.example.com' is not a host name or IP address",
        "did you mean 'api.example.com'?",
        id="probe-host-url",
    ),
    pytest.param(
        {"docker:host": "ssh://deploy@203.0.113.7"},
        "docker:host: not read: this program makes its own Docker provider from dockerHost",
        "`pulumi config rm docker:host && pulumi config set dockerHost ssh://user@host`",
        id="docker-host-namespace",
    ),
    pytest.param(
        {"extraSecretEnv": json.dumps({"SENTRY_DSN": "https://sentry-key-77@o1.ingest.sentry.io/1\n"})},
        "extraSecretEnv.SENTRY_DSN: contains a control character or line break",
        "remove it",
        id="extra-secret-env-newline",
    ),
    pytest.param(
        {"tls": json.dumps({"enabled": True, "certPath": "certs/shop.pem", "keyPath": "/etc/ssl/shop.key"})},
        "tls.certPath: 'certs/shop.pem' is not an absolute path",
        "give the full path of the file on the Docker host",
        id="cert-path-relative",
    ),
    pytest.param(
        {"previewToken": "a-long-random-preview-token!"},
        "previewToken: may only contain letters, digits and . _ ~ -",
        "`pulumi config set --secret previewToken $(openssl rand -hex 24)`",
        id="preview-token-nginx-chars",
    ),
    pytest.param(
        {"router": json.dumps({"httpport": 8080})},
        "router.httpport: unknown setting; did you mean 'router.httpPort'?",
        "`pulumi config rm --path router.httpport`",
        id="nested-typo",
    ),
]


@pytest.mark.parametrize(("overrides", "problem", "fix"), REFUSED)
def test_a_bad_config_fails_the_run_before_any_resource_is_registered(monkeypatch, overrides, problem, fix):
    monitor, error = run_main(monkeypatch, {k: v for k, v in config(**overrides).items() if v != ""})
    assert error is not None, "the run must fail"
    message = str(error)
    assert message.startswith("invalid stack config") and problem in message and fix in message, message
    assert error.__cause__ is None  # raised `from None`: the engine prints the message, no traceback chain
    for key, value in overrides.items():
        if key in SECRET_KEYS:
            assert value not in message and "sentry-key-77" not in message
    assert program_resources(monitor) == []


def test_a_secret_set_without_secret_fails_the_run_without_its_value(monkeypatch):
    monitor, error = run_main(monkeypatch, config(previewToken="a-long-random-preview-token"),
                              secret=set(SECRET_KEYS) - {"previewToken"})
    assert error is not None
    assert ("previewToken: is a secret but was set without --secret, so it is stored in plain text in the "
            "stack's config file; set it again with `pulumi config set --secret previewToken <value>`") in str(error)
    assert "a-long-random-preview-token" not in str(error)
    assert program_resources(monitor) == []


def test_the_same_entry_registers_the_stack_for_a_good_config(monkeypatch):
    # The control: the harness above would see registrations if there were any.
    monitor, error = run_main(monkeypatch, config())
    assert error is None
    assert any(r.type == "pulumi:providers:docker" for r in monitor.registrations.values())
    assert len(program_resources(monitor)) > 10
