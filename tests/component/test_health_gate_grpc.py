"""The health gate driven exactly the way the Pulumi engine drives it (rule 6).

The engine runs a dynamic provider as `python -u -m pulumi.dynamic` (the SDK's
pulumi-resource-pulumi-python script), reads the gRPC port it prints on stdout, and calls
Configure, then Check/Create for a new resource and Check/Diff/Update on later runs, passing
the provider itself, pickled by the SDK's serializer, in the `__provider` property. This test
does the same against a real HTTP server on 127.0.0.1 whose answers it scripts per test.

Engine facts this follows (pulumi sdk/go/common/resource/plugin/provider_plugin.go): Diff and
Update get `olds` = the old *outputs* (what Create returned) and `news` = the checked new
inputs; the provider answers Configure with acceptSecrets=false, so the engine strips secret
wrappers (the serialized provider, the preview-token headers) before sending, and nulls are
sent as nulls.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from core.health_poll import COLOR_HEADER
from providers.health_gate import HealthGateProvider
from tests.component import servers

ROOT = Path(__file__).resolve().parents[2]
URN = "urn:pulumi:test::medusa-bluegreen::pulumi-python:dynamic:Resource::blue-health-gate"
TOKEN = "preview-token-0123456789abcdef"

# Small timings keep the file fast: deadline 3 s, first backoff 0.2 s.
FAST = {"timeout_seconds": 1.0, "deadline_seconds": 3.0, "initial_backoff_seconds": 0.2, "max_backoff_seconds": 1.6}


# --- the HTTP target --------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: str = "OK"
    color: str | None = "blue"
    delay: float = 0.0


@dataclass
class HealthTarget:
    """A threaded HTTP server whose n-th answer comes from `script(n)`; it records every request."""

    script: Callable[[int], Reply]
    requests: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> HealthTarget:
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with lock:
                    index = len(target.requests)
                    target.requests.append((time.monotonic(), self.path, dict(self.headers.items())))
                reply = target.script(index)
                if reply.delay and target.stopping.wait(reply.delay):
                    return
                body = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    if reply.color is not None:
                        self.send_header(COLOR_HEADER, reply.color)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (per-try timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/health"

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def gaps(self) -> list[float]:
        times = [at for at, _, _ in self.requests]
        return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.fixture()
def target_factory() -> Iterator[Callable[[Callable[[int], Reply]], HealthTarget]]:
    started: list[HealthTarget] = []

    def make(script: Callable[[int], Reply]) -> HealthTarget:
        started.append(HealthTarget(script).start())
        return started[-1]

    yield make
    for target in started:
        target.stop()


# --- the provider process, as the engine runs it ----------------------------------------------


class ProviderProcess:
    def __init__(self, cwd: Path, pythonpath: str | None, log: Path):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
        )
        self.port = self._read_port()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self.channel).result(timeout=15)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        # The engine configures every provider before using it.
        configured = self.stub.Configure(
            provider_pb2.ConfigureRequest(args=struct_pb2.Struct(), acceptSecrets=True, acceptResources=True),
            timeout=15,
        )
        assert configured.acceptSecrets is False  # so the engine sends plain values, secrets stripped

    def _read_port(self) -> int:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            pytest.fail(
                f"`python -m pulumi.dynamic` did not announce a port (got {line!r}):\n"
                f"{self.log.read_text(errors='replace')[-3000:]}",
                pytrace=False,
            )
        return int(line)

    def stop(self) -> None:
        if hasattr(self, "channel"):
            self.channel.close()
        servers.stop_process(self.process)
        if self.process.stdout:
            self.process.stdout.close()
        self._log_file.close()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderProcess]:
    process = ProviderProcess(ROOT, str(ROOT), tmp_path_factory.mktemp("provider") / "stderr.log")
    try:
        yield process
    finally:
        process.stop()


SERIALIZED = serialize_provider(HealthGateProvider())


def struct(props: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(props)
    return message


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def gate_inputs(
    url: str,
    *,
    color: str = "blue",
    image: str = "sha256:aaaa",
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The props HealthGate passes to dynamic.Resource, as the engine forwards them."""
    props: dict[str, Any] = {
        "url": url,
        "color": color,
        "triggers": [image, "container-id-server", "preview-switch-id"],
        "expect_status": 200,
        "expect_body": "OK",
        "expect_color_header": True,
        "verify_tls": True,
        **FAST,
        "headers": headers if headers is not None else {},
        "rollback": None,
        "result": None,
        "__provider": SERIALIZED,
        **overrides,
    }
    return props


