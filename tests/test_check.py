"""`shipforge check`: drift, linting of generated and hand-written files, and its outputs.

The full linter set (checkov included, a few seconds) runs once per repository through module
fixtures; the drift tests run with --no-lint. Reports are read as JSON, and every SARIF log is
validated against the official SARIF 2.1.0 schema (tests/fixtures/check).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from generator import lint
from generator.check import Options, discover, format_json, format_text, run_check
from generator.cli import app
from generator.sarif import format_sarif
from tests.conftest import EXAMPLES, ROOT, generate_tree
from tests.toolcheck import require

EXAMPLE = EXAMPLES[0]
SARIF_SCHEMA = Path(__file__).parent / "fixtures" / "check" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module", autouse=True)
def tools_dir() -> Iterator[None]:
    """checkov and the npm tools live in the repository's tool folders, not on PATH."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPFORGE_TOOLS_DIR", str(ROOT))
        yield


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.stdout, result.stderr


def check_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run("check", *args, "--format", "json")
    assert err == "", err
    return code, json.loads(out)


def require_all_ran(report: dict[str, Any]) -> None:
    """Every linter that applied ran: locally a missing one skips, under CI it fails."""
    missing = [f"{t['name']}: {t['skipped_reason']}" for t in report["tools"] if not t["ran"]]
    if missing and os.environ.get("CI"):
        pytest.fail(f"linters did not run under CI: {missing}")
    if missing:
        pytest.skip(f"linters not installed: {missing}")


def codes(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(p["source"], p["code"], p["path"]) for p in report["problems"] if p["failing"]}


