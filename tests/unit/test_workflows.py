"""The GitHub workflows pass actionlint (with shellcheck on their run: blocks), and the lint can fail.

actionlint comes from scripts/dev/install-actionlint.sh (built once from the Go module proxy,
cached outside the repo; scripts/dev/install-test-deps.sh runs it). When it or shellcheck is
missing these tests fail: a skipped lint would pass broken workflows.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))


@pytest.fixture(scope="module")
def actionlint() -> str:
    done = subprocess.run(
        [str(REPO / "scripts" / "dev" / "install-actionlint.sh")],
        capture_output=True, text=True, timeout=900, check=False,
    )
    path = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not Path(path).is_file():
        pytest.fail(
            "actionlint is not available: scripts/dev/install-actionlint.sh failed "
            f"(exit {done.returncode}); run scripts/dev/install-test-deps.sh (needs Go and the module proxy once)\n"
            f"{done.stderr[-2000:]}"
        )
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not on PATH, so actionlint would not check run: blocks; "
                    "run scripts/dev/install-test-deps.sh (Debian package shellcheck)")
    return path


def lint(actionlint: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint, "-no-color", *map(str, files)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_workflows_pass_actionlint(actionlint: str) -> None:
    assert {p.name for p in WORKFLOWS} >= {"deploy.yml", "preview.yml", "switch.yml"}
    done = lint(actionlint, *WORKFLOWS)
    assert done.returncode == 0, f"actionlint found problems:\n{done.stdout}{done.stderr}"


BROKEN = """\
name: broken
on:
  push:
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v6
        with:
          fetch-deepth: 1
      - run: echo "${{ github.event.no_such_thing.name }"
"""

SHELL_BUG = """\
name: shell
on:
  push:
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - run: |
          files=$(ls *.txt)
          for f in $files; do rm $f; done
"""


def test_actionlint_catches_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BROKEN)
    done = lint(actionlint, path)
    assert done.returncode != 0
    assert 'input "fetch-deepth" is not defined' in done.stdout
    assert "[expression]" in done.stdout  # the unterminated ${{ }}


def test_actionlint_runs_shellcheck_on_run_blocks(actionlint: str, tmp_path: Path) -> None:
    path = tmp_path / "shell.yml"
    path.write_text(SHELL_BUG)
    done = lint(actionlint, path)
    assert done.returncode != 0
    assert "shellcheck reported issue" in done.stdout, done.stdout


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return data


def test_stack_operations_are_serialized_and_never_cancelled() -> None:
    for name in ("deploy.yml", "switch.yml"):
        assert load(name)["concurrency"] == {"group": "pulumi-stack-production", "cancel-in-progress": False}


def test_every_stack_operation_starts_from_the_live_colors() -> None:
    # The checkout's Pulumi.production.yaml does not track the live color; a release computed
    # from it would redeploy the live color.
    sync = 'bin/bluegreen --stack "$STACK" rollback latest --config-only'
    for name, acting in (("deploy.yml", 'bin/bluegreen --stack "$STACK" release'), ("preview.yml", "pulumi preview"),
                         ("switch.yml", 'bin/bluegreen --stack "$STACK" switch')):
        runs = [str(step.get("run", "")) for step in _steps(load(name))]
        first_sync = next(i for i, run in enumerate(runs) if sync in run)
        first_action = next(i for i, run in enumerate(runs) if acting in run)
        assert first_sync < first_action, name


def test_the_pr_preview_runs_the_guard_policy_pack() -> None:
    # Without it a PR that would replace the router or a data service previews green.
    runs = [str(step.get("run", "")) for step in _steps(load("preview.yml"))]
    previews = [run for run in runs if "pulumi preview" in run]
    assert previews and all("--policy-pack policy" in run for run in previews)
    assert (REPO / "policy" / "PulumiPolicy.yaml").is_file()


def test_the_runner_reaches_the_host_only_with_the_pinned_host_key() -> None:
    for name in ("deploy.yml", "switch.yml"):
        text = (REPO / ".github" / "workflows" / name).read_text()
        assert "DEPLOY_SSH_KNOWN_HOSTS" in text and "StrictHostKeyChecking yes" in text, name
        assert "ssh-keyscan" not in text.split("jobs:", 1)[1], f"{name} trusts whatever key answers"


# --- the CI trust model (docs/ci-trust.md) ----------------------------------------------------
# Each checker returns the problems it finds in one workflow (an empty list: none). Every test
# runs its checker on the real workflows, which must pass, and on OLD_PREVIEW, the preview.yml
# of the security finding (PR code got the passphrase, the state write keys and the ssh key, and
# its raw output was posted), which must not: a checker that cannot fail proves nothing.

OLD_PREVIEW = """\
name: preview
on:
  pull_request:
