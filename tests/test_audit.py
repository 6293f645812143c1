"""`shipforge audit`: every planted problem found with its place, nothing false, nothing leaked.

Each folder of tests/fixtures/audit/ is a repository modelled on a failure mode of the seed
reports, with `expected.yaml` listing every check that must fail and its first evidence; the
test wants exactly that set, so a false finding fails it as surely as a missed one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from generator.audit import run_audit
from generator.audit.checks import FROZEN
from generator.audit.report import FORMATS
from tests.conftest import EXAMPLES

FIXTURES = Path(__file__).parent / "fixtures" / "audit"
CASES = sorted(p for p in FIXTURES.iterdir() if (p / "expected.yaml").is_file())
SARIF_SCHEMA = Path(__file__).parent / "fixtures" / "check" / "sarif-schema-2.1.0.json"
# Key-shaped values planted at test time, so that no such string is committed here.
FAKE_KEY = "sk-ant-api03-" + "Q7" * 20 + "x9Zk"
FAKE_SSH_KEY = (
    "-----BEGIN OPENSSH "
    + "PRIVATE KEY-----\n"
    + "b3Bl" * 16
    + "\n-----END OPENSSH PRIVATE KEY-----"
)
FAKE_B64 = "c2lnbmluZy" + "1rZXktZm9y" * 3 + "LXRlc3Rz"
PLANTED = {
    "@@ANTHROPIC_KEY@@": FAKE_KEY,
    "@@SSH_KEY@@": FAKE_SSH_KEY,
    "@@DB_PASSWORD@@": "agentpass123",
    "@@B64_SECRET@@": FAKE_B64,
}
NEVER_PRINTED = (FAKE_KEY, "agentpass123", FAKE_B64, "b3Blb3Bl")


def materialise(case: Path, tmp_path: Path) -> Path:
    repo = tmp_path / case.name
    shutil.copytree(case, repo, ignore=shutil.ignore_patterns("expected.yaml"))
    for path in repo.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for marker, value in PLANTED.items():
                text = text.replace(marker, value)
            path.write_text(text)
    return repo


def failures(repo: Path) -> list[dict[str, object]]:
    report = run_audit(repo)
    found = []
    for finding in report.findings:
        if finding.status != "fail":
            continue
        first = finding.evidence[0] if finding.evidence else None
        entry: dict[str, object] = {"check": finding.check}
        if first is not None and not first.file.startswith("("):
            entry["file"] = first.file
            if first.line:
                entry["line"] = first.line
        found.append(entry)
    return found


def key(entry: dict[str, object]) -> tuple[str, str, int]:
    return str(entry["check"]), str(entry.get("file", "")), int(str(entry.get("line", 0)))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_every_planted_problem_is_found_with_its_place_and_nothing_else(
    case: Path, tmp_path: Path
) -> None:
    expected = yaml.safe_load((case / "expected.yaml").read_text())["fail"]
    found = failures(materialise(case, tmp_path))
    assert sorted(map(key, found)) == sorted(map(key, expected))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_reports_never_show_a_secret_value_and_do_not_change_on_rerun(
    case: Path, tmp_path: Path
) -> None:
    repo = materialise(case, tmp_path)
    for name, render in FORMATS.items():
        first = render(run_audit(repo))
        assert render(run_audit(repo)) == first, f"{name} report changed on a rerun"
        for value in NEVER_PRINTED:
            assert value not in first, f"{name} report shows a secret value"


def test_sarif_report_is_valid_sarif(tmp_path: Path) -> None:
    repo = materialise(FIXTURES / "placeholder-deploy", tmp_path)
    log = json.loads(FORMATS["sarif"](run_audit(repo)))
    schema = json.loads(SARIF_SCHEMA.read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(log), key=str)
    assert not errors, errors[0]
    rules = {r["ruleId"] for r in log["runs"][0]["results"]}
    assert {"audit/deploy.real", "audit/secrets.committed"} <= rules


def test_the_markdown_report_is_a_table_per_area(tmp_path: Path) -> None:
    repo = materialise(FIXTURES / "placeholder-deploy", tmp_path)
    text = FORMATS["markdown"](run_audit(repo))
    assert text.startswith("# Production-readiness audit")
    assert "## Deploy is real (1/3)" in text
    rows = [line for line in text.splitlines() if line.startswith("| FAIL | deploy.real")]
    assert len(rows) == 2 and all(row.count(" | ") == 4 for row in rows)


# Which areas a generated example covers: those its targets produce files for.
def covered(example: Path) -> set[str]:
    descriptor = yaml.safe_load((example / "shipforge.yaml").read_text())
    targets = descriptor.get("targets", {})
    areas = {"Secrets", "Images", "Runtime", "Migrations"}
    if targets.get("ci", "none") != "none":
        areas |= {"Deploy is real", "Rollback exists", "Environments and releases", "Tests in CI"}
    if descriptor.get("monitoring", {}).get("prometheus"):
        areas.add("Observability")
    return areas


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_a_generated_example_audits_clean_in_every_area_its_targets_cover(
    example: Path,
) -> None:
    report = run_audit(example / "out")
    wrong = [
        f"{f.check}: {f.message}"
        for f in report.findings
        if f.status == "fail" and f.area in covered(example)
    ]
    assert not wrong


@pytest.mark.parametrize(
    ("run", "loose"),
    [
        ("pip install django gunicorn", True),
        ("npm install", True),
        ("yarn && yarn build", True),
        ("uv sync", True),
        ("pip install -r requirements.txt", False),
        # The project itself, its dependencies installed from a file before: no resolution.
        ("if [ ! -f requirements.txt ]; then pip install .; fi", False),
        ("pip install . && true", False),
        ("npm ci --omit=dev", False),
        ("uv sync --locked --no-dev", False),
        ("npm install --global pnpm@9.15.0", False),
    ],
)
def test_frozen_install_tells_a_locked_install_from_a_loose_one(run: str, loose: bool) -> None:
    assert any(regex.search(run) for regex, _ in FROZEN) is loose


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", "audit", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_path_that_is_not_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    missing = cli(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = cli(str(tmp_path / "empty"))
    assert empty.returncode == 2 and "nothing to audit" in empty.stderr


def test_the_cli_exits_1_on_findings_and_0_on_a_clean_repository(tmp_path: Path) -> None:
    assert cli(str(FIXTURES / "migrations-in-start")).returncode == 1
    clean = cli(str(FIXTURES / "clean-service"), "--format", "json", "-o", str(tmp_path / "r.json"))
    assert clean.returncode == 0, clean.stdout
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    assert "29 of 29 applicable checks pass" in clean.stdout


def test_a_hostile_tree_leaks_nothing_and_does_not_hang(tmp_path: Path) -> None:
    repo = materialise(FIXTURES / "clean-service", tmp_path)
    outside = tmp_path / "credentials"
    outside.write_text(f"ANTHROPIC_API_KEY={FAKE_KEY}\n")
    (repo / ".env").symlink_to(outside)
    (repo / "compose.yaml").symlink_to("/dev/zero")
    os.mkfifo(repo / "docker-compose.yml")
    (repo / "loop.yaml").symlink_to("loop.yaml")
    result = cli(str(repo), "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert FAKE_KEY not in result.stdout
    notes = " ".join(report["notes"])
    assert ".env: skipped: a symbolic link that leads out of the repository" in notes
    assert "docker-compose.yml: skipped: a FIFO" in notes


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


def test_history_finds_a_key_that_was_committed_and_then_removed(tmp_path: Path) -> None:
    repo = materialise(FIXTURES / "clean-service", tmp_path)
    git(repo, "init", "-q")
    (repo / "settings.py").write_text(f'API_KEY = "{FAKE_KEY}"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "oops")
    (repo / "settings.py").write_text('API_KEY = os.environ["API_KEY"]\n')
    git(repo, "commit", "-qam", "remove the key")
    assert run_audit(repo).ok
    report = run_audit(repo, history=True)
    history = [f for f in report.findings if f.check == "secrets.history"]
    assert [f.status for f in history] == ["fail"]
    assert history[0].evidence[0].file == "settings.py"
    assert FAKE_KEY not in FORMATS["text"](report)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (
            ".circleci/config.yml",
            "version: 2.1\njobs:\n  deploy:\n    docker: [{image: cimg/base:2024.01}]\n"
            "    steps:\n      - run: echo 'Add deployment script here'\n",
        ),
        (
            "bitbucket-pipelines.yml",
            "pipelines:\n  branches:\n    main:\n      - step:\n          name: Deploy\n"
            "          deployment: production\n          script:\n            - echo deploying\n",
        ),
        (
            "azure-pipelines.yml",
            "stages:\n  - stage: Deploy\n    jobs:\n      - deployment: web\n"
            "        environment: production\n        strategy:\n          runOnce:\n"
            "            deploy:\n              steps:\n                - script: echo TODO\n",
        ),
        (
            "Jenkinsfile",
            "pipeline {\n  stages {\n    stage('Deploy') {\n      steps {\n"
            "        echo 'deploy to production'\n      }\n    }\n  }\n}\n",
        ),
    ],
)
def test_placeholder_deploys_are_found_in_every_ci_system(
    path: str, text: str, tmp_path: Path
) -> None:
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    report = run_audit(tmp_path)
    deploys = [f for f in report.findings if f.check == "deploy.real"]
    assert deploys and all(f.status == "fail" for f in deploys), deploys
    assert deploys[0].evidence[0].file == path and deploys[0].evidence[0].line


def test_scripts_are_followed_through_working_directories_and_release_drafts_are_no_deploys(
    tmp_path: Path,
) -> None:
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / "backend/scripts").mkdir(parents=True)
    (tmp_path / "backend/alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    (tmp_path / "backend/scripts/deploy.sh").write_text(
        "bash scripts/prestart.sh\nfastapi deploy\n"
    )
    (tmp_path / "backend/scripts/prestart.sh").write_text("alembic upgrade head\n")
    (tmp_path / ".github/workflows/ship.yml").write_text(
        "on: {push: {branches: [main]}}\njobs:\n"
        "  create-draft-release:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - uses: release-drafter/release-drafter@v6\n"
        "  deploy:\n    runs-on: ubuntu-24.04\n    environment: production\n"
        "    steps:\n      - run: bash scripts/deploy.sh\n        working-directory: backend\n"
    )
    report = run_audit(tmp_path)
    status = {f.check: f for f in report.findings}
    deploys = [f for f in report.findings if f.check == "deploy.real"]
    assert [f.status for f in deploys] == ["pass"], deploys
    assert deploys[0].evidence[0].file == "backend/scripts/deploy.sh"
    assert status["migrations.run"].status == "pass"
    assert status["migrations.run"].evidence[0].file == "backend/scripts/prestart.sh"


def test_key_files_kubernetes_secrets_and_tfvars_literals_are_each_reported(
    tmp_path: Path,
) -> None:
    repo = materialise(FIXTURES / "committed-keys", tmp_path)
    committed = next(f for f in run_audit(repo).findings if f.check == "secrets.committed")
    places = [(e.file, e.line) for e in committed.evidence]
    assert places == [
        ("certs/tls.key", 1),
        ("deploy/id_ed25519", 1),
        ("k8s/secret.yaml", 7),
        ("k8s/secret.yaml", 8),
        ("k8s/secret.yaml", 12),
        ("terraform/production.tfvars", 3),
        ("terraform/staging.tfvars.json", 3),
    ]


MIGRATE_CRONJOB = """apiVersion: batch/v1
kind: CronJob
metadata:
  name: orders-migrate
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: migrate
              image: ghcr.io/acme/orders:1.0.0
              command: [alembic, upgrade, head]
