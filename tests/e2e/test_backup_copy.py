"""backups.copyTo on the real engine: each pre-migration dump lands in an S3 bucket byte for byte,
and a copy that fails stops the release before its migration.

The bucket is moto's S3 server (PyPI, server mode), on the host at the harness bridge's gateway
(an address of the harness's own Docker network, which the copy's container reaches). moto
checks signatures: its first SETUP_CALLS requests are free (the IAM user, its key, the bucket),
every later one must be signed by that key, so a copy with the wrong secret is refused as AWS
would refuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from tests.e2e.conftest import measure
from tests.e2e.project import (
    REPO,
    PulumiStack,
    destroy_with_data,
    docker,
    gateway,
    local_stack_config,
    remove_leftovers,
)

PREFIX = "e2ebak"
HTTP_PORT, PREVIEW_PORT, S3_PORT = 6080, 7080, 15900
BUCKET, KEY_PREFIX = "shop-backups", "shop/db"
SETUP_CALLS = 4  # create_user, put_user_policy, create_access_key, create_bucket
GATE = {"deadlineSeconds": 60, "initialBackoffSeconds": 0.5, "maxBackoffSeconds": 2}


class Moto:
    def __init__(self, where: str) -> None:
        self.endpoint = f"http://{where}:{S3_PORT}"
        self.process = subprocess.Popen(
            [str(REPO / ".venv/bin/moto_server"), "-H", where, "-p", str(S3_PORT)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=2)
                break
            except requests.ConnectionError:
                assert self.process.poll() is None, "moto_server exited"
                assert time.monotonic() < deadline, "moto_server did not answer within 60 s"
                time.sleep(0.3)
        iam = self.client("iam", "setup", "setup")
        iam.create_user(UserName="backups")
        iam.put_user_policy(UserName="backups", PolicyName="put-backups", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }))
        key = iam.create_access_key(UserName="backups")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.s3 = self.client("s3", self.key_id, self.secret)
        self.s3.create_bucket(Bucket=BUCKET)

    def client(self, service: str, key_id: str, secret: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret)

    def object_sha256(self, key: str) -> str:
        return hashlib.sha256(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest()

    def keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = Moto(gateway())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(engine: dict[str, str], workdir: Any, moto: Moto) -> Iterator[PulumiStack]:
    remove_leftovers(PREFIX)
    stack = PulumiStack(workdir, engine, stack="backupcopy")
    yield stack
    destroy_with_data(stack, PREFIX)


def configure(stack: PulumiStack, moto: Moto, secret: str, **changes: Any) -> None:
    stack.set_config({
        **local_stack_config(
            PREFIX, HTTP_PORT, PREVIEW_PORT, healthGate=GATE,
            medusa={"serverMemoryMb": 256, "workerMemoryMb": 256, "stopTimeoutSeconds": 5},
            backups={"copyTo": {"endpoint": moto.endpoint, "bucket": BUCKET, "prefix": KEY_PREFIX}},
        ),
        "dockerHost": stack.env["DOCKER_HOST"],
        **changes,
    })
    for key, value in (("backupsAccessKeyId", moto.key_id), ("backupsSecretAccessKey", secret)):
        stack.run("config", "set", "--secret", key, stdin=value)


def dump_sha256(name: str) -> str:
    return docker("exec", f"{PREFIX}-postgres", "sha256sum", f"/backups/{name}").split()[0]


def release_backup(stack: PulumiStack, color: str) -> str:
    state = json.loads(stack.run("stack", "export").stdout)
    for resource in state["deployment"]["resources"]:
        if resource["urn"].endswith(f"::{color}-backup"):
            stdout = resource["outputs"]["stdout"]
            return str(next(line.removeprefix("backup=") for line in stdout.splitlines() if line.startswith("backup=")))
    raise AssertionError(f"no {color}-backup in the state")


def has_resource(stack: PulumiStack, name: str) -> bool:
    state = json.loads(stack.run("stack", "export").stdout)
    return any(r["urn"].endswith(f"::{name}") for r in state["deployment"]["resources"])


def test_each_dump_is_copied_whole_and_a_failed_copy_stops_the_release_before_its_migration(
    stack: PulumiStack, moto: Moto
) -> None:
    configure(stack, moto, moto.secret, activeColor="blue", blueImage="medusa-bg/testapp:v1")
    first = stack.up()
    blue_dump = release_backup(stack, "blue")
    assert moto.keys() == [f"{KEY_PREFIX}/{blue_dump}"]
    assert moto.object_sha256(f"{KEY_PREFIX}/{blue_dump}") == dump_sha256(blue_dump)
    measure(f"backup copy: first deploy with the copy {first.seconds:.1f}s")

    # The wrong secret: S3 refuses the signature, the release stops with the dump's name.
    configure(stack, moto, "wrong-secret-access-key-0123456789", activeColor="green",
              blueImage="medusa-bg/testapp:v1", greenImage="medusa-bg/testapp:v2")
    refused = stack.up(check=False)
    assert refused.returncode != 0
    green_dump = release_backup(stack, "green")
    assert f"the copy of backup {green_dump} to {moto.endpoint}/{BUCKET}/{KEY_PREFIX}/{green_dump} failed" \
        in refused.output, refused.output[-4000:]
    assert "the release stopped before its migration" in refused.output
    assert not has_resource(stack, "green-migrate"), "the migration ran although the copy failed"
    assert stack.outputs()["liveColor"] == "blue"
    assert moto.keys() == [f"{KEY_PREFIX}/{blue_dump}"]

    # The right secret again: the next `pulumi up` copies the same dump and the release goes on.
    configure(stack, moto, moto.secret, activeColor="green",
              blueImage="medusa-bg/testapp:v1", greenImage="medusa-bg/testapp:v2")
    retried = stack.up()
    assert release_backup(stack, "green") == green_dump, "the retry took a new dump instead of copying its own"
    assert moto.keys() == sorted([f"{KEY_PREFIX}/{blue_dump}", f"{KEY_PREFIX}/{green_dump}"])
    assert moto.object_sha256(f"{KEY_PREFIX}/{green_dump}") == dump_sha256(green_dump)
    assert stack.outputs()["liveColor"] == "green"
    measure(f"backup copy: release after the retried copy {retried.seconds:.1f}s")

    export = stack.run("stack", "export").stdout
    for secret in (moto.secret, "wrong-secret-access-key-0123456789"):
        assert secret not in export, "a backups key is in plain text in the state"
        assert not any(secret in run.output for run in stack.runs), "a backups key is in a run's output"