permissions:
  contents: read
  pull-requests: write
jobs:
  preview:
    if: github.event.pull_request.head.repo.full_name == github.repository
    runs-on: ubuntu-latest
    env:
      PULUMI_BACKEND_URL: ${{ secrets.PULUMI_BACKEND_URL }}
      PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PULUMI_CONFIG_PASSPHRASE }}
      AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
      AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
    steps:
      - uses: actions/checkout@v6
      - uses: pulumi/actions@v6
      - name: SSH access to the Docker host
        env:
          SSH_KEY: ${{ secrets.DEPLOY_SSH_KEY }}
        run: printf '%s\\n' "$SSH_KEY" > ~/.ssh/id_ed25519
      - name: pulumi preview
        id: preview
        run: pulumi preview --diff --policy-pack policy --stack production > preview.txt 2>&1
      - name: Post or update the PR comment
        uses: actions/github-script@v8
        with:
          script: |
            const output = require('fs').readFileSync('preview.txt', 'utf8');
            await github.rest.issues.createComment({ ...context.repo, issue_number: 1, body: output });
"""

# The other classic hole: a privileged trigger that runs the pull request's head.
PRIVILEGED_HEAD_CHECKOUT = """\
name: bad
on:
  pull_request_target:
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af803 # v6.1.0
        with:
          ref: ${{ github.event.pull_request.head.sha }}
          persist-credentials: false
