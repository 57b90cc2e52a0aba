"""Builds from an app directory: the digest decides whether anything is built at all."""

import json
import shlex
from pathlib import Path

import pytest

from core.app_build import context_digest, context_files, plan_build
from core.docker_cli import build_image
from tests.unit.configs import config
from tests.unit.mock_stack import run_program


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "src/api").mkdir(parents=True)
    (tmp_path / "src/api/route.ts").write_text("export const GET = () => 'v1'\n")
    (tmp_path / "package.json").write_text('{"name": "app"}\n')
    (tmp_path / "node_modules/x").mkdir(parents=True)
    (tmp_path / "node_modules/x/index.js").write_text("junk\n")
    (tmp_path / ".medusa/server").mkdir(parents=True)
    (tmp_path / ".medusa/server/out.js").write_text("built\n")
    (tmp_path / "src/debug.log").write_text("noise\n")
    (tmp_path / ".dockerignore").write_text("# build output\nnode_modules\n.medusa/\n**/*.log\n!src/keep.log\n")
    return tmp_path


def test_dockerignore_excludes_dirs_globs_and_honours_negation(app: Path):
    (app / "src/keep.log").write_text("kept\n")
    assert context_files(app) == [".dockerignore", "package.json", "src/api/route.ts", "src/keep.log"]


def test_digest_ignores_excluded_files_and_follows_code_args_and_target(app: Path):
    first = context_digest(app, {})
    (app / "node_modules/x/index.js").write_text("changed junk\n")
    (app / "src/debug.log").write_text("more noise\n")
    assert context_digest(app, {}) == first, "ignored files must not trigger a rebuild"
    assert context_digest(app, {"NODE_IMAGE": "node:22-alpine"}) != first
    assert context_digest(app, {}, target="runtime") != first
    (app / "src/api/route.ts").write_text("export const GET = () => 'v2'\n")
    assert context_digest(app, {}) != first


def test_dockerfile_counts_even_when_dockerignore_lists_it(app: Path):
    (app / "Dockerfile").write_text("FROM node:22-alpine\n")
    (app / ".dockerignore").write_text("Dockerfile\n.dockerignore\nnode_modules\n.medusa\n**/*.log\n")
    first = context_digest(app, {})
    assert "Dockerfile" in context_files(app)
    (app / "Dockerfile").write_text("FROM node:24-alpine\n")
    assert context_digest(app, {}) != first


def test_digest_sees_the_executable_bit(app: Path):
    first = context_digest(app, {})
    (app / "package.json").chmod(0o755)
    assert context_digest(app, {}) != first


def test_missing_context_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        context_digest(tmp_path / "nope", {})


def test_plan_resolves_relative_context_and_tags_by_digest(app: Path):
    plan = plan_build(app.name, app.parent, "shop-app", {"A": "1"}, {"ca": "/etc/ca.crt"}, None)
    assert plan.context == str(app)
    assert plan.image_ref == f"shop-app:src-{plan.digest[:20]}"


def test_build_command_line_shape():
    line = build_image("/srv/app dir", "shop-app:src-abc", {"B": "2", "A": "x y"}, {"ca": "/etc/ca.crt"}, "runtime")
    argv = shlex.split(line)
    assert argv[:2] == ["sh", "-c"]
    inner = argv[2]
    assert "docker build --progress plain --tag shop-app:src-abc --build-arg 'A=x y' --build-arg B=2 " \
           "--secret id=ca,src=/etc/ca.crt --target runtime '/srv/app dir'" in inner
    assert "tail -n 80" in inner, "a failed build shows its log"


def test_the_released_color_is_built_and_its_image_waits_for_the_build(app: Path):
    monitor, outputs = run_program(
        config(activeColor="green", blueImage="registry.example.com/shop/medusa:1.0.0",
               greenBuild=json.dumps({"context": str(app), "args": {"NODE_IMAGE": "medusa-bg/node:22"}}))
    )
    build = monitor.registrations["green-build"].inputs
    assert build["environment"]["DOCKER_BUILDKIT"] == "1"
    ref = outputs["imageRefs"]["green"]
    assert ref == f"medusa-app:src-{context_digest(app, {'NODE_IMAGE': 'medusa-bg/node:22'})[:20]}"  # prefix medusa
    assert build["triggers"] == [ref]
    assert monitor.registrations["green-image"].inputs["name"] == ref
    assert monitor.depends_on("green-image", "green-build")
    assert outputs["imageRefs"]["blue"] == "registry.example.com/shop/medusa:1.0.0"
    assert "blue-build" not in monitor.registrations


def test_unchanged_app_plans_the_same_build(app: Path):
    raw = config(greenBuild=json.dumps({"context": str(app)}), activeColor="green",
                 blueImage="registry.example.com/shop/medusa:1.0.0")
    first = run_program(raw)[0].registrations["green-build"].inputs["create"]
    second = run_program(raw)[0].registrations["green-build"].inputs["create"]
    assert first == second