"""
MIGRATE_JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: orders-migrate
{annotations}spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: ghcr.io/acme/orders:1.0.0
          command: [alembic, upgrade, head]
"""


def migrations(tmp_path: Path, files: dict[str, str]) -> tuple[str, str]:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = next(f for f in run_audit(tmp_path).findings if f.check == "migrations.run")
    return found.status, found.evidence[0].place()


DEPLOY_WORKFLOW = (
    "on: {{push: {{branches: [main]}}}}\njobs:\n  deploy:\n    runs-on: ubuntu-24.04\n"
    "    environment: production\n    steps:\n      - run: {run}\n"
)


@pytest.mark.parametrize(
    ("files", "status", "place"),
    [
        # A Job the pipeline creates from a (suspended) CronJob that migrates.
        (
            {
                "k8s/migrate-cronjob.yaml": MIGRATE_CRONJOB,
                ".github/workflows/deploy.yml": DEPLOY_WORKFLOW.format(
                    run="kubectl create job orders-migrate-$GITHUB_SHA --from=cronjob/orders-migrate"
                ),
            },
            "pass",
            ".github/workflows/deploy.yml:7",
        ),
        # The same CronJob that nothing turns into a Job runs nothing before the rollout.
        ({"k8s/migrate-cronjob.yaml": MIGRATE_CRONJOB}, "fail", "alembic.ini"),
        # A Job manifest nobody applies is no release step, whatever its text says.
        ({"k8s/migrate-job.yaml": MIGRATE_JOB.format(annotations="")}, "fail", "alembic.ini"),
        # A Helm pre-upgrade hook, a kustomization and a script apply it.
        (
            {
                "k8s/migrate-job.yaml": MIGRATE_JOB.format(
                    annotations="  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n"
                )
            },
            "pass",
            "k8s/migrate-job.yaml:4",
        ),
        (
            {
                "k8s/migrate-job.yaml": MIGRATE_JOB.format(annotations=""),
                "k8s/kustomization.yaml": "resources:\n  - migrate-job.yaml\n",
            },
            "pass",
            "k8s/migrate-job.yaml:4",
        ),
        (
            {
                "k8s/migrate-job.yaml": MIGRATE_JOB.format(annotations=""),
                "scripts/release.sh": "kubectl apply -f k8s/migrate-job.yaml\n",
            },
            "pass",
            "k8s/migrate-job.yaml:4",
        ),
    ],
)
def test_a_migration_job_counts_only_when_something_applies_it(
    files: dict[str, str], status: str, place: str, tmp_path: Path
) -> None:
    assert migrations(tmp_path, files) == (status, place)


