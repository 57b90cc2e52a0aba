"""Builds from an app directory: the digest decides whether anything is built at all."""

import hashlib
import json
import os
import shlex
from pathlib import Path
from typing import NamedTuple

import pytest

from core.app_build import context_digest, context_entries, context_files, ignore_patterns, plan_build
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
    (app / "Dockerfile").write_text("FROM medusa-bg/node:22\n")  # settings refuse a context without one
    monitor, outputs = run_program(
        config(activeColor="green", blueImage="registry.example.com/shop/medusa:1.0.0",
               greenBuild=json.dumps({"context": str(app), "args": {"NODE_IMAGE": "medusa-bg/node:22"}}))
    )
    build = monitor.registrations["green-build"].inputs
    assert build["environment"]["DOCKER_BUILDKIT"] == "1"
    ref = outputs["imageRefs"]["green"]
    args = {"MEDUSA_BACKEND_URL": "http://api.shop.example.com", "NODE_IMAGE": "medusa-bg/node:22"}
    assert ref == f"medusa-app:src-{context_digest(app, args)[:20]}"  # prefix medusa
    assert build["triggers"] == [ref]
    assert monitor.registrations["green-image"].inputs["name"] == ref
    assert monitor.depends_on("green-image", "green-build")
    assert outputs["imageRefs"]["blue"] == "registry.example.com/shop/medusa:1.0.0"
    assert "blue-build" not in monitor.registrations


def test_unchanged_app_plans_the_same_build(app: Path):
    (app / "Dockerfile").write_text("FROM medusa-bg/node:22\n")  # settings refuse a context without one
    raw = config(greenBuild=json.dumps({"context": str(app)}), activeColor="green",
                 blueImage="registry.example.com/shop/medusa:1.0.0")
    first = run_program(raw)[0].registrations["green-build"].inputs["create"]
    second = run_program(raw)[0].registrations["green-build"].inputs["create"]
    assert first == second


# --- .dockerignore rules ------------------------------------------------------------------------
# Each case is also built for real by tests/component/test_build_context.py, which checks that the
# files `docker build` sends are exactly `counted` minus `not_sent_by_harness`.

DOCKERFILE = "FROM scratch\nCOPY . /\n"


class IgnoreCase(NamedTuple):
    id: str
    ignore: str  # the .dockerignore
    tree: tuple[str, ...]  # files besides Dockerfile and .dockerignore
    counted: tuple[str, ...]  # context_files(): what counts towards the digest
    # Counted, but not sent by the harness's Docker 20.10 BuildKit: the build files it reads outside
    # the context, and files only current BuildKit (or only a newer/older rule set) sends.
    not_sent_by_harness: tuple[str, ...] = ()


