"""CI target: the generated GitHub workflows and GitLab pipelines pass the field's linters, keep
the security rules of issue 4, and carry hostile descriptor values as inert strings.

The examples with `targets.ci` and a few variants (deploy none, other registries, hostile
values) are generated once per module; each linter then runs once over all of them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import lint
from generator.loader import validate
from generator.model import build_project
from generator.render import Rendered
from generator.targets import ci
from tests.conftest import ROOT, generate_tree
from tests.toolcheck import require

EXAMPLES = {
    "06-github-kubernetes",
    "07-gitlab-compose",
    "08-github-aws-ecs",
    "09-gitlab-gcp-cloud-run",
    "10-github-azure-container-apps",
    "11-github-pm2",
}
PIN = re.compile(r"^\s+(?:- )?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40})  # (v\d+\.\d+\.\d+)$", re.M)

# Values a descriptor may legally hold that mean something to YAML, GitHub expressions,
# GitLab variables, Jinja or a shell. Each must land as the very same string.
HOSTILE_PATH = "svc/${{ github.token }}/$(touch pwned)/{{ x }}/'q\"/on"
HOSTILE_RELEASE = "sh -c 'echo ${{ secrets.X }} $(id) {{ y }} \"quoted\"; exit 0'"


def _api(**extra: Any) -> dict[str, Any]:
    return {
        "runtime": "python",
        "command": "uvicorn app:app --host 0.0.0.0 --port 8000",
        "port": 8000,
        "public": True,
        **extra,
    }


VARIANTS: dict[str, dict[str, Any]] = {
    # deploy none: CI lints, tests, builds and pushes only.
    "none-github-basic": {
        "project": {"name": "plain", "registry": "registry.example.com/acme"},
        "services": {"api": _api()},
        "targets": {"ci": "github"},
    },
    "none-gitlab": {
        "project": {"name": "plain"},
        "services": {"api": _api(runtime="node", command="node server.js", package_manager="yarn")},
        "targets": {"ci": "gitlab"},
    },
    # Kubernetes on GKE from GitLab: Artifact Registry login through the job's ID token,
    # and no domain (the smoke test reads SMOKE_URL_API).
    "k8s-gitlab-gar": {
        "project": {"name": "kgar", "registry": "europe-docker.pkg.dev/acme/apps"},
        "services": {
            "api": _api(release="python -m migrate", volumes=[{"name": "data", "mount": "/data"}])
        },
        "targets": {"kubernetes": True, "ci": "gitlab"},
        "deploy": "kubernetes",
    },
    "cloud-run-github": {
        "project": {"name": "crun"},
        "services": {
            "web": _api(runtime="node", command="node server.js", release="node migrate.js")
        },
        "targets": {"terraform": "gcp-cloud-run", "ci": "github"},
        "deploy": "gcp-cloud-run",
    },
    "azure-gitlab": {
        "project": {"name": "azgl"},
        "services": {"web": _api(release="python manage.py migrate")},
        "targets": {"terraform": "azure-container-apps", "ci": "gitlab"},
        "deploy": "azure-container-apps",
    },
    "pm2-gitlab": {
        "project": {"name": "pmgl"},
        "services": {"api": _api(runtime="node", command="node server.js")},
        "targets": {"pm2": True, "ci": "gitlab"},
        "deploy": "pm2",
    },
    "compose-github-secrets": {
        "project": {"name": "cgh"},
        "services": {"api": _api(secrets=["API_TOKEN"], uses=["postgres"])},
        "datastores": {"postgres": {}},
        "targets": {"ci": "github"},
        "deploy": "compose",
    },
    # Hostile values, custom environments (one named like a YAML boolean, a branch like an
    # octal number), ECS with a hostile release command.
    "hostile-github": {
        "project": {"name": "hostile", "description": "${{ github.token }} {{ x }} $(id)"},
        "services": {
            "on": _api(path=HOSTILE_PATH, package_manager="uv", release=HOSTILE_RELEASE),
        },
        "environments": {
            "staging": {"branch": "release/next"},
            "yes": {"branch": "0755", "approval": True, "domain": "example.com"},
        },
        "targets": {"terraform": "aws-ecs", "ci": "github"},
        "deploy": "aws-ecs",
    },
    "hostile-gitlab": {
        "project": {"name": "hostile"},
        "services": {"on": _api(path=HOSTILE_PATH, release=HOSTILE_RELEASE)},
        "environments": {"staging": {"branch": "0755"}, "production": {"approval": True}},
        "targets": {"ci": "gitlab"},
        "deploy": "compose",
    },
}


@pytest.fixture(scope="module")
def trees(generated: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tree with CI files: the examples and the variants above."""
    out = {name: generated[name] for name in EXAMPLES}
    root = tmp_path_factory.mktemp("ci")
    for name, descriptor in VARIANTS.items():
        folder = root / name
        folder.mkdir()
        path = folder / "shipforge.yaml"
        path.write_text(yaml.safe_dump({"version": 1, **descriptor}, sort_keys=False))
        out[name] = generate_tree(path, folder)
    return out