@dataclass
class Created:
    id: str
    inputs: struct_pb2.Struct
    outputs: struct_pb2.Struct


def check(
    provider: ProviderProcess,
    news: dict[str, Any],
    olds: struct_pb2.Struct | None = None,
) -> provider_pb2.CheckResponse:
    return provider.stub.Check(
        provider_pb2.CheckRequest(urn=URN, olds=olds or struct_pb2.Struct(), news=struct(news)), timeout=30
    )


def create(provider: ProviderProcess, props: dict[str, Any]) -> Created:
    checked = check(provider, props)
    assert list(checked.failures) == []
    response = provider.stub.Create(
        provider_pb2.CreateRequest(urn=URN, properties=checked.inputs, timeout=60), timeout=60
    )
    return Created(response.id, checked.inputs, response.properties)


def create_fails(provider: ProviderProcess, props: dict[str, Any]) -> str:
    with pytest.raises(grpc.RpcError) as failed:
        create(provider, props)
    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    details = failed.value.details() or ""
    # Our own failure, not a crash: the SDK's wrapper text differs between releases (3.260 names
    # the exception class, 3.259 does not), so match the gate's message.
    assert "Exception calling application: health gate failed for color" in details, details
    return details


DIAGNOSTIC = re.compile(
    r"health gate failed for color (?P<color>\w+): (?P<url>\S+) never proved healthy after (?P<tries>\d+) tries "
    r"in (?P<waited>[\d.]+)s \(deadline (?P<deadline>\d+)s\); last status: (?P<status>\w+); "
    r"last problem: (?P<problem>.*?)(?:; body: (?P<body>'.*'))?$",
    re.MULTILINE,
)


def diagnostic(details: str) -> dict[str, str]:
    found = DIAGNOSTIC.search(details)
    assert found, f"no full diagnostic in:\n{details}"
    return found.groupdict()


# --- cases ------------------------------------------------------------------------------------


def test_healthy_target_passes_on_the_first_try(provider: ProviderProcess, target_factory: Any) -> None:
    target = target_factory(lambda _n: Reply(200, "OK", "blue"))
    created = create(provider, gate_inputs(target.url, headers={"X-Bluegreen-Preview-Token": TOKEN}))
    outputs = plain(created.outputs)
    result = outputs["result"]
    assert result["healthy"] is True and result["color"] == "blue" and result["url"] == target.url
    assert result["tries"] == 1 and result["last_status"] == 200
    assert len(target.requests) == 1
    # The preview token reaches the target but is not kept in the outputs (the state).
    assert target.requests[0][2].get("X-Bluegreen-Preview-Token") == TOKEN
    assert "headers" not in outputs and TOKEN not in created.outputs.SerializeToString().decode(errors="replace")
    assert outputs["__provider"] == SERIALIZED and created.id


def test_check_rejects_bad_url_and_color(provider: ProviderProcess) -> None:
    checked = check(provider, gate_inputs("ftp://127.0.0.1/health", color="purple"))
    assert sorted((f.property, f.reason) for f in checked.failures) == [
        ("color", "must be blue or green"),
        ("url", "must be an http(s) URL"),
    ]