BUILD = ("Dockerfile", ".dockerignore")
IGNORE_CASES = [
    # The bug of issue 10: a character class in a re-include was matched as literal text.
    IgnoreCase("class-reinclude", "src/*\n!src/*.[jt]s\n",
               ("src/app.ts", "src/app.js", "src/style.css", "src/api/route.ts", "package.json"),
               (*BUILD, "package.json", "src/app.js", "src/app.ts")),
    IgnoreCase("double-star", "**/*.log\n**/node_modules\n",
               ("a.log", "sub/deep/b.log", "keep.txt", "node_modules/x.js", "pkgs/a/node_modules/y.js", "pkgs/a/i.js"),
               (*BUILD, "keep.txt", "pkgs/a/i.js")),
    IgnoreCase("dir-then-reinclude", "docs\n!docs/keep.txt\n",
               ("docs/keep.txt", "docs/other.txt", "docs/sub/keep.txt", "readme.txt"),
               (*BUILD, "docs/keep.txt", "readme.txt")),
    # Docker anchors every pattern at the context root, with or without a leading slash.
    IgnoreCase("leading-slash", "/build\ntmp\n",
               ("build/out.js", "sub/build/out.js", "tmp/t", "sub/tmp/t"),
               (*BUILD, "sub/build/out.js", "sub/tmp/t")),
    # A trailing slash is cleaned away: `logs.txt/` excludes the regular file logs.txt too.
    IgnoreCase("trailing-slash", "dist/\nlogs.txt/\n",
               ("dist/x.js", "sub/dist/y.js", "distx", "logs.txt"),
               (*BUILD, "distx", "sub/dist/y.js")),
    IgnoreCase("dot-relative", "./node_modules\n./src/../tmp\n.//cache/./x\n",
               ("node_modules/a.js", "tmp/t", "src/s.ts", "cache/x", "cache/y"),
               (*BUILD, "cache/y", "src/s.ts")),
    # `#` starts a comment only in the first column; patterns are trimmed.
    IgnoreCase("comments-and-blanks", "# comment\n\n   \n#node_modules\n # spaced\nsecret.txt   \n\t\n",
               ("node_modules/a.js", "secret.txt", "# spaced", "# comment"),
               (*BUILD, "# comment", "node_modules/a.js")),
    IgnoreCase("excludes-build-files", "Dockerfile\n.dockerignore\napp.log\n",
               ("app.js", "app.log"),
               (*BUILD, "app.js"), not_sent_by_harness=BUILD),
    IgnoreCase("everything", "*\n",
               ("app.js", "src/a.ts"),
               BUILD, not_sent_by_harness=BUILD),
    # `*.md` matches at the root only (not gitignore's "any depth").
    IgnoreCase("md-but-readme", "*.md\n!README.md\n",
               ("README.md", "CHANGELOG.md", "docs/guide.md", "docs/README.md"),
               (*BUILD, "README.md", "docs/README.md", "docs/guide.md")),
    # Docker matches case-sensitively on Linux; the docker SDK alone folds case and would drop these.
    IgnoreCase("case-sensitive", "*.log\ndocs\n",
               ("a.log", "ERROR.LOG", "docs/a.txt", "Docs/b.txt"),
               (*BUILD, "Docs/b.txt", "ERROR.LOG")),
    # `../app.js` can never match in Docker; the SDK alone would fold it into `app.js`.
    IgnoreCase("climbs-out", "../app.js\nx/../../y\n",
               ("app.js", "y"),
               (*BUILD, "app.js", "y")),
    # BuildKit reads <Dockerfile>.dockerignore (here `a.txt`) in place of .dockerignore (`b.txt`).
    IgnoreCase("dockerfile-dockerignore", "a.txt\n",
               ("a.txt", "b.txt"),
               (*BUILD, "Dockerfile.dockerignore", "b.txt")),
    # Where Docker versions disagree, whatever any of them sends counts. Current BuildKit enters an
    # excluded directory when a re-include has a wildcard; 20.10 (and the docker SDK) do not.
    IgnoreCase("wildcard-reinclude-in-excluded-dir", "node_modules\n!**/keep.js\n",
               ("node_modules/keep.js", "node_modules/x.js", "src/keep.js"),
               (*BUILD, "node_modules/keep.js", "src/keep.js"), not_sent_by_harness=("node_modules/keep.js",)),
    IgnoreCase("allowlist-any-depth", "*\n!**/package.json\n",
               ("package.json", "pkgs/a/package.json", "pkgs/a/index.js"),
               (*BUILD, "package.json", "pkgs/a/package.json"),
               not_sent_by_harness=(*BUILD, "pkgs/a/package.json")),
    IgnoreCase("reinclude-deep-dir", "*\n!**/src\n",
               ("src/a.ts", "pkgs/x/src/b.ts", "pkgs/x/other.ts"),
               (*BUILD, "pkgs/x/src/b.ts", "src/a.ts"),
               not_sent_by_harness=(*BUILD, "pkgs/x/src/b.ts", "src/a.ts")),
    # Current BuildKit does not re-apply `docs/private` below a re-included docs/private/x.md.
    IgnoreCase("exclude-after-reinclude", "docs\n!docs/**/*.md\ndocs/private\n",
               ("docs/a.md", "docs/private/x.md", "docs/private/y.txt", "docs/pub/z.md"),
               (*BUILD, "docs/a.md", "docs/private/x.md", "docs/pub/z.md"),
               not_sent_by_harness=("docs/private/x.md", "docs/pub/z.md")),
    # ... and 20.10 re-includes d/a.txt through its parent `!d`, where current BuildKit does not.
    IgnoreCase("reinclude-parent-of-excluded", "d/*.txt\n!d\n",
               ("d/a.txt", "d/b.js"),
               (*BUILD, "d/a.txt", "d/b.js")),
    # `**.log` is "ends with .log" in current BuildKit, a file named `.log` in 20.10.
    IgnoreCase("star-star-suffix", "**.log\n",
               ("a.log", "sub/b.log", ".log"),
               (*BUILD, "a.log", "sub/b.log")),
    # Glob syntax the SDK reads differently from Go (`[!a]` is "! or a" in Go): the ignore file is
    # not trusted, everything counts.
    IgnoreCase("unportable-class", "[!a]*\n",
               ("a.txt", "b.txt", "!x"),
               (*BUILD, "!x", "a.txt", "b.txt"), not_sent_by_harness=("!x", "a.txt")),
]