"""

# What a job started by a pull request may read: the `preview` environment's secrets, the
# backend ones read only. Never DEPLOY_SSH_KEY, never the production AWS keys.
PR_ALLOWED_SECRETS = {
    "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PREVIEW_AWS_ACCESS_KEY_ID", "PREVIEW_AWS_SECRET_ACCESS_KEY",
}
# Secrets only the `production` environment has (it is limited to main, docs/ci-trust.md).
PRODUCTION_ONLY_SECRETS = {
    "DEPLOY_SSH_KEY", "DEPLOY_SSH_KNOWN_HOSTS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "VERCEL_DEPLOY_HOOK_URL", "DEPLOY_WEBHOOK_URL",
}
PR_TRIGGERS = {"pull_request", "pull_request_target"}
PRIVILEGED_TRIGGERS = {"pull_request_target", "workflow_run"}
WRITE_SCOPES_FOR_COMMENTS = {"pull-requests", "issues"}

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<tag>\S+))?\s*$")
SHA_PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
SECRET_REF = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")
DYNAMIC_SECRETS = re.compile(r"secrets\s*\[|toJSON\(\s*secrets\s*\)|secrets:\s*inherit")


def _parse(text: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def triggers(workflow: dict[str, Any]) -> set[str]:
    on = workflow["on"] if "on" in workflow else workflow.get(True)  # type: ignore[call-overload]  # YAML 1.1: `on` is True
    if isinstance(on, str):
        return {on}
    return set(on or ())


def _jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = workflow.get("jobs") or {}
    return jobs


def _text(node: Any) -> str:
    return str(yaml.safe_dump(node, sort_keys=False))


def secrets_of(job: dict[str, Any]) -> set[str]:
    return set(SECRET_REF.findall(_text(job)))


def _is_checkout(step: dict[str, Any]) -> bool:
    return str(step.get("uses", "")).split("@", 1)[0] == "actions/checkout"


def unpinned_actions(text: str) -> list[str]:
    """Every non-local action is pinned to a full commit SHA, with the tag it is as a comment."""
    problems = []
    lines = [m for m in map(USES_LINE.match, text.splitlines()) if m]
    workflow = _parse(text)
    in_yaml = [str(s["uses"]) for job in _jobs(workflow).values() for s in job.get("steps", []) if "uses" in s]
    in_yaml += [str(job["uses"]) for job in _jobs(workflow).values() if "uses" in job]
    if sorted(m["ref"] for m in lines) != sorted(in_yaml):
        problems.append("a `uses:` is not written one per line as `uses: owner/repo@SHA # vX.Y.Z`")
    for match in lines:
        ref, tag = match["ref"], match["tag"]
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                problems.append(f"{ref}: a docker image not pinned by digest")
            continue
        if not SHA_PINNED.fullmatch(ref):
            problems.append(f"{ref}: not pinned to a 40-hex commit SHA")
        if not (tag and re.fullmatch(r"v\d+\.\d+\.\d+", tag)):
            problems.append(f"{ref}: no `# vX.Y.Z` comment naming the pinned release")
    return problems


def permission_problems(text: str) -> list[str]:
    """Top-level permissions grant nothing (or read only); every job says what it needs."""
    workflow, problems = _parse(text), []
    top = workflow.get("permissions", "missing")
    read_only = isinstance(top, dict) and all(v in ("read", "none") for v in top.values())
    if top != {} and not read_only:
        problems.append(f"top-level permissions must be {{}} or read only, not {top!r}")
    for name, job in _jobs(workflow).items():
        if "permissions" not in job:
            problems.append(f"job {name}: no explicit permissions")
    granted = [workflow.get("permissions"), *(job.get("permissions") for job in _jobs(workflow).values())]
    if "write-all" in granted:
        problems.append("write-all")
    return problems


def privileged_head_checkout_problems(text: str) -> list[str]:
    """No pull_request_target / workflow_run workflow checks out the pull request's code."""
    workflow = _parse(text)
    if not triggers(workflow) & PRIVILEGED_TRIGGERS:
        return []
    problems = []
    for name, job in _jobs(workflow).items():
        for step in job.get("steps", []):
            ref = str((step.get("with") or {}).get("ref", ""))
            run = str(step.get("run", ""))
            head = _is_checkout(step) and re.search(r"head|pull|merge", ref)
            if head or re.search(r"gh pr checkout|git fetch", run):
                problems.append(f"job {name}: checks out the pull request under {sorted(triggers(workflow))}")
    return problems


def pr_secret_problems(text: str) -> list[str]:
    """A job started by a pull request reads only the read-only preview secrets (never the ssh key)."""
    workflow = _parse(text)
    if not triggers(workflow) & PR_TRIGGERS:
        return []
    problems = []
    for name, job in _jobs(workflow).items():
        if DYNAMIC_SECRETS.search(_text(job)):
            problems.append(f"job {name}: reads secrets dynamically (secrets[...], toJSON(secrets), inherit)")
        for secret in sorted(secrets_of(job) - PR_ALLOWED_SECRETS):
            problems.append(f"job {name}: a pull request's code could read secrets.{secret}")
    return problems


def pr_environment_problems(text: str) -> list[str]:
    """A job started by a pull request that reads a secret (the passphrase) waits for approval in
    the `preview` environment."""
    workflow = _parse(text)
    if not triggers(workflow) & PR_TRIGGERS:
        return []
    return [f"job {name}: reads {sorted(secrets_of(job))} without environment: preview"
            for name, job in _jobs(workflow).items()
            if secrets_of(job) and job.get("environment") != "preview"]


