"""ci: GitHub Actions or GitLab CI pipelines, and the deploy scripts both of them call.

The deploy logic (release, rollout, smoke test, rollback) lives in generated shell scripts under
deploy/, written once per platform and driven by either CI system. The view derives what the
templates need: the registry and how to log in to it, one entry per image and per environment,
the platform's resource names (from generator/naming.py, shared with Terraform and Kubernetes),
the smoke-test URLs and the CI variables each deploy reads.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from generator import fastyaml, naming
from generator.errors import Issue
from generator.model import Environment, Image, Project, Service
from generator.render import Rendered

TEMPLATES = (
    '{% if model.targets.ci == "github" %}.github{% endif %}/*',
    '{% if model.targets.ci == "gitlab" %}.gitlab-ci.yml{% endif %}*',
    '{% if model.targets.ci != "none" %}deploy{% endif %}/*',
    "_shipforge_macros/github-actions.jinja",
)

CLOUD = {"aws-ecs": "aws", "gcp-cloud-run": "gcp", "azure-container-apps": "azure"}

GCLOUD_VERSION = "576.0.0"

# Images the GitLab jobs run in (GitHub jobs run on ubuntu-24.04 runners). Versions are exact
# tags; trivy, which scans every image and runs with the registry login, is pinned by digest
# too (the digest was cross-checked in several independent public files; docs/ci.md says how).
DOCKER_IMAGE = "docker:28-cli"
DIND_IMAGE = "docker:28-dind"
TRIVY_IMAGE = (
    "aquasec/trivy:0.70.0@sha256:be1190afcb28352bfddc4ddeb71470835d16462af68d310f9f4bca710961a41e"
)
PLATFORM_IMAGE = {
    "kubernetes": "alpine/k8s:1.33.4",
    "aws-ecs": "alpine:3.22",
    # The first releases with the GA `gcloud run worker-pools` group (GA 2026-04-14) are in the
    # 570s; 576.0.0 is a published image tag. GitHub's setup-gcloud installs the same release.
    "gcp-cloud-run": f"google/cloud-sdk:{GCLOUD_VERSION}-slim",
    "azure-container-apps": "mcr.microsoft.com/azure-cli:2.70.0",
    "pm2": "node:22-bookworm-slim",
    "compose": DOCKER_IMAGE,
}
UV_VERSION = "0.13.8"
POETRY_VERSION = "2.5.1"


def env_name(text: str) -> str:
    """An UPPER_SNAKE fragment for a DNS-label name (`doc-api` -> `DOC_API`)."""
    return re.sub(r"[^A-Z0-9]", "_", text.upper())


def _registry(project: Project) -> dict[str, str]:
    """Where images go, and how CI logs in there (generator/naming.py decides, for Terraform too).

    kinds: ghcr (GITHUB_TOKEN), gitlab (job token), ecr / gar / acr (cloud OIDC), basic
    (REGISTRY_USERNAME / REGISTRY_PASSWORD CI variables).
    """
    cloud = project.deploy if project.deploy in naming.CLOUD_REGISTRY else ""
    return naming.registry(project.registry, project.targets.ci, cloud)


def _image(project: Project, image: Image) -> dict[str, Any]:
    return {
        "name": image.name,
        "var": f"IMAGE_{env_name(image.name)}",
        "repository": f"{project.name}-{image.name}",
        "manifest_repository": image.repository,
        "dockerfile": image.dockerfile,
        "context": image.path,
        "services": list(image.services),
    }


def _test(image: Image) -> dict[str, Any]:
    """A lint-and-test job for one build context (runtime, version, path, package manager)."""
    lock = {
        "pip": "requirements.txt",
        "poetry": "poetry.lock",
        "uv": "uv.lock",
        "npm": "package-lock.json",
        "pnpm": "pnpm-lock.yaml",
        "yarn": "yarn.lock",
    }[image.package_manager]
    prefix = "" if image.path == "." else f"{image.path}/"
    return {
        "name": image.name,
        "runtime": image.runtime,
        "version": image.version,
        # GitLab runs the tests in the image the Dockerfile builds from.
        "base": image.base,
        "path": image.path,
        "package_manager": image.package_manager,
        "lockfile": f"{prefix}{lock}",
        "build": bool(image.build),
        # How the lint and test steps run a Python module inside the project's environment.
        "run_prefix": {"poetry": "poetry run ", "uv": "uv run "}.get(image.package_manager, ""),
        # package.json scripts run when they exist (node); build too when the image builds.
        "scripts": ["lint", "build", "test"] if image.build else ["lint", "test"],
        "install": {
            "pnpm": "pnpm install --frozen-lockfile",
            "yarn": "yarn install --frozen-lockfile",
        }.get(image.package_manager, ""),
    }


def _smoke(
    project: Project, environment: Environment, service: Service, public_count: int
) -> dict[str, str]:
    """Where a public service's health is checked after a deploy.

    With a domain the host follows naming.public_host; without one, Cloud Run and Container
    Apps have their own URL (read at deploy time) and every other platform reads the base URL
    from a CI variable.
    """
    host = naming.public_host(service.name, environment.domain, public_count)
    platform_url = project.deploy in ("gcp-cloud-run", "azure-container-apps")
    return {
        "service": service.name,
        "url": f"https://{host}{service.health}" if host else "",
        "base": f"https://{host}" if host else "",
        "variable": "" if host or platform_url else f"SMOKE_URL_{env_name(service.name)}",
        "health": service.health,
    }


def _environment(
    project: Project, environment: Environment, promote_from: str, promoted: bool
) -> dict[str, Any]:
    p, e = project.name, environment.name
    public = [s for s in project.services if s.public]
    # A service without a health route (`health: null`) has no path to smoke-test.
    smoke = [_smoke(project, environment, s, len(public)) for s in public if s.health]
    services = []
    for s in project.services:
        services.append(
            {
                "name": s.name,
                "var": env_name(s.name),
                "kind": "statefulset" if s.volumes else "deployment",
                "web": s.web,
                "public": s.public,
                "health": s.health,
                "image_var": f"IMAGE_{env_name(s.image)}",
                "release": bool(s.release),
                "release_argv": list(s.release_argv),
                # The release command as an ECS run-task container override.
                "ecs_overrides": json.dumps(
                    {"containerOverrides": [{"name": s.name, "command": list(s.release_argv)}]},
                    ensure_ascii=False,
                ),
                "ecs_service": naming.ecs_service(p, e, s.name),
                "cloud_run_service": naming.cloud_run_service(p, e, s.name),
                "cloud_run_job": naming.cloud_run_job(p, e, s.name),
                "container_app": naming.container_app(p, e, s.name),
                "container_app_job": naming.container_app_job(p, e, s.name),
            }
        )
    variables = _variables(project, environment, smoke)
    first = smoke[0] if smoke else None
    return {
        "name": e,
        "var": env_name(e),
        "branch": environment.branch,
        "approval": environment.approval,
        "promote_from": promote_from,
        "images_job": f"{'promote' if promote_from else 'publish'}-{e}",
        "promoted": promoted,
        "github_ref": f"github.ref == 'refs/heads/{environment.branch}'",
        # The fallback gate for plans without required reviewers: with the repository
        # variable MANUAL_APPROVAL=true, only a manual run (workflow_dispatch) deploys here.
        "github_deploy_if": f"github.ref == 'refs/heads/{environment.branch}'"
        + (
            " && (github.event_name == 'workflow_dispatch' || vars.MANUAL_APPROVAL != 'true')"
            if environment.approval
            else ""
        ),
        "gitlab_rule": f'$CI_COMMIT_BRANCH == "{environment.branch}"',
        "url": first["base"] if first else "",
        "url_variable": first["variable"] if first else "",
        "namespace": naming.namespace(p, e),
        "stack": naming.stack(p, e),
        "resource_group": naming.resource_group(p, e),
        "services": services,
        "releases": [s for s in services if s["release"]],
        "smoke": smoke,
        "variables": variables,
        "rollback_variables": [v for v in variables if not v["name"].startswith("ECS_")],
    }


def _variables(
    project: Project, environment: Environment, smoke: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The CI variables (and secrets) a deploy to this environment reads, by name."""
    out: list[tuple[str, str]] = []
    deploy = project.deploy
    if deploy == "aws-ecs":
        out.append(("AWS_REGION", "vars"))
        if any(s.release for s in project.services):
            out.append(("ECS_SUBNETS", "vars"))
            out += [
                (f"ECS_SECURITY_GROUPS_{env_name(s.name)}", "vars")
                for s in project.services
                if s.release
            ]
    elif deploy == "gcp-cloud-run":
        out += [("GCP_PROJECT", "vars"), ("GCP_REGION", "vars")]
    elif deploy == "pm2":
        out += [(f"PM2_DEPLOY_{key}", "vars") for key in ("HOST", "USER", "REPO", "PATH")]
        out += [("SSH_PRIVATE_KEY", "secrets"), ("SSH_KNOWN_HOSTS", "vars")]
    elif deploy == "compose":
        out += [("DEPLOY_HOST", "vars"), ("DEPLOY_USER", "vars"), ("DEPLOY_PORT", "vars")]
        out += [("SSH_PRIVATE_KEY", "secrets"), ("SSH_KNOWN_HOSTS", "vars")]
        # compose.production.yaml passes secrets through by name from the environment of
        # `docker compose`, which runs in the CI job.
        out += [(name, "secrets") for name in project.secrets]
    out += [(s["variable"], "vars") for s in smoke if s["variable"]]
    return [{"name": n, "source": source} for n, source in out]


