"""runbook: DEPLOYMENT.md, the project's own runbook (topology, secrets, first deploy, rollback)."""

from __future__ import annotations

from typing import Any

from generator import naming
from generator.errors import Issue
from generator.model import Project
from generator.render import Rendered
from generator.targets import ci

TEMPLATES = ("*DEPLOYMENT.md*",)


def _mermaid(project: Project) -> list[str]:
    """A flowchart: the internet reaches public services, services reach their datastores."""
    lines = ["flowchart LR"]
    if any(s.public for s in project.services):
        lines.append('  internet(("internet"))')
    for service in project.services:
        kind = f"web :{service.port}" if service.web else "worker"
        count = (
            f"{service.autoscale.min}-{service.autoscale.max}"
            if service.autoscale
            else str(service.replicas)
        )
        lines.append(f'  {service.name}["{service.name}<br/>{kind}, x{count}"]')
    for store in project.datastores:
        lines.append(f'  {store.name}[("{store.name} {store.version}")]')
    for service in project.services:
        if service.public:
            lines.append(f"  internet --> {service.name}")
        lines.extend(f"  {service.name} --> {store}" for store in service.uses)
    return lines


def view(project: Project) -> dict[str, Any]:
    """The runbook's diagram, secret table and per-environment facts."""
    public = sum(s.public for s in project.services)
    secrets = [
        {
            "name": name,
            "services": [
                s.name for s in project.services if name in s.secrets or name in s.datastore_secrets
            ],
        }
        for name in project.secrets
    ]
    environments = [
        {
            "name": env.name,
            "branch": env.branch,
            "approval": env.approval,
            "namespace": naming.namespace(project.name, env.name),
            "urls": [
                f"https://{naming.public_host(s.name, env.domain, public)}{s.health}"
                for s in project.services
                if s.public and env.domain and s.health
            ],
        }
        for env in project.environments
    ]
    # The first deploy starts where no approval is needed (staging, by default).
    first = next((e for e in project.environments if not e.approval), project.environments[0])
    return {
        "mermaid": _mermaid(project),
        "secrets": secrets,
        "environments": environments,
        "first_branch": first.branch,
        "releases": [{"name": s.name, "release": s.release} for s in project.services if s.release],
        # Every CI variable and secret the pipeline reads, per environment, with where it is set.
        "ci_variables": ci.pipeline_variables(project),
    }


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """The runbook names every secret the project uses and every CI variable the pipeline reads."""
    issues = []
    variables = [r["name"] for g in ci.pipeline_variables(project) for r in g["rows"]]
    for file in files:
        missing = [name for name in project.secrets if f"`{name}`" not in file.content]
        if missing:
            issues.append(Issue(f"secrets missing from the runbook: {missing}", file.path))
        missing = [name for name in variables if f"`{name}`" not in file.content]
        if missing:
            issues.append(Issue(f"CI variables missing from the runbook: {missing}", file.path))
    return issues