def _comment_writers(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    writers = {}
    for name, job in _jobs(workflow).items():
        granted = job.get("permissions", workflow.get("permissions"))
        if granted == "write-all" or (isinstance(granted, dict) and any(
                granted.get(scope) == "write" for scope in WRITE_SCOPES_FOR_COMMENTS)):
            writers[name] = job
    return writers


def comment_writer_problems(text: str) -> list[str]:
    """The job that can write to the pull request has no secrets and runs none of its code."""
    problems = []
    for name, job in _comment_writers(_parse(text)).items():
        if secrets_of(job) or DYNAMIC_SECRETS.search(_text(job)):
            problems.append(f"job {name}: can write to the PR and reads {sorted(secrets_of(job))}")
        for step in job.get("steps", []):
            if _is_checkout(step):
                problems.append(f"job {name}: can write to the PR and checks out code")
            if "run" in step:
                problems.append(f"job {name}: can write to the PR and has a run: step ({step.get('name', '?')})")
    return problems


def raw_output_comment_problems(text: str) -> list[str]:
    """The comment is built from the validated summary only: the posting job reads no log or text
    file and no output string of a job that ran the pull request's code."""
    problems = []
    for name, job in _comment_writers(_parse(text)).items():
        body = _text(job.get("steps", []))
        if re.search(r"\.(txt|log|out)\b", body):
            problems.append(f"job {name}: reads a raw log file")
        if re.search(r"needs\.[\w-]+\.outputs|steps\.[\w-]+\.outputs", body):
            problems.append(f"job {name}: uses a step or job output as comment input")
        if "summary.json" not in body:
            problems.append(f"job {name}: does not build the comment from the summary artifact")
    return problems


def checkout_credential_problems(text: str) -> list[str]:
    """No checkout leaves the GITHUB_TOKEN in .git/config for later steps."""
    return [f"job {name}: actions/checkout without persist-credentials: false"
            for name, job in _jobs(_parse(text)).items()
            for step in job.get("steps", [])
            if _is_checkout(step) and (step.get("with") or {}).get("persist-credentials") is not False]


def production_secret_problems(text: str) -> list[str]:
    """The ssh key and the write credentials are read only by jobs in the `production` environment,
    in workflows no pull request starts."""
    workflow, problems = _parse(text), []
    for name, job in _jobs(workflow).items():
        used = secrets_of(job) & PRODUCTION_ONLY_SECRETS
        if used and (job.get("environment") != "production" or triggers(workflow) & PR_TRIGGERS):
            problems.append(f"job {name}: reads {sorted(used)} outside the production environment")
    return problems


CHECKERS = [
    unpinned_actions, permission_problems, pr_secret_problems, pr_environment_problems,
    comment_writer_problems, raw_output_comment_problems, checkout_credential_problems, production_secret_problems,
]


def _check_all(checker: Any) -> None:
    for path in WORKFLOWS:
        assert checker(path.read_text()) == [], path.name
    assert checker(OLD_PREVIEW), f"{checker.__name__} does not catch the old preview.yml"


def test_every_action_is_pinned_to_a_commit_sha() -> None:
    _check_all(unpinned_actions)


def test_every_job_has_least_privilege_permissions() -> None:
    _check_all(permission_problems)


def test_pull_request_jobs_read_only_the_read_only_preview_secrets() -> None:
    _check_all(pr_secret_problems)
    assert any("DEPLOY_SSH_KEY" in p for p in pr_secret_problems(OLD_PREVIEW))


def test_pull_request_jobs_with_the_passphrase_wait_for_approval() -> None:
    _check_all(pr_environment_problems)
    assert "PULUMI_CONFIG_PASSPHRASE" in secrets_of(_jobs(load("preview.yml"))["preview"])


def test_the_job_that_writes_the_comment_has_no_secrets_and_runs_no_pr_code() -> None:
    _check_all(comment_writer_problems)
    assert _comment_writers(load("preview.yml")), "preview.yml posts no comment any more"


def test_the_comment_is_not_built_from_raw_preview_output() -> None:
    _check_all(raw_output_comment_problems)


def test_every_checkout_drops_its_credentials() -> None:
    _check_all(checkout_credential_problems)


def test_production_secrets_stay_in_the_production_environment() -> None:
    _check_all(production_secret_problems)
    for name in ("deploy.yml", "switch.yml"):
        assert {job.get("environment") for job in _jobs(load(name)).values() if secrets_of(job) - {"GITHUB_TOKEN"}} == {
            "production"}, name


def test_no_privileged_trigger_checks_out_the_pull_request() -> None:
    for path in WORKFLOWS:
        assert privileged_head_checkout_problems(path.read_text()) == [], path.name
    assert privileged_head_checkout_problems(PRIVILEGED_HEAD_CHECKOUT)


def test_the_pr_preview_never_reaches_the_docker_host() -> None:
    # No ssh key in the job (above), so a refresh (it reads every container from the host) would
    # fail: the preview plans against the recorded state.
    text = (REPO / ".github" / "workflows" / "preview.yml").read_text()
    runs = [str(step.get("run", "")) for step in _steps(load("preview.yml"))]
    previews = [run for run in runs if "pulumi preview" in run]
    assert previews and all("--refresh=false" in run for run in previews)
    assert "~/.ssh" not in text and "DEPLOY_SSH" not in text.split("jobs:", 1)[1]


# --- the summary: numbers and known type tokens, and nothing else, reach the PR --------------

SECRET = "s3cr3t-" + "decrypted-value"


def _step(workflow: str, job: str, name: str) -> dict[str, Any]:
    return next(s for s in _jobs(load(workflow))[job]["steps"] if s.get("name") == name)


def _summarize(tmp_path: Path, plan: Any, exit_code: str = "0") -> dict[str, Any]:
    run = str(_step("preview.yml", "preview", "Summary for the PR comment")["run"])
    program = run.split("<<'PY'\n", 1)[1].rsplit("\nPY", 1)[0]
    (tmp_path / "preview.json").write_text(plan if isinstance(plan, str) else json.dumps(plan))
    done = subprocess.run(
        [sys.executable, "-", str(tmp_path / "preview.json")], input=program, capture_output=True, text=True,
        timeout=60, check=True,
        env={"KNOWN_TYPES": load("preview.yml")["env"]["KNOWN_TYPES"], "EXIT_CODE": exit_code, "PATH": "/usr/bin:/bin"},
    )
    assert SECRET not in done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


URN = "urn:pulumi:production::medusa-bluegreen::"
CONTAINER = "medusa-bluegreen:index:ColorStack$docker:index/container:Container"
PLAN = {
    "config": {"medusa-bluegreen:jwtSecret": SECRET},
    "steps": [
        {"op": "same", "urn": f"{URN}pulumi:pulumi:Stack::medusa-bluegreen-production"},
        {"op": "update", "urn": f"{URN}{CONTAINER}::green-server",
         "newState": {"inputs": {"x": SECRET}}},
        {"op": "replace", "urn": f"{URN}{CONTAINER}::green-worker"},
        {"op": "create-replacement", "urn": f"{URN}docker:index/container:Container::w"},
        {"op": "create", "urn": f"{URN}evil:index/{SECRET}:Thing::{SECRET}"},
        {"op": SECRET, "urn": f"{URN}command:local:Command::green-migrate"},
    ],
    "diagnostics": [{"message": f"print: {SECRET}", "severity": "info"}],
    "changeSummary": {"same": 30, "update": 1, "replace": 1, "create": 1, SECRET: 2},
}


def test_the_summary_keeps_counts_and_known_types_only(tmp_path: Path) -> None:
    summary = _summarize(tmp_path, PLAN)
    assert summary == {
        "schema": 1, "exit_code": 0, "plan_read": True,
        "totals": {"same": 30, "update": 1, "replace": 1, "create": 1, "other": 2},
        "by_type": {"docker:index/container:Container": {"update": 1, "replace": 1}, "other": {"create": 1},
                    "command:local:Command": {"other": 1}},
    }
    broken = _summarize(tmp_path, f"error: {SECRET}", exit_code="255")
    assert broken == {"schema": 1, "exit_code": 255, "plan_read": False, "totals": {}, "by_type": {}}


NODE_HARNESS = r"""
const fs = require('fs');
const script = fs.readFileSync(process.argv[2], 'utf8');
const posted = [];
const github = {
  paginate: async () => [],
  rest: { issues: { listComments: () => null, createComment: async (a) => posted.push(a.body),
                    updateComment: async (a) => posted.push(a.body) } },
};
const context = {
  payload: { pull_request: { head: { sha: 'a'.repeat(40) } } }, serverUrl: 'https://github.com',
  repo: { owner: 'o', repo: 'r' }, runId: 7, issue: { number: 3 },
};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('require', 'github', 'context', script)(require, github, context)
  .then(() => process.stdout.write(JSON.stringify(posted)))
  .catch((error) => { console.error(error); process.exit(1); });
"""


def _comment(tmp_path: Path, artifact: str | None) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH, so the PR comment script (JavaScript for actions/github-script) "
                    "cannot be tested; install Node.js")
    step = _step("preview.yml", "comment", "Post or update the PR comment")
    (tmp_path / "script.js").write_text(step["with"]["script"])
    (tmp_path / "harness.js").write_text(NODE_HARNESS)
    summary = tmp_path / "summary.json"
    if artifact is not None:
        summary.write_text(artifact)
    env = {"PATH": "/usr/bin:/bin", "STACK": "production", "KNOWN_TYPES": load("preview.yml")["env"]["KNOWN_TYPES"],
           "SUMMARY": str(summary), "PREVIEW_RESULT": "success"}
    done = subprocess.run([node, str(tmp_path / "harness.js"), str(tmp_path / "script.js")], capture_output=True,
                          text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    (body,) = json.loads(done.stdout)
    assert isinstance(body, str)
    return body


def test_the_comment_shows_the_validated_counts(tmp_path: Path) -> None:
    body = _comment(tmp_path, json.dumps(_summarize(tmp_path, PLAN)))
    assert body.startswith("<!-- medusa-bluegreen preview production -->")
    assert "succeeded at aaaaaaa" in body
    assert "| `docker:index/container:Container` | 0 | 1 | 1 | 0 | 0 | 0 | 0 |" in body
    assert "https://github.com/o/r/actions/runs/7" in body


@pytest.mark.parametrize("artifact", [
    json.dumps({"schema": 1, "exit_code": 0, "plan_read": True, "totals": {}, "by_type": {}, "note": SECRET}),
    json.dumps({"schema": 1, "exit_code": 0, "plan_read": True, "totals": {},
                "by_type": {f"x:{SECRET}:Y": {"create": 1}}}),
    json.dumps({"schema": 1, "exit_code": 0, "plan_read": True, "totals": {SECRET: 1}, "by_type": {}}),
    json.dumps({"schema": 1, "exit_code": SECRET, "plan_read": True, "totals": {}, "by_type": {}}),
    json.dumps({"schema": 1, "exit_code": 0, "plan_read": True, "totals": {"create": 1.5}, "by_type": {}}),
    f"preview output: {SECRET}",
    None,
])
def test_the_comment_rejects_anything_but_the_summary(tmp_path: Path, artifact: str | None) -> None:
    body = _comment(tmp_path, artifact)
    assert SECRET not in body
    assert "did not produce a valid summary" in body