def _promotion(project: Project) -> dict[str, str]:
    """Which environment promotes the digests another one verified.

    An environment with approval promotes what `staging` verified, when an environment of that
    name exists: production then deploys the very image digests staging ran.
    """
    names = {e.name for e in project.environments}
    if "staging" not in names:
        return {}
    return {e.name: "staging" for e in project.environments if e.approval and e.name != "staging"}


def view(project: Project) -> dict[str, Any]:
    """What the CI templates need beyond the model."""
    ci, deploy = project.targets.ci, project.deploy
    # PM2 deploys commits, not images: each environment deploys its own branch's commit.
    promotion = _promotion(project) if deploy not in ("none", "pm2") else {}
    sources = set(promotion.values())
    environments = [
        _environment(project, e, promotion.get(e.name, ""), e.name in sources)
        for e in project.environments
    ]
    # Sources first, so a pipeline lists staging before the production that promotes it.
    environments.sort(key=lambda e: (bool(e["promote_from"]), e["name"]))
    tests: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for image in project.images:
        key = (image.runtime, image.version, image.path, image.package_manager)
        tests.setdefault(key, _test(image))
    registry = _registry(project)
    cloud = CLOUD.get(deploy, "")
    uses_images = deploy not in ("none", "pm2")

    def login(with_registry: bool) -> dict[str, bool]:
        """Which sign-in steps a job needs: its cloud, and the registry's when it pushes."""
        kind = registry["kind"] if with_registry else ""
        return {
            "aws": cloud == "aws" or kind == "ecr",
            "gcp": cloud == "gcp" or kind == "gar",
            "azure": cloud == "azure" or kind == "acr",
            "registry": with_registry,
            "oidc": bool(cloud) or kind in ("ecr", "gar", "acr"),
            "packages": kind == "ghcr",
        }

    all_branches = sorted({e.branch for e in project.environments})

    def gitlab_any(branches: list[str]) -> str:
        return " || ".join(f'$CI_COMMIT_BRANCH == "{b}"' for b in branches)

    tokens = {
        "aws": {"AWS_ID_TOKEN": "sts.amazonaws.com"},
        "gcp": {"GCP_ID_TOKEN": "https://iam.googleapis.com/$GCP_WORKLOAD_IDENTITY_PROVIDER"},
        "azure": {"AZURE_ID_TOKEN": "api://AzureADTokenExchange"},
    }
    registry_cloud = {"ecr": "aws", "gar": "gcp", "acr": "azure"}.get(registry["kind"], "")
    publish_if = (
        "github.event_name == 'push' && contains(fromJSON('"
        + json.dumps(sorted({e.branch for e in project.environments}))
        + "'), github.ref_name)"
    )
    return {
        "ci": ci,
        "platform": deploy,
        "script": f"deploy/{deploy}.sh",
        "cloud": cloud,
        "registry": registry,
        "uses_images": uses_images,
        # Sign-ins: a deploy job pushes (or promotes) images, a rollback job does not; with
        # deploy none the CI workflow pushes with repository-level credentials.
        "login_deploy": login(uses_images),
        "login_rollback": login(False),
        "login_publish": login(True),
        "images": [_image(project, i) for i in project.images],
        "tests": list(tests.values()),
        "environments": environments,
        "deploy_environments": environments if deploy != "none" else [],
        "branches": sorted({e.branch for e in project.environments}),
        # Images are built when a Dockerfile is generated or a deploy runs them. With deploy
        # none, a push to an environment branch publishes them (the publish job).
        "build_images": project.targets.docker or uses_images,
        "github_publish_if": publish_if,
        "github_images_if": f"!({publish_if})" if deploy == "none" else "",
        "test_jobs": [f"test-{t['name']}" for t in tests.values()],
        # GitLab: where the build-and-scan-only job does not run (a publish, promote or, with
        # deploy none, the publish job builds there instead), and the OIDC tokens jobs ask for.
        "gitlab_skip_images_rule": gitlab_any(
            all_branches if uses_images or deploy == "none" else []
        ),
        "gitlab_publish_rule": gitlab_any(all_branches),
        "gitlab_deploy_tokens": tokens.get(cloud, {}),
        "gitlab_registry_tokens": tokens.get(registry_cloud, {}),
        "gitlab_registry_cloud": registry_cloud,
        "any_release": any(s.release for s in project.services),
        "platform_image": PLATFORM_IMAGE.get(deploy, ""),
        "gcloud_version": GCLOUD_VERSION,
        "docker_image": DOCKER_IMAGE,
        "dind_image": DIND_IMAGE,
        "trivy_image": TRIVY_IMAGE,
        "uv_version": UV_VERSION,
        "poetry_version": POETRY_VERSION,
    }