def validate_sarif(text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    schema = json.loads(SARIF_SCHEMA.read_text())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
    assert not errors, errors
    return log


# --- fresh output --------------------------------------------------------------------------


def with_sources(repo: Path) -> Path:
    """The lockfiles each generated Dockerfile copies, as the application's own repository has."""
    from generator.loader import load

    for image in load(repo / "shipforge.yaml").dockerfiles:
        for name in image.lockfiles:
            (repo / image.path).mkdir(parents=True, exist_ok=True)
            (repo / image.path / name).touch()
    return repo


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Example 01 generated into a repository: descriptor, output and manifest."""
    repo = tmp_path_factory.mktemp("fresh")
    shutil.copy(EXAMPLE / "shipforge.yaml", repo / "shipforge.yaml")
    return with_sources(generate_tree(repo / "shipforge.yaml", repo))


@pytest.fixture(scope="module")
def fresh_report(fresh: Path) -> tuple[bool, dict[str, Any], str]:
    """One full check (every linter, checkov included) of the fresh output, in each format."""
    report = run_check(fresh, fresh / "shipforge.yaml", Options())
    return report.ok, json.loads(format_json(report)), format_sarif(report)


def test_fresh_output_passes_every_linter(fresh_report: tuple[bool, dict[str, Any], str]) -> None:
    ok, report, _ = fresh_report
    require_all_ran(report)
    assert report["problems"] == [] and ok and report["ok"]
    assert report["descriptor"] == "shipforge.yaml"
    assert report["descriptor_status"] == "valid (2 services)"
    ran = {t["tool"] for t in report["tools"]}
    assert {"hadolint", "checkov", "docker-compose", "check-jsonschema", "yamllint"} <= ran
    assert {"dotenv-linter", "detect-secrets"} <= ran


def test_fresh_sarif_is_valid_and_empty(fresh_report: tuple[bool, dict[str, Any], str]) -> None:
    log = validate_sarif(fresh_report[2])
    (run_,) = log["runs"]
    assert run_["tool"]["driver"]["name"] == "shipforge" and run_["results"] == []
    assert run_["invocations"][0]["executionSuccessful"] is True


# --- drift ---------------------------------------------------------------------------------


@pytest.fixture
def repo(fresh: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(fresh, copy)
    return copy


def test_a_descriptor_change_is_drift_naming_each_file(repo: Path) -> None:
    descriptor = repo / "shipforge.yaml"
    descriptor.write_text(descriptor.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    code, out, _ = run("check", str(repo), "--no-lint")
    assert code == 1
    assert "compose.yaml: shipforge drift-stale:" in out
    assert "run `shipforge generate`" in out
    assert "Dockerfile" not in out.split("findings:")[1], "the Dockerfile did not change"
    assert out.rstrip().endswith("(exit 1)")


def test_a_deleted_generated_file_is_missing(repo: Path) -> None:
    (repo / "Dockerfile").unlink()
    code, report = check_json(str(repo), "--no-lint")
    assert code == 1 and ("shipforge", "drift-missing", "Dockerfile") in codes(report)


def test_an_edit_is_reported_not_failed_unless_strict(repo: Path) -> None:
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# our own note\n")
    code, out, _ = run("check", str(repo), "--no-lint")
    assert code == 0
    assert "Dockerfile: shipforge drift-edited (not a failure): edited since shipforge" in out
    assert "1 edited" in out
    code, report = check_json(str(repo), "--no-lint", "--strict")
    assert code == 1 and ("shipforge", "drift-edited", "Dockerfile") in codes(report)


def test_without_a_manifest_a_difference_cannot_be_called_an_edit(repo: Path) -> None:
    shutil.rmtree(repo / ".shipforge")
    compose = repo / "compose.yaml"
    compose.write_text(compose.read_text().replace('"info"', '"warning"'))
    code, report = check_json(str(repo), "--no-lint")
    assert code == 1 and ("shipforge", "drift-unrecorded", "compose.yaml") in codes(report)


def test_a_file_no_longer_generated_is_obsolete(repo: Path) -> None:
    descriptor = repo / "shipforge.yaml"
    descriptor.write_text(descriptor.read_text().replace("compose: true", "compose: false"))
    code, report = check_json(str(repo), "--no-lint")
    assert code == 1
    assert ("shipforge", "drift-obsolete", "compose.production.yaml") in codes(report)


def test_output_written_elsewhere_is_compared_with_its_manifest(repo: Path) -> None:
    """`shipforge generate --out DIR` leaves the descriptor elsewhere: DIR still has a manifest."""
    (repo / "shipforge.yaml").unlink()
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# ours\n")
    (repo / "compose.yaml").unlink()
    code, out, _ = run("check", str(repo), "--no-lint")
    assert code == 1
    assert "compose.yaml: shipforge drift-missing: recorded in .shipforge/manifest.json" in out
    assert "Dockerfile: shipforge drift-edited (not a failure)" in out
    assert "pass --descriptor" in out
    code, out, _ = run(
        "check", str(repo), "--no-lint", "--descriptor", str(EXAMPLE / "shipforge.yaml")
    )
    assert code == 1 and "compose.yaml: shipforge drift-missing: generated by the descriptor" in out


def test_an_invalid_descriptor_fails_with_its_place(repo: Path) -> None:
    descriptor = repo / "shipforge.yaml"
    descriptor.write_text(descriptor.read_text().replace("port: 8000", "port: 80000"))
    code, out, _ = run("check", str(repo), "--no-lint")
    assert code == 1
    assert "shipforge.yaml:15: shipforge invalid-descriptor: services.api.port:" in out


# --- hand-written files, no descriptor -----------------------------------------------------

BAD_DOCKERFILE = """\
FROM python:latest
ADD . /app
RUN pip install -r /app/requirements.txt
CMD python /app/main.py
"""
BAD_WORKFLOW = """\
name: ci
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
      - run: echo "${{ github.event.head_commit.message }}"
"""
BAD_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: "two"
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
          imagePullPolicy: Sometimes
"""


@pytest.fixture(scope="module")
def handwritten(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with hand-written deployment files, each with known problems."""
    repo = tmp_path_factory.mktemp("handwritten")
    (repo / "my app").mkdir()
    (repo / "my app" / "Dockerfile").write_text(BAD_DOCKERFILE)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(BAD_WORKFLOW)
    (repo / "k8s").mkdir()
    (repo / "k8s" / "deployment.yaml").write_text(BAD_DEPLOYMENT)
    (repo / "deploy.sh").write_text("#!/bin/sh\nrm -rf $1/cache\n")
    (repo / ".env.example").write_text("export API_KEY=\n")
    (repo / "infra").mkdir()
    (repo / "infra" / "main.tf").write_text('variable "region" {\ndefault="eu-west-1"\n}\n')
    (repo / "node_modules" / "x").mkdir(parents=True)
    (repo / "node_modules" / "x" / "Dockerfile").write_text("FROM scratch\n")
    return repo


@pytest.fixture(scope="module")
def handwritten_report(handwritten: Path) -> tuple[bool, dict[str, Any], str]:
    """One full check of the hand-written repository (no descriptor: lint only)."""
    report = run_check(handwritten, None, Options())
    assert report.notes == ["no shipforge.yaml: linting the deployment files only"]
    return report.ok, json.loads(format_json(report)), format_sarif(report)


def test_handwritten_files_are_linted_by_their_tools(
    handwritten_report: tuple[bool, dict[str, Any], str],
) -> None:
    ok, report, _ = handwritten_report
    assert not ok
    require_all_ran(report)
    found = codes(report)
    expected = {
        ("hadolint", "DL3007", "my app/Dockerfile"),
        ("hadolint", "DL3020", "my app/Dockerfile"),
        ("checkov", "CKV_DOCKER_3", "my app/Dockerfile"),
        ("zizmor", "template-injection", ".github/workflows/ci.yml"),
        ("actionlint", "expression", ".github/workflows/ci.yml"),
        (
            "check-jsonschema",
            "custom.github-workflows-require-timeout",
            ".github/workflows/ci.yml",
        ),
        ("checkov", "CKV_GHA_2", ".github/workflows/ci.yml"),
        ("kubernetes-validate", "invalid", "k8s/deployment.yaml"),
        ("shellcheck", "SC2086", "deploy.sh"),
        ("dotenv-linter", "001", ".env.example"),
        ("terraform-fmt", "fmt", "infra/main.tf"),
    }
    assert expected <= found, sorted(expected - found)
    assert not any("node_modules" in path for _, _, path in found)
    assert report["descriptor"] == "" and not report["drift"]


def test_handwritten_sarif_is_valid_with_locations(
    handwritten_report: tuple[bool, dict[str, Any], str],
) -> None:
    log = validate_sarif(handwritten_report[2])
    (run_,) = log["runs"]
    rules = {rule["id"]: rule for rule in run_["tool"]["driver"]["rules"]}
    assert rules["hadolint/DL3007"]["helpUri"].endswith("/DL3007")
    latest = next(r for r in run_["results"] if r["ruleId"] == "hadolint/DL3007")
    assert run_["tool"]["driver"]["rules"][latest["ruleIndex"]]["id"] == "hadolint/DL3007"
    (location,) = latest["locations"]
    artifact = location["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "my%20app/Dockerfile", "uriBaseId": "%SRCROOT%"}
    assert location["physicalLocation"]["region"] == {"startLine": 1}
    assert latest["level"] == "warning"
    assert all(r["locations"] for r in run_["results"])


@pytest.fixture
def bad_dockerfile(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text(BAD_DOCKERFILE)
    return repo


def test_the_command_line_reports_and_exits_1(bad_dockerfile: Path) -> None:
    code, out, _ = run("check", str(bad_dockerfile), "--skip", "checkov")
    assert code == 1
    assert "Dockerfile:1: hadolint DL3007: [warning] Using latest" in out
    assert "checkov" in out and "skipped: skipped with --skip" in out
    assert out.rstrip().endswith("problem(s) (exit 1)")


def test_skipped_tools_are_notifications_in_sarif(bad_dockerfile: Path) -> None:
    sarif = bad_dockerfile / "out" / "report.sarif"
    code, out, _ = run(
        "check", str(bad_dockerfile), "--skip", "checkov", "--format", "sarif", "-o", str(sarif)
    )
    assert code == 1 and "hadolint DL3007" in out, "the text report still prints"
    log = validate_sarif(sarif.read_text())
    notes = log["runs"][0]["invocations"][0]["toolConfigurationNotifications"]
    assert notes[0]["message"]["text"] == "checkov did not run: skipped with --skip"


def test_a_missing_tool_is_skipped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    real = lint.find_tool
    monkeypatch.setattr(lint, "find_tool", lambda name: None if name == "hadolint" else real(name))
    report = run_check(tmp_path, None, Options(skip=("checkov",)))
    (hadolint,) = [t for t in report.tools if t.tool == "hadolint"]
    assert not hadolint.ran and "hadolint not installed" in hadolint.skipped_reason
    assert "shipforge[lint]" in hadolint.skipped_reason
    strict = run_check(tmp_path, None, Options(skip=("checkov",), require_tools=True))
    assert any(p.code == "tool-skipped" for p in strict.failures)


def test_an_empty_repository_is_not_a_pass(tmp_path: Path) -> None:
    code, out, _ = run("check", str(tmp_path))
    assert code == 1 and "found no shipforge.yaml and no deployment file" in out


def test_gitlab_code_quality_report(bad_dockerfile: Path) -> None:
    target = bad_dockerfile / "quality.json"
    code, _, _ = run(
        "check", str(bad_dockerfile), "--skip", "checkov", "--format", "gitlab", "-o", str(target)
    )
    issues = json.loads(target.read_text())
    assert code == 1 and issues
    for issue in issues:
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert issue["location"]["path"] == "Dockerfile"
        assert issue["location"]["lines"]["begin"] >= 1
    assert len({i["fingerprint"] for i in issues}) == len(issues)


HOSTILE = """\
version: 1
project:
  name: hostile
  description: "quotes \\" and ${{ github.token }} and {{ x }} and $(id)\\nnewline"
services:
  api:
    runtime: python
    command: "uvicorn app:app --host 0.0.0.0 --port 8000 --root-path '${{ x }}'"
    port: 8000
    env:
      MODE: "on"
      PERMS: "0755"
      TEMPLATE: "{{ x }} {% raw %} `id`"
      QUOTED: "it's \\"quoted\\" # not a comment"
      NEWLINE: "a\\nb"
    secrets: [API_TOKEN]
    release: "python -c 'print(1)' # $(id)"
"""


def hostile_repo(root: Path, extra_env: str = "") -> Path:
    root.mkdir()
    (root / "shipforge.yaml").write_text(
        HOSTILE.replace("    secrets:", extra_env + "    secrets:")
    )
    return with_sources(generate_tree(root / "shipforge.yaml", root))


def test_fresh_output_of_hostile_values_passes(tmp_path: Path) -> None:
    repo = hostile_repo(tmp_path / "repo")
    report = run_check(repo, repo / "shipforge.yaml", Options(skip=("checkov",)))
    assert report.ok, format_text(report)
    assert validate_sarif(format_sarif(report))["runs"][0]["results"] == []


def test_an_env_value_with_a_dollar_survives_compose(tmp_path: Path) -> None:
    repo = hostile_repo(tmp_path / "repo", '      DOLLAR: "${{ y }} $(id)"\n')
    report = run_check(repo, repo / "shipforge.yaml", Options(skip=("checkov",)))
    assert report.ok, format_text(report)


# --- discovery -----------------------------------------------------------------------------


def test_discovery_names_each_kind_of_deployment_file(tmp_path: Path) -> None:
    files = {
        "Dockerfile.worker": "FROM scratch\n",
        "services/api/Containerfile": "FROM scratch\n",
        "docker-compose.override.yml": "services: {}\n",
        "compose.prod.yaml": "services: {}\n",
        ".github/workflows/release.yaml": "on: push\n",
        "action.yml": "name: x\n",
        "ci/deploy.gitlab-ci.yml": "job: {script: [x]}\n",
        ".gitlab-ci.yml": "job: {script: [x]}\n",
        "deploy/app.yaml": "apiVersion: v1\nkind: Service\n---\napiVersion: v1\nkind: ConfigMap\n",
        "deploy/values.yaml": "replicas: 2\n",
        "k8s/base/kustomization.yaml": "resources: [app.yaml]\n",
        "k8s/base/app.yaml": "apiVersion: v1\nkind: Service\n",
        "k8s/prod/kustomization.yaml": "resources: [../base]\n",
        "k8s/prod/patch.yaml": "kind: Deployment\n",
        "chart/Chart.yaml": "name: x\n",
        "chart/templates/app.yaml": "{{ .Values.x }}\n",
        "infra/main.tf": "",
        "infra/modules/db/main.tf": "",
        "scripts/deploy.sh": "echo\n",
        ".env.production.example": "A=\n",
        "app.env.sample": "A=\n",
        ".env": "SECRET=1\n",
        "monitoring/prometheus.yml": "scrape_configs: []\n",
        "monitoring/alerts.yml": "groups: [{name: a, rules: []}]\n",
        "monitoring/alerts.test.yml": "rule_files: [alerts.yml]\ntests: []\n",
        "node_modules/pkg/Dockerfile": "FROM scratch\n",
        ".venv/lib/compose.yaml": "services: {}\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    run_script = tmp_path / "bin" / "run"
    run_script.parent.mkdir()
    run_script.write_text("#!/usr/bin/env bash\necho\n")
    run_script.chmod(0o755)
    found = discover(tmp_path)
    assert found.dockerfiles == ["Dockerfile.worker", "services/api/Containerfile"]
    assert found.compose == ["compose.prod.yaml", "docker-compose.override.yml"]
    assert found.workflows == [".github/workflows/release.yaml"]
    assert found.actions == ["action.yml"]
    assert found.gitlab == [".gitlab-ci.yml", "ci/deploy.gitlab-ci.yml"]
    assert found.kubernetes == ["deploy/app.yaml"]
    assert found.kustomizations == ["k8s/prod"], "the base is built through its overlay"
    assert "k8s/prod/patch.yaml" in found.kustomize_files
    assert found.helm_charts == ["chart"]
    assert found.terraform_dirs == ["infra"]
    assert found.shell == ["bin/run", "scripts/deploy.sh"]
    assert found.env_examples == [".env.production.example", "app.env.sample"]
    assert found.prometheus_configs == ["monitoring/prometheus.yml"]
    assert found.prometheus_rules == ["monitoring/alerts.yml"]
    assert found.prometheus_tests == ["monitoring/alerts.test.yml"]
    assert discover(tmp_path, exclude=("infra",)).terraform == []


def test_check_is_deterministic(fresh: Path) -> None:
    first = run("check", str(fresh), "--no-lint", "--format", "sarif")[1]
    assert first == run("check", str(fresh), "--no-lint", "--format", "sarif")[1]


# --- use in other people's CI --------------------------------------------------------------

CI_TEMPLATES = ROOT / "docs" / "ci-templates"
GITHUB_SAMPLE = CI_TEMPLATES / "shipforge-check.github-workflow.yml"
GITLAB_TEMPLATE = CI_TEMPLATES / "shipforge-check.gitlab-ci.yml"


def lint_pins() -> list[str]:
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins: list[str] = data["project"]["optional-dependencies"]["lint"]
    return pins


def test_the_action_passes_its_linters() -> None:
    action = str(ROOT / "action.yml")
    require(lint.check_jsonschema([action], "vendor.github-actions"))
    require(lint.zizmor([action]))
    require(lint.yamllint([action]))


def test_the_action_scripts_pass_shellcheck(tmp_path: Path) -> None:
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    scripts = []
    for index, step in enumerate(action["runs"]["steps"]):
        if "run" in step:
            assert step["shell"] == "bash" and "${{" not in step["run"], step["name"]
            script = tmp_path / f"step-{index}.sh"
            # GitHub runs `bash -e -o pipefail` for `shell: bash`.
            script.write_text("#!/bin/bash\nset -eo pipefail\n" + step["run"])
            scripts.append(script)
    assert len(scripts) == 3
    require(lint.shellcheck(scripts))


def test_the_sample_workflow_passes_every_workflow_linter(tmp_path: Path) -> None:
    sample = str(GITHUB_SAMPLE)
    require(lint.actionlint([sample]))
    require(lint.zizmor([sample]))
    require(lint.check_jsonschema([sample], "vendor.github-workflows"))
    require(lint.check_jsonschema([sample], "custom.github-workflows-require-timeout"))
    require(lint.yamllint([sample]))
    # checkov reads workflows and GitLab pipelines only where they live in a repository.
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(GITHUB_SAMPLE, tmp_path / ".github" / "workflows" / "shipforge-check.yml")
    shutil.copy(GITLAB_TEMPLATE, tmp_path / ".gitlab-ci.yml")
    require(
        lint.checkov(
            [
                str(tmp_path / ".github/workflows/shipforge-check.yml"),
                str(tmp_path / ".gitlab-ci.yml"),
            ],
            ["github_actions", "gitlab_ci", "secrets"],
        )
    )


def test_the_gitlab_template_passes_its_linters() -> None:
    require(lint.check_jsonschema([str(GITLAB_TEMPLATE)], "vendor.gitlab-ci"))
    require(lint.yamllint([str(GITLAB_TEMPLATE)]))


def test_installers_use_the_same_pins() -> None:
    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["additional_dependencies"] == lint_pins(), "the [lint] extra, pin for pin"
    checkov_pin = next(
        line.split('"')[1]
        for line in (ROOT / "tests" / "install-tools.sh").read_text().splitlines()
        if line.startswith("CHECKOV_PIN=")
    )
    assert checkov_pin in (ROOT / "action.yml").read_text()
    assert checkov_pin in GITLAB_TEMPLATE.read_text()


def test_the_pre_commit_hooks_run_check_on_deployment_files() -> None:
    import re

    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"shipforge-check", "shipforge-check-system"}
    for hook in hooks.values():
        # The staged files are linted, and a linter that is not installed fails the hook.
        assert hook["entry"] == "shipforge check --files" and hook["pass_filenames"] is True
        assert hook["args"] == ["--require-tools", "--skip", "checkov"]
    assert hooks["shipforge-check"]["language"] == "python"
    assert hooks["shipforge-check-system"]["language"] == "system"
    files = re.compile(hooks["shipforge-check"]["files"])
    matching = [
        "shipforge.yaml", "Dockerfile", "api/Dockerfile.worker", "compose.production.yaml",
        ".github/workflows/ci.yml", ".gitlab-ci.yml", "k8s/base/deployment.yaml",
        "infra/main.tf", "scripts/deploy.sh", ".env.production.example", "action.yml",
        "monitoring/alerts.yml", ".shipforge/manifest.json",
    ]  # fmt: skip
    assert [p for p in matching if not files.search(p)] == []
    assert [p for p in ("README.md", "src/app.py", "package.json") if files.search(p)] == []


def gitlab_ci_local(repo: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    tool = lint.find_tool("gitlab-ci-local")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("gitlab-ci-local is not installed (tests/install-tools.sh)")
        pytest.skip("gitlab-ci-local is not installed")
    (repo / "ci").mkdir(parents=True)
    shutil.copy(GITLAB_TEMPLATE, repo / "ci" / "shipforge-check.gitlab-ci.yml")
    (repo / ".gitlab-ci.yml").write_text(
        "include:\n  - local: ci/shipforge-check.gitlab-ci.yml\nstages: [test]\n"
    )
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    arguments = [item for v in variables for item in ("--variable", v)]
    return subprocess.run(
        [tool, "--force-shell-executor", *arguments, "shipforge-check"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def test_the_gitlab_template_fails_loudly_without_its_package(tmp_path: Path) -> None:
    result = gitlab_ci_local(tmp_path / "repo")
    assert result.returncode == 1
    assert "SHIPFORGE_PACKAGE is not set" in result.stdout + result.stderr


@pytest.mark.slow
def test_the_gitlab_template_installs_and_runs_check(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text(BAD_DOCKERFILE)
    result = gitlab_ci_local(
        repo,
        f"SHIPFORGE_PACKAGE={ROOT}[lint]",
        "SHIPFORGE_CHECK_ARGS=--exclude .gitlab-ci-local",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Dockerfile:1: hadolint DL3007" in output
    assert "ci/shipforge-check.gitlab-ci.yml" not in output, "the template itself is clean"
    report = json.loads((repo / "gl-code-quality-report.json").read_text())
    assert {issue["check_name"] for issue in report} >= {"hadolint/DL3007"}


def test_pre_commit_mode_lints_only_the_files_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:latest\n")
    (tmp_path / "other.Dockerfile").write_text("FROM python:latest\n")
    (tmp_path / "deploy.sh").write_text("#!/bin/sh\necho $1\n")
    monkeypatch.chdir(tmp_path)
    code, report = check_json("--files", "--skip", "checkov", "Dockerfile", "./deploy.sh")
    linted = {f for t in report["tools"] for f in t["files"]}
    assert linted == {"Dockerfile", "deploy.sh"}, "other.Dockerfile was not staged"
    require_all_ran({"tools": [t for t in report["tools"] if t["tool"] != "checkov"]})
    assert code == 1 and {p["path"] for p in report["problems"]} == {"Dockerfile", "deploy.sh"}


def test_skip_values_are_checked_with_a_suggestion(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path), "--skip", "chekov")
    assert code == 2 and "did you mean 'checkov'" in err
    code, _, _ = run("check", str(tmp_path), "--skip", "dotenv-linter (generated)", "--no-lint")
    assert code != 2


def test_missing_linters_fail_under_ci_and_warn_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setattr(lint, "find_tool", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    code, report = check_json(str(tmp_path), "--skip", "checkov", "--skip", "hadolint")
    # Every linter that applied was missing or skipped: nothing was linted, which fails.
    assert code == 1 and [p["code"] for p in report["problems"]].count("nothing-linted") == 1
    code, report = check_json(str(tmp_path), "--skip", "checkov")
    assert {p["code"]: p["failing"] for p in report["problems"]}["tool-missing"] is False
    monkeypatch.setenv("CI", "true")
    code, report = check_json(str(tmp_path), "--skip", "checkov")
    assert code == 1 and any(p["code"] == "tool-skipped" for p in report["problems"])
    hint = next(
        t["skipped_reason"] for t in report["tools"] if not t["ran"] and t["tool"] != "checkov"
    )
    assert "pipx install" in hint and "uv tool install" in hint and "pip install" in hint


def test_a_dockerfile_whose_lockfile_is_missing_cannot_pass(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE / "shipforge.yaml", tmp_path / "shipforge.yaml")
    repo = generate_tree(tmp_path / "shipforge.yaml", tmp_path)
    code, report = check_json(str(repo), "--no-lint")
    missing = [p for p in report["problems"] if p["code"] == "build-context"]
    assert code == 1 and missing and all(p["failing"] for p in missing)
    assert "COPY" in missing[0]["message"] and missing[0]["path"].endswith("Dockerfile")
    code, _, err = run("validate", str(repo / "shipforge.yaml"))
    assert code == 0 and "warning:" in err and "would fail" in err
    with_sources(repo)
    code, report = check_json(str(repo), "--no-lint")
    assert code == 0 and not [p for p in report["problems"] if p["code"] == "build-context"]


YARN_DESCRIPTOR = """\
version: 1
project: {name: shop}
services:
  web:
    runtime: node
    package_manager: yarn
    command: node server.js
    port: 3000
    release: yarn dlx prisma migrate deploy
targets: {docker: true}
"""


def test_a_yarn_command_the_projects_yarn_major_lacks_is_reported(tmp_path: Path) -> None:
    (tmp_path / "shipforge.yaml").write_text(YARN_DESCRIPTOR)
    (tmp_path / "package.json").write_text('{"name": "shop", "private": true}\n')
    (tmp_path / "yarn.lock").write_text("# THIS IS AN AUTOGENERATED FILE.\n# yarn lockfile v1\n")
    code, _, err = run("validate", str(tmp_path / "shipforge.yaml"))
    assert code == 0 and "warning: yarn.lock: services.web.release runs `yarn dlx`" in err
    assert "Yarn 1 does not have" in err
    code, report = check_json(str(tmp_path), "--no-lint")
    (problem,) = [p for p in report["problems"] if p["code"] == "yarn-major"]
    assert code == 1 and problem["failing"] and problem["path"] == "yarn.lock"

    # Yarn 4 has `yarn dlx`, but installs with Plug'n'Play unless .yarnrc.yml says otherwise,
    # and then `node server.js` finds no dependency.
    (tmp_path / "package.json").write_text('{"name": "shop", "packageManager": "yarn@4.18.1"}\n')
    code, report = check_json(str(tmp_path), "--no-lint")
    (problem,) = [p for p in report["problems"] if p["code"] == "yarn-major"]
    assert "services.web.command runs `node` directly" in problem["message"]
    assert problem["path"] == "package.json"
    (tmp_path / ".yarnrc.yml").write_text("nodeLinker: node-modules\n")
    code, report = check_json(str(tmp_path), "--no-lint")
    assert not [p for p in report["problems"] if p["code"] == "yarn-major"]


def test_detect_secrets_scans_the_descriptor_and_what_differs_from_its_render(
    repo: Path,
) -> None:
    def scanned(*args: str) -> tuple[list[str], list[dict[str, Any]]]:
        _, report = check_json(*args, "--skip", "checkov")
        (job,) = [t for t in report["tools"] if t["tool"] == "detect-secrets"]
        if not job["ran"]:
            pytest.skip(f"detect-secrets: {job['skipped_reason']}")
        found = [p for p in report["problems"] if p["path"] and p["code"].endswith("Key")]
        return sorted(job["files"]), found

    files, _ = scanned(str(repo))
    # The render of the descriptor holds only values of the descriptor: scanning it is enough.
    assert "shipforge.yaml" in files and "compose.yaml" not in files and "Dockerfile" not in files
    # A generated file that now differs from the render is the repository's: scanned again.
    key = "AKIA" + "Q3EGRJ5TYNZ7WBXM"  # built here, so no key-shaped string is committed
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + f"ENV AWS_ACCESS_KEY_ID={key}\n")
    files, found = scanned(str(repo))
    assert "Dockerfile" in files and [p["path"] for p in found] == ["Dockerfile"]
    # Without the descriptor, clean means "matches the manifest", which a pull request can
    # rewrite with the file: every file is scanned.
    (repo / "shipforge.yaml").unlink()
    files, _ = scanned(str(repo))
    assert "compose.yaml" in files