def test_never_healthy_fails_at_the_deadline_with_full_diagnostic(
    provider: ProviderProcess,
    target_factory: Any,
) -> None:
    target = target_factory(lambda _n: Reply(503, "medusa is still booting: loading modules", "blue"))
    started = time.monotonic()
    details = create_fails(provider, gate_inputs(target.url))
    elapsed = time.monotonic() - started
    found = diagnostic(details)
    assert found["color"] == "blue" and found["url"] == target.url
    assert found["status"] == "503" and found["problem"] == "status 503, expected 200"
    assert found["body"] == "'medusa is still booting: loading modules'"
    assert int(found["tries"]) == len(target.requests) >= 4
    assert 3.0 <= float(found["waited"]) < 4.5 and found["deadline"] == "3"
    assert 3.0 <= elapsed < 6.0


def test_wrong_color_is_not_healthy(provider: ProviderProcess, target_factory: Any) -> None:
    target = target_factory(lambda _n: Reply(200, "OK", "green"))
    details = create_fails(provider, gate_inputs(target.url, deadline_seconds=1.0))
    found = diagnostic(details)
    assert found["status"] == "200"
    assert found["problem"] == "served by color 'green', expected 'blue'"


def test_flaky_target_succeeds_with_growing_backoff(provider: ProviderProcess, target_factory: Any) -> None:
    target = target_factory(lambda n: Reply(502, "Bad Gateway", None) if n < 3 else Reply(200, "OK", "blue"))
    created = create(provider, gate_inputs(target.url, deadline_seconds=10.0))
    result = plain(created.outputs)["result"]
    assert result["healthy"] is True and result["tries"] == 4 == len(target.requests)
    gaps = target.gaps()
    # Backoff 0.2 s, doubled each time: 0.2, 0.4, 0.8 (plus request overhead).
    for gap, nominal in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert nominal * 0.9 <= gap < nominal + 0.5, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert gaps[2] > 1.5 * gaps[1] and gaps[1] > 1.5 * gaps[0], gaps


def test_slower_than_the_per_try_timeout_fails_with_timeouts(provider: ProviderProcess, target_factory: Any) -> None:
    target = target_factory(lambda _n: Reply(200, "OK", "blue", delay=2.0))
    details = create_fails(provider, gate_inputs(target.url, timeout_seconds=0.5, deadline_seconds=2.0))
    found = diagnostic(details)
    assert found["status"] == "None"
    assert found["problem"].startswith("ReadTimeout:") and "timed out" in found["problem"], found["problem"]
    assert "read timeout=0.5" in found["problem"]
    assert found["body"] is None
    assert int(found["tries"]) == len(target.requests) >= 2


def test_connection_refused_fails_with_the_reason(provider: ProviderProcess) -> None:
    url = f"http://127.0.0.1:{servers.free_port()}/health"  # nothing listens there
    details = create_fails(provider, gate_inputs(url, deadline_seconds=1.0))
    found = diagnostic(details)
    assert found["url"] == url and found["status"] == "None"
    assert found["problem"].startswith("ConnectionError:") and "Connection refused" in found["problem"]
    assert int(found["tries"]) >= 2


def test_http_500_puts_a_body_excerpt_in_the_error(provider: ProviderProcess, target_factory: Any) -> None:
    body = "Error: connect ECONNREFUSED 10.0.0.7:5432 at TCPConnectWrapper " + "x" * 400 + " TAIL-NOT-SHOWN"
    target = target_factory(lambda _n: Reply(500, body, "blue"))
    details = create_fails(provider, gate_inputs(target.url, deadline_seconds=1.0))
    found = diagnostic(details)
    assert found["status"] == "500" and found["problem"] == "status 500, expected 200"
    assert found["body"] == repr(body[:300])  # the first 300 characters, not the whole body
    assert "ECONNREFUSED 10.0.0.7:5432" in details and "TAIL-NOT-SHOWN" not in details


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-preview-token"),
        pytest.param({"X-Bluegreen-Preview-Token": TOKEN}, id="preview-token"),
        pytest.param({"Host": "shop.example.com"}, id="post-switch-host-header"),
    ],
)
def test_unchanged_inputs_diff_to_no_changes(
    provider: ProviderProcess,
    target_factory: Any,
    headers: dict[str, str],
) -> None:
    target = target_factory(lambda _n: Reply(200, "OK", "blue"))
    props = gate_inputs(target.url, headers=headers)
    created = create(provider, props)
    assert len(target.requests) == 1
    # The next `pulumi up` with the same program: Check(old inputs, news), then Diff(old outputs, news).
    rechecked = check(provider, props, olds=created.inputs)
    diff = provider.stub.Diff(
        provider_pb2.DiffRequest(
            id=created.id, urn=URN, olds=created.outputs, news=rechecked.inputs, old_inputs=created.inputs
        ),
        timeout=30,
    )
    assert diff.changes == provider_pb2.DiffResponse.DIFF_NONE, provider_pb2.DiffResponse.DiffChanges.Name(diff.changes)
    assert list(diff.replaces) == []
    assert len(target.requests) == 1  # nothing re-polled


