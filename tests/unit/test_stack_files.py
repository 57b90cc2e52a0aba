"""The stack files the repo ships are valid configs: a user starts from them."""

import json
from pathlib import Path

import pytest
import yaml

from core.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["name"]


def raw_config(stack_file: Path) -> dict[str, str]:
    """What Pulumi hands the program: `project:key` -> the value as text (structured values as JSON)."""
    config = yaml.safe_load(stack_file.read_text())["config"]
    return {
        key.removeprefix(f"{PROJECT}:"): value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }


@pytest.mark.parametrize("stack_file", sorted(REPO.glob("Pulumi.*.yaml")), ids=lambda path: path.name)
def test_each_shipped_stack_file_loads(stack_file: Path) -> None:
    assert load_settings(raw_config(stack_file)).prefix


@pytest.mark.parametrize("stack_file", ["Pulumi.production.yaml", "Pulumi.local.yaml"])
def test_the_shipped_stacks_check_readiness_the_dashboard_a_store_route_and_the_worker(stack_file: str) -> None:
    settings = load_settings(raw_config(REPO / stack_file))
    assert [check.path for check in settings.health_gate.checks] == ["/ready", "/app", "/store/products"]
    assert settings.health_gate.worker_check is not None
    assert settings.health_gate.worker_check.path == "/ready/worker"


@pytest.mark.parametrize("stack_file", ["Pulumi.production.yaml", "Pulumi.local.yaml"])
def test_a_stack_started_from_a_shipped_file_runs_its_data_services_hardened(stack_file: str) -> None:
    assert load_settings(raw_config(REPO / stack_file)).services.hardened
