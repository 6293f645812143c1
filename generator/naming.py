"""Platform resource names, shared by every target that names the same thing.

Kubernetes, Terraform and the CI deploy scripts must agree on what a service is called in each
environment; this module is the one place that decides it. Names that exceed a platform's
limit are cut and given a short hash of the full name, so they stay unique and stable.
"""

from __future__ import annotations

import hashlib

# Platform limits on resource names.
DNS_LABEL = 63  # Kubernetes namespaces, services, labels
CLOUD_RUN = 49  # Cloud Run service names
CONTAINER_APP = 32  # Azure Container Apps names


def fit(name: str, limit: int) -> str:
    """The name itself when short enough, else a prefix and a 6-character hash of the whole."""
    if len(name) <= limit:
        return name
    suffix = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: limit - 7].rstrip('-')}-{suffix}"


def namespace(project: str, environment: str) -> str:
    """The Kubernetes namespace of an environment."""
    return fit(f"{project}-{environment}", DNS_LABEL)


def stack(project: str, environment: str) -> str:
    """The cloud-side prefix of an environment: ECS cluster, resource group suffix, etc."""
    return fit(f"{project}-{environment}", DNS_LABEL)


def cloud_run_service(project: str, environment: str, service: str) -> str:
    """The Cloud Run service name of a service in an environment."""
    return fit(f"{project}-{environment}-{service}", CLOUD_RUN)


def container_app(project: str, environment: str, service: str) -> str:
    """The Azure Container App name of a service in an environment."""
    return fit(f"{project}-{environment}-{service}", CONTAINER_APP)


def ecs_service(project: str, environment: str, service: str) -> str:
    """The ECS service name (and task definition family) of a service in an environment."""
    return fit(f"{project}-{environment}-{service}", 255)


def public_host(service: str, domain: str, public_services: int) -> str:
    """Where a public service is served in an environment with this domain ("" without one).

    The only public service gets the domain itself; with several, each gets <service>.<domain>.
    """
    if not domain:
        return ""
    return domain if public_services == 1 else f"{service}.{domain}"


def pm2_app(project: str, service: str) -> str:
    """The PM2 app name of a service: unique on a host that runs several projects' apps."""
    return f"{project}-{service}"


def cloud_run_job(project: str, environment: str, service: str) -> str:
    """The Cloud Run job that runs a service's `release` command in an environment."""
    return fit(f"{project}-{environment}-{service}-release", CLOUD_RUN)


def container_app_job(project: str, environment: str, service: str) -> str:
    """The Azure Container Apps job that runs a service's `release` command in an environment."""
    return fit(f"{project}-{environment}-{service}-release", CONTAINER_APP)


def resource_group(project: str, environment: str) -> str:
    """The Azure resource group holding an environment's Container Apps (and its jobs)."""
    return fit(f"rg-{stack(project, environment)}", 90)