def test_changed_headers_diff_to_changes(provider: ProviderProcess, target_factory: Any) -> None:
    # The outputs keep only a digest of the headers (the preview token stays out of the state),
    # yet a rotated token or a new Host header is still seen as a change.
    target = target_factory(lambda _n: Reply(200, "OK", "blue"))
    created = create(provider, gate_inputs(target.url, headers={"X-Bluegreen-Preview-Token": TOKEN}))
    assert TOKEN not in created.outputs.SerializeToString().decode(errors="replace")
    for headers in ({"X-Bluegreen-Preview-Token": TOKEN + "-rotated"}, {}):
        rechecked = check(provider, gate_inputs(target.url, headers=headers), olds=created.inputs)
        diff = provider.stub.Diff(
            provider_pb2.DiffRequest(
                id=created.id, urn=URN, olds=created.outputs, news=rechecked.inputs, old_inputs=created.inputs
            ),
            timeout=30,
        )
        assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME, headers


def test_the_headers_digest_in_the_state_is_salted(provider: ProviderProcess, target_factory: Any) -> None:
    # Two gates with the same token keep different digests, and neither is the plain SHA-256 one
    # could look up or compare across stacks.
    target = target_factory(lambda _n: Reply(200, "OK", "blue"))
    headers = {"X-Bluegreen-Preview-Token": TOKEN}
    digests = [plain(create(provider, gate_inputs(target.url, headers=headers)).outputs)["headers_digest"]
               for _ in range(2)]
    unsalted = hashlib.sha256(json.dumps(headers, sort_keys=True).encode()).hexdigest()
    assert digests[0] != digests[1] and unsalted not in digests, digests


def test_a_gate_recorded_before_salting_still_compares_its_headers(
    provider: ProviderProcess, target_factory: Any
) -> None:
    # State written before the digest was salted holds a plain SHA-256 and no salt: the same
    # headers must still read as unchanged (no re-poll on upgrade), other headers as a change.
    target = target_factory(lambda _n: Reply(200, "OK", "blue"))
    headers = {"X-Bluegreen-Preview-Token": TOKEN}
    created = create(provider, gate_inputs(target.url, headers=headers))
    outputs = plain(created.outputs)
    assert "headers_salt" in outputs, sorted(outputs)
    del outputs["headers_salt"]
    outputs["headers_digest"] = hashlib.sha256(json.dumps(headers, sort_keys=True).encode()).hexdigest()
    recorded = json_format.ParseDict(outputs, struct_pb2.Struct())
    changes = {}
    for label, news in (("same", headers), ("rotated", {"X-Bluegreen-Preview-Token": TOKEN + "-rotated"})):
        rechecked = check(provider, gate_inputs(target.url, headers=news), olds=created.inputs)
        diff = provider.stub.Diff(
            provider_pb2.DiffRequest(
                id=created.id, urn=URN, olds=recorded, news=rechecked.inputs, old_inputs=created.inputs
            ),
            timeout=30,
        )
        changes[label] = provider_pb2.DiffResponse.DiffChanges.Name(diff.changes)
    assert changes == {"same": "DIFF_NONE", "rotated": "DIFF_SOME"}, changes