def _where(ci: str, kind: str, environment: str) -> str:
    """Where a CI variable is set, in the CI system's own words."""
    if ci == "github":
        if not environment:
            return "repository: Settings > Secrets and variables > Actions > Variables"
        tab = "Environment secrets" if kind == "secret" else "Environment variables"
        return f"Settings > Environments > `{environment}` > {tab}"
    scope = f"environment scope `{environment}`" if environment else "all environments"
    extra = {"secret": ", masked and protected", "file": ", type File"}.get(kind, "")
    return f"Settings > CI/CD > Variables, {scope}{extra}"


def pipeline_variables(project: Project) -> list[dict[str, Any]]:
    """Every CI variable and secret the pipeline reads, per environment, with where it is set.

    One group per deploy environment, then (GitHub) the repository-level ones. The names come
    from the same facts the templates use: the cloud sign-in, the registry login, the deploy
    script's variables and the approval fallback.
    """
    v = view(project)
    ci = v["ci"]
    if ci == "none":
        return []
    rows_by_env: list[dict[str, Any]] = []

    def add(rows: list[dict[str, str]], name: str, kind: str, purpose: str) -> None:
        if all(r["name"] != name for r in rows):
            rows.append({"name": name, "kind": kind, "purpose": purpose})

    def login_rows(
        rows: list[dict[str, str]], login: dict[str, bool], role: str, region: str, provider: str
    ) -> None:
        """The variables each cloud's OIDC sign-in reads (what differs: their purpose)."""
        if login["aws"]:
            add(rows, "AWS_ROLE_ARN", "variable", role)
            add(rows, "AWS_REGION", "variable", region)
        if login["gcp"]:
            add(rows, "GCP_WORKLOAD_IDENTITY_PROVIDER", "variable", provider)
            add(rows, "GCP_SERVICE_ACCOUNT", "variable", "the CI service account's e-mail")
            add(rows, "GCP_PROJECT", "variable", "the project id")
        if login["azure"]:
            add(rows, "AZURE_CLIENT_ID", "variable", "the CI identity's client id")
            add(rows, "AZURE_TENANT_ID", "variable", "the tenant id")
            add(rows, "AZURE_SUBSCRIPTION_ID", "variable", "the subscription id")

    def registry_rows(rows: list[dict[str, str]], promotes: str) -> None:
        kind, literal = v["registry"]["kind"], v["registry"]["literal"]
        if kind == "basic":
            add(rows, "REGISTRY_USERNAME", "variable", f"user of {v['registry']['host']}")
            add(
                rows, "REGISTRY_PASSWORD", "secret", f"password or token of {v['registry']['host']}"
            )
        if kind == "gar" and not literal:
            add(
                rows,
                "GCP_ARTIFACT_REGISTRY",
                "variable",
                "`<region>-docker.pkg.dev/<project>/<repository>`",
            )
        if kind == "acr" and not literal:
            add(rows, "AZURE_CONTAINER_REGISTRY", "variable", "the registry's login server")
        if kind in ("ecr", "gar", "acr") and (promotes or ci == "github"):
            add(
                rows,
                "SOURCE_REGISTRY",
                "variable",
                f"optional: {promotes or 'the environment promoted from'}'s registry, when it is another one",
            )

    login = v["login_deploy"]
    for env in v["deploy_environments"]:
        rows: list[dict[str, str]] = []
        login_rows(
            rows,
            login,
            "the CI role (Terraform output `ci_role_arn`)",
            "the stack's region",
            "`projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`",
        )
        if v["uses_images"]:
            registry_rows(rows, env["promote_from"])
        if v["platform"] == "kubernetes":
            if ci == "github":
                add(rows, "KUBE_CONFIG", "secret", "the kubeconfig of the environment's cluster")
            else:
                add(
                    rows,
                    "KUBECONFIG",
                    "file",
                    "the kubeconfig of the environment's cluster (or the GitLab agent)",
                )
        for variable in env["variables"]:
            kind = "secret" if variable["source"] == "secrets" else "variable"
            purpose = {
                "ECS_SUBNETS": "Terraform output `ecs_subnets`, comma-separated (release tasks)",
                "GCP_REGION": "the region of the services",
                "DEPLOY_PORT": "optional: the SSH port (22)",
                "SSH_KNOWN_HOSTS": "the host's `ssh-keyscan` lines, checked by you",
                "SSH_PRIVATE_KEY": "the deploy key",
            }.get(variable["name"], "")
            if variable["name"].startswith("ECS_SECURITY_GROUPS_"):
                purpose = "Terraform output `ecs_security_groups`, comma-separated (release task)"
            elif variable["name"].startswith("SMOKE_URL_"):
                purpose = "base URL the smoke test reaches the service at (no domain)"
            elif variable["name"].startswith("PM2_DEPLOY_"):
                purpose = "pm2 deploy target (or the same name ending in `_" + env["var"] + "`)"
            elif not purpose and kind == "secret":
                purpose = "passed by `docker compose` to the containers"
            add(rows, variable["name"], kind, purpose)
        rows_by_env.append(
            {
                "name": env["name"],
                "rows": [{**r, "where": _where(ci, r["kind"], env["name"])} for r in rows],
            }
        )
    repository: list[dict[str, str]] = []
    if ci == "github" and any(e["approval"] for e in v["deploy_environments"]):
        add(
            repository,
            "MANUAL_APPROVAL",
            "variable",
            "optional: `true` makes environments with approval deploy only by hand",
        )
    if not v["deploy_environments"] and v["build_images"]:
        registry_rows(repository, "")
        login_rows(
            repository,
            v["login_publish"],
            "the CI role that pushes images",
            "the registry's region",
            "the Workload Identity provider",
        )
    if repository:
        rows_by_env.append(
            {"name": "", "rows": [{**r, "where": _where(ci, r["kind"], "")} for r in repository]}
        )
    return rows_by_env