def _workflows(trees: dict[str, Path]) -> list[Path]:
    return sorted(p for t in trees.values() for p in t.glob(".github/workflows/*.yml"))


def _pipelines(trees: dict[str, Path]) -> list[Path]:
    return sorted(p for t in trees.values() for p in t.glob(".gitlab-ci.yml"))


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=ci._Loader)


# --- the field's linters ---------------------------------------------------------------


def test_github_workflows_pass_the_schemas(trees: dict[str, Path]) -> None:
    files = [str(p) for p in _workflows(trees)]
    assert len(files) >= 30
    require(lint.check_jsonschema(files, "vendor.github-workflows"))
    require(lint.check_jsonschema(files, "custom.github-workflows-require-timeout"))


def test_gitlab_pipelines_pass_the_schema(trees: dict[str, Path]) -> None:
    files = [str(p) for p in _pipelines(trees)]
    assert len(files) >= 6
    require(lint.check_jsonschema(files, "vendor.gitlab-ci"))


def test_actionlint_with_shellcheck(trees: dict[str, Path]) -> None:
    require(lint.actionlint([str(p) for p in _workflows(trees)]))


def test_zizmor_offline_has_no_finding(trees: dict[str, Path]) -> None:
    require(lint.zizmor([str(p) for p in _workflows(trees)]))


def test_checkov_github_actions_and_gitlab_ci(trees: dict[str, Path], tmp_path: Path) -> None:
    # One checkov run (it is slow) over a folder holding every tree's CI files.
    for name, tree in trees.items():
        if (tree / ".github").is_dir():
            shutil.copytree(tree / ".github", tmp_path / name / ".github")
        if (tree / ".gitlab-ci.yml").is_file():
            (tmp_path / name).mkdir(exist_ok=True)
            shutil.copy(tree / ".gitlab-ci.yml", tmp_path / name / ".gitlab-ci.yml")
    require(lint.checkov(tmp_path, ["github_actions", "gitlab_ci"]))