COMPOSE_WEB = "services:\n  web:\n    image: ghcr.io/acme/web:1.0.0\n    restart: always\n"


@pytest.mark.parametrize(
    ("files", "status", "place"),
    [
        # The default json-file driver, unrotated: the logs go when the container does.
        ({"compose.yaml": COMPOSE_WEB}, "fail", "(repository)"),
        (
            {"compose.yaml": COMPOSE_WEB + "    logging:\n      driver: awslogs\n"},
            "pass",
            "compose.yaml:6",
        ),
        (
            {
                "compose.yaml": COMPOSE_WEB + "    logging:\n      driver: json-file\n"
                "      options: {max-size: 10m}\n"
            },
            "pass",
            "compose.yaml:6",
        ),
        (
            {"compose.yaml": COMPOSE_WEB + "  logs:\n    image: timberio/vector:0.43.0-alpine\n"},
            "pass",
            "compose.yaml:6",
        ),
        (
            {
                "ecs/task-definition.json": '{"containerDefinitions": [{"name": "web",\n'
                '  "logConfiguration": {"logDriver": "awslogs"}}]}\n'
            },
            "pass",
            "ecs/task-definition.json:2",
        ),
        (
            {"requirements.txt": "fastapi==0.115.0\nstructlog==24.4.0\n"},
            "pass",
            "requirements.txt:2",
        ),
    ],
)
def test_logs_pass_only_when_something_ships_or_keeps_them(
    files: dict[str, str], status: str, place: str, tmp_path: Path
) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = next(f for f in run_audit(tmp_path).findings if f.check == "observability.logs")
    assert (found.status, found.evidence[0].place()) == (status, place)