MARKER = "Generated by shipforge"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


class _Loader(yaml.CSafeLoader):
    """YAML 1.2-ish: `on` stays a string key, as GitHub reads it."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_github(path: str, document: Any) -> list[Issue]:
    issues: list[Issue] = []
    if "permissions" not in document:
        issues.append(Issue("no top-level permissions", path))
    for name, job in (document.get("jobs") or {}).items():
        where = f"jobs.{name}"
        if "uses" in job:
            if not str(job["uses"]).startswith("./"):
                issues.append(Issue("reusable workflows must be local", path, path=where))
            continue
        if "timeout-minutes" not in job:
            issues.append(Issue("job without timeout-minutes", path, path=where))
        if "permissions" not in job:
            issues.append(Issue("job without its own permissions", path, path=where))
        for index, step in enumerate(job.get("steps") or []):
            at = f"{where}.steps.{index}"
            uses = str(step.get("uses", ""))
            if uses and not uses.startswith("./") and not SHA_PIN.match(uses):
                issues.append(Issue(f"action not pinned to a commit: {uses}", path, path=at))
            persist = str((step.get("with") or {}).get("persist-credentials", "true"))
            if uses.startswith("actions/checkout@") and persist.lower() != "false":
                issues.append(Issue("checkout must not persist credentials", path, path=at))
            if "${{" in str(step.get("run", "")):
                issues.append(Issue("an expression inside run:", path, path=at))
    return issues


def _check_gitlab(path: str, document: Any) -> list[Issue]:
    issues: list[Issue] = []
    for name, job in document.items():
        if not isinstance(job, dict) or name.startswith(".") or "script" not in job:
            continue
        environment = job.get("environment")
        deploys = isinstance(environment, dict) and environment.get("action", "start") == "start"
        if deploys and "resource_group" not in job:
            issues.append(Issue("deploy job without resource_group", path, path=name))
        if "timeout" not in job:
            issues.append(Issue("job without timeout", path, path=name))
    return issues


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """Pipelines parse and keep their security rules; every script is strict bash."""
    issues: list[Issue] = []
    for file in files:
        if file.path.endswith("package-lock.json"):
            continue  # npm's own lockfile: JSON without comments, byte for byte as npm wrote it
        if MARKER not in file.content[:400]:
            issues.append(Issue("does not say it was generated by shipforge", file.path))
        if file.path.endswith(".json"):
            continue
        if file.path.endswith(".sh"):
            if not file.content.startswith("#!/usr/bin/env bash\n"):
                issues.append(Issue("scripts start with #!/usr/bin/env bash", file.path))
            if not file.executable:
                issues.append(Issue("script is not executable", file.path))
            if "set -euo pipefail" not in file.content and not file.path.endswith("lib.sh"):
                issues.append(Issue("script without set -euo pipefail", file.path))
            continue
        try:
            document = fastyaml.load(file.content, _Loader)
        except yaml.YAMLError as error:
            issues.append(Issue(f"not valid YAML: {error}", file.path))
            continue
        if file.path.startswith(".github/"):
            issues.extend(_check_github(file.path, document))
        else:
            issues.extend(_check_gitlab(file.path, document))
    return issues