def test_gitlab_ci_local_lists_every_job(trees: dict[str, Path], tmp_path: Path) -> None:
    exe = ROOT / ".tools" / "npm" / "node_modules" / ".bin" / "gitlab-ci-local"
    if not exe.exists() or shutil.which("git") is None:
        pytest.skip("gitlab-ci-local is not installed (tests/install-tools.sh)")
    project = tmp_path / "repo"
    shutil.copytree(trees["07-gitlab-compose"], project)
    for args in (["init", "-q", "-b", "develop"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [str(exe), "--list"], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for job in (
        "test-api",
        "publish-staging",
        "deploy-staging",
        "verified-staging",
        "rollback-staging",
    ):
        assert re.search(rf"^{job}\s", done.stdout, re.M), done.stdout


# --- pins ------------------------------------------------------------------------------


def test_every_action_is_pinned_to_a_commit_recorded_in_the_docs(trees: dict[str, Path]) -> None:
    docs = (ROOT / "docs" / "ci.md").read_text()
    recorded = set(
        re.findall(r"\| `([\w.-]+/[\w.-]+)` \| `(v[\d.]+)` \| `([0-9a-f]{40})` \|", docs)
    )
    assert recorded, "docs/ci.md has no pin table"
    seen = set()
    for path in _workflows(trees):
        text = path.read_text()
        uses = re.findall(r"^\s+(?:- )?uses: (\S+)", text, re.M)
        pins = PIN.findall(text)
        assert len(pins) == len(uses), f"{path}: every uses: is owner/repo@<sha> # vX.Y.Z"
        for repo, sha, tag in pins:
            assert (repo, tag, sha) in recorded, f"{repo}@{sha} ({tag}) is not in docs/ci.md"
            seen.add((repo, tag, sha))
    assert seen == recorded, "docs/ci.md lists pins no workflow uses"


# --- structure and security rules ------------------------------------------------------


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def test_every_job_is_least_privilege_timed_and_never_persists_credentials(
    trees: dict[str, Path],
) -> None:
    for path in _workflows(trees):
        document = _load(path)
        assert document["permissions"] == {}, path
        for name, job in document["jobs"].items():
            where = f"{path}:{name}"
            assert int(job["timeout-minutes"]) <= 60, where
            permissions = job["permissions"]
            assert permissions.get("contents") == "read", where
            assert set(permissions) <= {"contents", "id-token", "packages", "actions"}, where
            # actions: read only to see the other workflow's runs (deploy <-> rollback).
            assert permissions.get("actions", "read") == "read", where
            assert all(v in ("read", "write") for v in permissions.values()), where
            for step in _steps(job):
                assert "${{" not in step.get("run", ""), where
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] == "false", where
            if name.startswith("test-"):
                assert permissions == {"contents": "read"}, where


def test_deploy_workflows_gate_promote_and_serialize(trees: dict[str, Path]) -> None:
    for name, tree in trees.items():
        deploys = sorted(tree.glob(".github/workflows/deploy-*.yml"))
        if not deploys:
            continue
        project = build_project(validate(_descriptor(name, tree), name))
        view = ci.view(project)
        for env in view["deploy_environments"]:
            document = _load(tree / ".github" / "workflows" / f"deploy-{env['name']}.yml")
            on = document["on"]
            assert on["push"]["branches"] == [env["branch"]]
            assert on["workflow_dispatch"] in (None, "", {}), "no inputs (checkov CKV_GHA_7)"
            job = document["jobs"]["deploy"]
            assert job["environment"]["name"] == env["name"]
            assert job["concurrency"] == {
                "group": f"deploy-{env['name']}",
                "cancel-in-progress": "false",
            }
            # A deploy first waits for a rollback of the environment in progress.
            assert job["steps"][0]["env"]["OTHER"] == f"rollback-{env['name']}.yml"
            assert ("MANUAL_APPROVAL" in job["if"]) == env["approval"]
            runs = " ".join(s.get("run", "") for s in _steps(job))
            assert f"{view['script']} deploy {env['name']}" in runs
            if env["promote_from"]:
                assert "images.sh promote" in runs and "images.sh build" not in runs
                assert "needs" not in job
            elif view["uses_images"]:
                assert "images.sh build" in runs and "images.sh push" in runs
                assert set(job["needs"]) == {f"test-{t['name']}" for t in view["tests"]}
            assert ("images.sh verified" in runs) == env["promoted"]
            cloud = bool(view["cloud"]) or view["registry"]["kind"] in ("ecr", "gar", "acr")
            assert ("id-token" in job["permissions"]) == cloud
            rollback = _load(tree / ".github" / "workflows" / f"rollback-{env['name']}.yml")
            assert set(rollback["on"]) == {"workflow_dispatch"}
            assert rollback["on"]["workflow_dispatch"] in (None, "", {})
            job = rollback["jobs"]["rollback"]
            # Its own group: a push (a pending deploy) can never cancel a pending rollback.
            assert job["concurrency"] == {
                "group": f"rollback-{env['name']}",
                "cancel-in-progress": "false",
            }
            assert job["steps"][0]["env"]["OTHER"] == f"deploy-{env['name']}.yml"
            runs = [s.get("run", "") for s in _steps(job)]
            assert any(f"{view['script']} rollback {env['name']}" in r for r in runs)
            # Rolling back an environment that production promotes from revokes its images.
            revoke = [r for r in runs if "images.sh revoke" in r]
            assert bool(revoke) == env["promoted"]
            if revoke:
                assert runs.index(revoke[0]) > next(
                    i for i, r in enumerate(runs) if f"rollback {env['name']}" in r
                )


def _descriptor(name: str, tree: Path) -> dict[str, Any]:
    source = (
        ROOT / "examples" / name / "shipforge.yaml" if name in EXAMPLES else tree / "shipforge.yaml"
    )
    data: dict[str, Any] = yaml.safe_load(source.read_text())
    return data


def test_gitlab_pipelines_gate_serialize_and_roll_back(trees: dict[str, Path]) -> None:
    for name, tree in trees.items():
        path = tree / ".gitlab-ci.yml"
        if not path.exists():
            continue
        document = _load(path)
        view = ci.view(build_project(validate(_descriptor(name, tree), name)))
        jobs = {k: v for k, v in document.items() if isinstance(v, dict) and "script" in v}
        for job in jobs.values():
            assert not any(str(line).startswith("curl") for line in job["script"])
            assert "timeout" in job
        for env in view["deploy_environments"]:
            deploy = jobs[f"deploy-{env['name']}"]
            assert deploy["resource_group"] == env["name"]
            assert deploy["environment"]["name"] == env["name"]
            rule = deploy["rules"][0]
            assert rule["if"] == env["gitlab_rule"]
            # The approval gate is the environment's first job: with images, the publish or
            # promote job, so nothing reaches the environment's registry before approval.
            gate = jobs[env["images_job"]] if view["uses_images"] else deploy
            assert (gate["rules"][0].get("when") == "manual") == env["approval"]
            if view["uses_images"]:
                assert rule.get("when") != "manual"
                assert deploy["needs"] == [env["images_job"]]
            if env["approval"]:
                assert gate["allow_failure"] == "false"
            rollback = jobs[f"rollback-{env['name']}"]
            assert rollback["rules"][0]["when"] == "manual"
            assert rollback["resource_group"] == env["name"]
            assert rollback["needs"] == []
            assert any(f"rollback {env['name']}" in line for line in rollback["script"])
            if env["promoted"]:
                revoke = jobs[f"revoke-{env['name']}"]
                assert revoke["needs"] == [{"job": f"rollback-{env['name']}", "artifacts": "true"}]
                assert rollback["variables"]["ROLLED_BACK_FROM"] == "rolled-back.env"
        # Environment branches keep their branch pipelines while a merge request is open (the
        # deploys run there); build-only jobs, which run on any branch, get no cloud ID token.
        rules = document["workflow"]["rules"]
        if view["branches"]:
            assert rules[1] == {"if": view["gitlab_publish_rule"]}
            assert rules[2] == {
                "if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS",
                "when": "never",
            }
        if "images" in jobs:
            assert "id_tokens" not in jobs["images"]


# --- hostile values --------------------------------------------------------------------


def test_hostile_values_stay_inert_in_github(trees: dict[str, Path]) -> None:
    tree = trees["hostile-github"]
    staging = _load(tree / ".github" / "workflows" / "deploy-staging.yml")
    test = staging["jobs"]["test-on"]
    # What GitHub evaluates: the filter wrote `${{` as the expression `${{ '${{' }}`.
    directory = test["defaults"]["run"]["working-directory"]
    assert directory.replace("${{ '${{' }}", "${{") == HOSTILE_PATH
    assert "release/next" in staging["on"]["push"]["branches"]
    production = _load(tree / ".github" / "workflows" / "deploy-yes.yml")
    assert production["on"]["push"]["branches"] == ["0755"]
    assert production["jobs"]["deploy"]["environment"]["name"] == "yes"
    assert "promote yes" in " ".join(
        s.get("run", "") for s in production["jobs"]["deploy"]["steps"]
    )
    raw = (tree / ".github" / "workflows" / "deploy-staging.yml").read_text()
    assert "${{ github.token }}" not in raw and "${{ secrets.X }}" not in raw


def test_hostile_values_stay_inert_in_gitlab(trees: dict[str, Path]) -> None:
    document = _load(trees["hostile-gitlab"] / ".gitlab-ci.yml")
    # GitLab expands $VAR in variables and reads $$ as one $.
    assert document["test-on"]["variables"]["SERVICE_PATH"].replace("$$", "$") == HOSTILE_PATH
    assert document["deploy-staging"]["rules"][0]["if"] == '$CI_COMMIT_BRANCH == "0755"'


def test_hostile_values_stay_inert_in_the_scripts(trees: dict[str, Path]) -> None:
    tree = trees["hostile-github"]
    # The scripts' arrays, read by bash itself, hold the exact strings.
    probe = (
        "source <(sed -n '/^images=(/,/^contexts=(/p' deploy/images.sh); "
        'printf "%s\\n" "${contexts[0]}" "${dockerfiles[0]}"'
    )
    done = subprocess.run(["bash", "-c", probe], cwd=tree, capture_output=True, text=True)
    assert done.stdout.splitlines() == [HOSTILE_PATH, f"{HOSTILE_PATH}/Dockerfile"], done.stderr
    probe = "source <(grep '^overrides=(' deploy/aws-ecs.sh); printf '%s' \"${overrides[0]}\""
    done = subprocess.run(["bash", "-c", probe], cwd=tree, capture_output=True, text=True)
    overrides = json.loads(done.stdout)
    assert overrides["containerOverrides"][0]["command"] == shlex.split(HOSTILE_RELEASE)
    assert not (tree / "pwned").exists()


# --- the view and our own check ---------------------------------------------------------


def _project(**descriptor: Any) -> Any:
    data = {"version": 1, "project": {"name": "p"}, "services": {"api": _api()}, **descriptor}
    return build_project(validate(data, "test"))


@pytest.mark.parametrize(
    ("registry", "deploy", "ci_system", "kind"),
    [
        ("", "kubernetes", "github", "ghcr"),
        ("", "compose", "gitlab", "gitlab"),
        ("", "aws-ecs", "github", "ecr"),
        ("", "gcp-cloud-run", "gitlab", "gar"),
        ("", "azure-container-apps", "github", "acr"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/apps", "kubernetes", "github", "ecr"),
        ("europe-docker.pkg.dev/acme/apps", "compose", "github", "gar"),
        ("acme.azurecr.io", "compose", "gitlab", "acr"),
        ("ghcr.io/acme", "compose", "gitlab", "basic"),
        ("registry.gitlab.com/acme", "compose", "gitlab", "gitlab"),
        ("quay.io/acme", "compose", "github", "basic"),
    ],
)
def test_registry_kind(registry: str, deploy: str, ci_system: str, kind: str) -> None:
    targets: dict[str, Any] = {"ci": ci_system}
    targets.update(
        {"kubernetes": True}
        if deploy == "kubernetes"
        else {"terraform": deploy}
        if deploy in ci.CLOUD
        else {}
    )
    project = _project(
        project={"name": "p", **({"registry": registry} if registry else {})},
        targets=targets,
        deploy=deploy,
    )
    assert ci.view(project)["registry"]["kind"] == kind


def test_production_promotes_staging_and_custom_environments_deploy_their_own() -> None:
    view = ci.view(_project(targets={"ci": "github", "kubernetes": True}, deploy="kubernetes"))
    envs = {e["name"]: e for e in view["environments"]}
    assert envs["production"]["promote_from"] == "staging" and envs["staging"]["promoted"]
    assert [e["name"] for e in view["environments"]] == ["staging", "production"]
    view = ci.view(
        _project(
            environments={"dev": {}, "prod": {"approval": True}},
            targets={"ci": "github", "kubernetes": True},
            deploy="kubernetes",
        )
    )
    assert not any(e["promote_from"] for e in view["environments"])
    view = ci.view(_project(targets={"ci": "github", "pm2": True}, deploy="pm2"))
    assert not any(e["promote_from"] for e in view["environments"])


def test_smoke_urls_follow_the_public_host_rule() -> None:
    project = _project(
        services={"api": _api(health="/ready"), "admin": _api(port=9000)},
        environments={"staging": {"domain": "example.com"}, "qa": {}},
        targets={"ci": "gitlab", "kubernetes": True},
        deploy="kubernetes",
    )
    envs = {e["name"]: e for e in ci.view(project)["environments"]}
    assert [s["url"] for s in envs["staging"]["smoke"]] == [
        "https://admin.example.com/healthz",
        "https://api.example.com/ready",
    ]
    assert [s["variable"] for s in envs["qa"]["smoke"]] == ["SMOKE_URL_ADMIN", "SMOKE_URL_API"]


def test_check_reports_broken_output() -> None:
    project = _project(targets={"ci": "github"})
    workflow = (
        "# Generated by shipforge\non: push\njobs:\n  a:\n    runs-on: x\n    steps:\n"
        "      - uses: actions/checkout@v5\n      - run: echo ${{ github.ref }}\n"
    )
    issues = ci.check(
        project,
        [
            Rendered(".github/workflows/x.yml", "t", workflow, False),
            Rendered("deploy/x.sh", "t", "#!/bin/sh\necho\n", False),
        ],
    )
    messages = {i.message for i in issues}
    assert {
        "no top-level permissions",
        "job without timeout-minutes",
        "job without its own permissions",
        "action not pinned to a commit: actions/checkout@v5",
        "checkout must not persist credentials",
        "an expression inside run:",
        "does not say it was generated by shipforge",
        "scripts start with #!/usr/bin/env bash",
        "script is not executable",
        "script without set -euo pipefail",
    } <= messages