def test_detect_secrets_finds_keys_the_audit_has_no_shape_for(tmp_path: Path) -> None:
    from generator import lint

    if lint.find_tool("detect-secrets-hook") is None:
        if os.environ.get("CI"):
            pytest.fail("detect-secrets is not installed (run tests/install-tools.sh)")
        pytest.skip("detect-secrets is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    # A Twilio key (no shape of the audit's own matches it), built here so none is committed.
    key = "SK" + "a3f9c2e1b7d4" + "0f6a8e2c5b9d1f4a7c3e"
    (repo / "settings.py").write_text(f'DEBUG = False\nTWILIO_KEY = "{key}"\n')
    report = run_audit(repo)
    (finding,) = [f for f in report.findings if f.check == "secrets.committed"]
    assert finding.status == "fail"
    assert [(e.file, e.line, e.text) for e in finding.evidence] == [
        ("settings.py", 2, "Twilio API Key (detect-secrets)")
    ]
    assert "detect-secrets" not in report.tools_missing
    for fmt in FORMATS:
        assert key not in FORMATS[fmt](report)


def test_logs_of_kubernetes_only_workloads_are_the_clusters_to_ship() -> None:
    # Example 19 runs on Kubernetes only: its stdout logs are the cluster agent's to ship,
    # which no repository shows, so the audit says n/a instead of guessing either way.
    (example,) = [e for e in EXAMPLES if e.name == "19-monitoring-kubernetes"]
    report = run_audit(example / "out")
    (logs,) = [f for f in report.findings if f.check == "observability.logs"]
    assert logs.status == "n/a" and "the cluster ships container logs" in logs.message
