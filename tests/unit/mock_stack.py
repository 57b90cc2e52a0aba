"""Runs the Pulumi program under mocks and records every registration the engine would see.

RecordingMonitor keeps the raw RegisterResource requests: the serialized inputs (with the
secret markers the real engine gets) and the dependency lists, so tests can assert the graph.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor

from components.stack import build_stack
from core.settings import load_settings

SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]  # JSON form of the serialized inputs, secrets still wrapped
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    retain_on_delete: bool
    protect: bool
    providers: dict[str, str]
    custom_timeouts: dict[str, str]
    secret_outputs: list[str]


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class StackMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state["image_id"] = fake_digest(args.inputs["name"])
            state["repo_digest"] = ""
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"generated-{args.name}-0123456789"
        elif args.typ == "command:local:Command":
            create = args.inputs.get("create", "")
            if " switch " in create:
                route, color = create.split()[-2:]
                previous = "green" if color == "blue" else "blue"
                state["stdout"] = f"route={route} previous={previous} current={color}"
            elif "pg_dump" in create:
                state["stdout"] = "backup=20261122T000000Z-blue-app.dump"
            else:
                state["stdout"] = ""
        elif args.typ == "pulumi-python:dynamic:Resource":
            state["result"] = {"healthy": True, "tries": 1}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        self.registrations[request.name] = Registration(
            type=request.type,
            name=request.name,
            urn=response.urn,
            parent=request.parent,
            inputs=json_format.MessageToDict(request.object),
            # The SDK gathers dependencies as a set: their order is not part of the program.
            dependencies=sorted(request.dependencies),
            property_dependencies={k: sorted(v.urns) for k, v in request.propertyDependencies.items()},
            retain_on_delete=bool(request.retainOnDelete),
            protect=bool(request.protect),
            providers=dict(request.providers),
            custom_timeouts=json_format.MessageToDict(request.customTimeouts),
            secret_outputs=list(request.additionalSecretOutputs),
        )
        return response

    def urn(self, name: str) -> str:
        return self.registrations[name].urn

    def depends_on(self, name: str, other: str) -> bool:
        reg = self.registrations[name]
        target = self.urn(other)
        return target in reg.dependencies or any(target in urns for urns in reg.property_dependencies.values())


def run_program(raw_config: dict[str, str]) -> tuple[RecordingMonitor, dict[str, Any]]:
    mocks = StackMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="medusa-bluegreen", stack="unit", preview=False, monitor=monitor)
    exported: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        outputs = build_stack(load_settings(raw_config))
        return pulumi.Output.from_input(outputs).apply(exported.update)

    program()
    return monitor, exported


def plain_strings(value: Any) -> list[str]:
    """Every string in serialized inputs that is NOT inside a secret wrapper."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE_SIG:
            return []
        return [s for key, item in value.items() for s in [key, *plain_strings(item)]]
    if isinstance(value, list):
        return [s for item in value for s in plain_strings(item)]
    if isinstance(value, str):
        return [value]
    return []