def make_context(root: Path, case: IgnoreCase) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for relative in case.tree:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(f"{relative}\n")
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / ".dockerignore").write_text(case.ignore)
    if case.id == "dockerfile-dockerignore":
        (root / ".dockerignore").write_text("b.txt\n")
        (root / "Dockerfile.dockerignore").write_text(case.ignore)
    return root


@pytest.mark.parametrize("case", IGNORE_CASES, ids=lambda case: case.id)
def test_dockerignore_rules(tmp_path: Path, case: IgnoreCase):
    assert context_files(make_context(tmp_path / "ctx", case)) == sorted(case.counted)


def test_editing_a_reincluded_file_rebuilds(tmp_path: Path):
    """Issue 10: with `src/*` + `!src/*.[jt]s`, an edit of src/app.ts shipped without a rebuild."""
    app = make_context(tmp_path / "ctx", IGNORE_CASES[0])
    first = context_digest(app, {})
    (app / "src/style.css").write_text("body {}\n")
    assert context_digest(app, {}) == first, "src/style.css is not sent"
    (app / "src/app.ts").write_text("export const v = 2\n")
    assert context_digest(app, {}) != first


def test_digest_follows_links_dirs_and_permission_bits_as_sent(tmp_path: Path):
    """COPY keeps symlinks as links, empty directories and permission bits: each changes the image."""
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "src/a.ts").write_text("a\n")
    (app / "current").symlink_to("src/a.ts")
    (app / "dangling").symlink_to("nowhere")  # sent as it is; must not break the digest
    digests = [context_digest(app, {})]
    (app / "current").unlink()
    (app / "current").symlink_to("src/b.ts")
    digests.append(context_digest(app, {}))
    (app / "uploads").mkdir()
    digests.append(context_digest(app, {}))
    (app / "src/a.ts").chmod(0o600)
    digests.append(context_digest(app, {}))
    assert len(set(digests)) == len(digests)
    assert "uploads" in context_entries(app)
    assert {"current", "dangling"} <= set(context_files(app))


def test_unportable_pattern_counts_everything(tmp_path: Path):
    app = make_context(tmp_path / "ctx", IgnoreCase("x", "node_modules\n[^a]*\n", ("node_modules/x.js",), ()))
    assert ignore_patterns(app) is None
    first = context_digest(app, {})
    (app / "node_modules/x.js").write_text("changed\n")
    assert context_digest(app, {}) != first


def test_bad_pattern_is_a_clear_error(tmp_path: Path):
    app = make_context(tmp_path / "ctx", IgnoreCase("x", "[z-a]\n", (), ()))
    with pytest.raises(ValueError, match=r"\.dockerignore: bad pattern '\[z-a\]'"):
        context_digest(app, {})


def test_no_ignore_file_counts_everything(tmp_path: Path):
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/c.txt").write_text("c\n")
    assert ignore_patterns(tmp_path) == []
    assert context_entries(tmp_path) == ["a", "a/b", "a/b/c.txt"]
    os.mkfifo(tmp_path / "pipe")  # nothing COPY can use, and reading it would block
    context_digest(tmp_path, {})


def test_an_unchanged_app_keeps_the_tag_the_previous_digest_gave_it(tmp_path: Path) -> None:
    # The digest before the maintained ignore rules: sorted files, "name\0<x bit>\0" + sha256 of
    # the content. Stacks built with it must not see a release just because the code changed.
    (tmp_path / "src").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / "src" / "app.ts").write_text("export {}\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "src" / "app.ts").chmod(0o644)
    (tmp_path / "Dockerfile").chmod(0o644)
    before = hashlib.sha256()
    for name, executable in (("Dockerfile", 0), ("run.sh", 1), ("src/app.ts", 0)):
        before.update(f"{name}\0{executable}\0".encode())
        before.update(hashlib.sha256((tmp_path / name).read_bytes()).digest())
    before.update(b"arg\0NODE_ENV\0production\0")
    before.update(b"target\0")
    assert context_digest(tmp_path, {"NODE_ENV": "production"}) == before.hexdigest()