def test_changed_image_diffs_to_changes_and_update_polls_again(provider: ProviderProcess, target_factory: Any) -> None:
    target = target_factory(lambda _n: Reply(200, "OK", "blue"))
    created = create(provider, gate_inputs(target.url, image="sha256:aaaa"))
    assert len(target.requests) == 1
    first_result = plain(created.outputs)["result"]

    news = gate_inputs(target.url, image="sha256:bbbb")
    rechecked = check(provider, news, olds=created.inputs)
    assert list(rechecked.failures) == []
    diff = provider.stub.Diff(
        provider_pb2.DiffRequest(
            id=created.id, urn=URN, olds=created.outputs, news=rechecked.inputs, old_inputs=created.inputs
        ),
        timeout=30,
    )
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(diff.replaces) == [] and diff.deleteBeforeReplace is False  # an in-place update

    updated = provider.stub.Update(
        provider_pb2.UpdateRequest(
            id=created.id, urn=URN, olds=created.outputs, news=rechecked.inputs, old_inputs=created.inputs, timeout=60
        ),
        timeout=60,
    )
    assert len(target.requests) == 2  # the gate really polled again
    outputs = plain(updated.properties)
    assert outputs["triggers"][0] == "sha256:bbbb"
    assert outputs["result"]["healthy"] is True and outputs["result"]["tries"] == 1
    assert outputs["result"]["checked_at"] >= first_result["checked_at"]


def test_update_that_fails_the_gate_fails_the_call(provider: ProviderProcess, target_factory: Any) -> None:
    healthy = {"value": True}
    target = target_factory(lambda _n: Reply(200, "OK", "blue") if healthy["value"] else Reply(503, "down", "blue"))
    created = create(provider, gate_inputs(target.url))
    healthy["value"] = False
    news = gate_inputs(target.url, image="sha256:cccc", deadline_seconds=0.5)
    rechecked = check(provider, news, olds=created.inputs)
    with pytest.raises(grpc.RpcError) as failed:
        provider.stub.Update(
            provider_pb2.UpdateRequest(
                id=created.id,
                urn=URN,
                olds=created.outputs,
                news=rechecked.inputs,
                old_inputs=created.inputs,
                timeout=60,
            ),
            timeout=60,
        )
    found = diagnostic(failed.value.details() or "")
    assert found["status"] == "503" and found["body"] == "'down'"


# --- how the provider finds `providers` -------------------------------------------------------


def _check_in_fresh_provider(tmp_path: Path, cwd: Path) -> tuple[provider_pb2.CheckResponse | None, str]:
    """Starts a provider process without PYTHONPATH in `cwd` and runs one Check."""
    process = ProviderProcess(cwd, None, tmp_path / f"stderr-{cwd.name}.log")
    try:
        return check(process, gate_inputs("http://127.0.0.1:1/health")), ""
    except grpc.RpcError as error:
        return None, error.details() or ""
    finally:
        process.stop()


def test_provider_imports_its_module_from_the_project_dir_without_pythonpath(tmp_path: Path) -> None:
    """`python -m` puts the working directory first on sys.path, and the engine starts the
    provider in the project directory, so the pickled reference to providers.health_gate
    resolves with no PYTHONPATH at all."""
    checked, error = _check_in_fresh_provider(tmp_path, ROOT)
    assert checked is not None, error
    assert list(checked.failures) == []


def test_provider_outside_the_project_dir_cannot_find_its_module(tmp_path: Path) -> None:
    # The control case: the class is pickled by reference, so it must be importable.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked, error = _check_in_fresh_provider(tmp_path, elsewhere)
    assert checked is None
    assert "No module named 'providers'" in error, error


def test_serialized_provider_is_a_reference_not_a_copy() -> None:
    # dill pickles the class by module and name (it is importable), not its source: the
    # provider process must import the same code. Deterministic, so no spurious diffs.
    import base64

    raw = base64.b64decode(SERIALIZED)
    assert b"providers.health_gate" in raw and b"HealthGateProvider" in raw
    assert serialize_provider(HealthGateProvider()) == SERIALIZED
    assert json.dumps(SERIALIZED)  # a plain string property
