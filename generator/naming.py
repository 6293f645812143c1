"""Platform resource names, shared by every target that names the same thing.

Kubernetes, Terraform and the CI deploy scripts must agree on what a service is called in each
environment, and on the registry its images live in; this module is the one place that decides
both. Names that exceed a platform's limit are cut and given a short hash of the full name, so
they stay unique and stable.
"""

from __future__ import annotations

import hashlib
import re

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


# --- the image registry --------------------------------------------------------------------

ECR_HOST = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?$"
)
GAR_HOST = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev$")
ACR_HOST = re.compile(r"^(?P<name>[a-z0-9]+)\.azurecr\.io$")
# The registry kind each cloud's Terraform stack creates and its services pull from natively.
CLOUD_REGISTRY = {"aws-ecs": "ecr", "gcp-cloud-run": "gar", "azure-container-apps": "acr"}


def registry(literal: str, ci: str, cloud: str) -> dict[str, str]:
    """Where images go: one decision for CI (deploy/images.sh), the deploy scripts and Terraform.

    `literal` is `project.registry` ("" for none), `ci` the CI system and `cloud` the platform
    the images run on (a Terraform or deploy target, "" for none). kind is ecr / gar / acr (the
    clouds' registries, signed in with the cloud's OIDC identity), ghcr or gitlab (the CI
    system's own token) or basic (a user and password). `stack` says what a cloud stack does:
    `own` (it creates the registry: no literal), `given` (the literal is the cloud's own kind of
    registry, in this or another account: the stack references it and grants access) or
    `external` (another registry: services pull with a credential from the secret store).
    `images` is the prefix every image repository gets: `<images>/<project>-<image>`.
    """
    literal = literal.rstrip("/")
    host, _, path = literal.partition("/")
    out = {"literal": literal, "host": host, "path": path, "images": literal}
    if not literal:
        kind = CLOUD_REGISTRY.get(cloud, "ghcr" if ci == "github" else "gitlab")
    elif match := ECR_HOST.match(host):
        kind = "ecr"
        out.update(account=match["account"], region=match["region"])
        out["partition"] = "aws-cn" if match["cn"] else "aws"
    elif match := GAR_HOST.match(host):
        kind = "gar"
        project, _, rest = path.partition("/")
        repository = rest.split("/")[0]
        out.update(location=match["location"], project=project, repository=repository)
    elif match := ACR_HOST.match(host):
        kind = "acr"
        out.update(name=match["name"])
    elif ci == "github" and host == "ghcr.io":
        kind = "ghcr"
    elif ci == "gitlab" and host == "registry.gitlab.com":
        kind = "gitlab"
    else:
        kind = "basic"
    out["kind"] = kind
    if cloud in CLOUD_REGISTRY:
        native = kind == CLOUD_REGISTRY[cloud]
        out["stack"] = "own" if not literal else "given" if native else "external"
    else:
        out["stack"] = ""
    return out


def registry_refusal(literal: str, ci: str, cloud: str) -> tuple[str, str] | None:
    """(problem, hint) when `cloud` cannot run images from `literal`, else None.

    Cloud Run deploys images from Artifact Registry, and public Docker Hub images only (the
    Cloud Run docs, "Supported container registries and images"); a registry CI pushes private
    images to is refused rather than left to fail at the first deploy.
    """
    found = registry(literal, ci, cloud)
    if cloud != "gcp-cloud-run" or not literal:
        return None
    if found["stack"] == "external":
        return (
            f"Cloud Run cannot run images from {found['host']}: it deploys images from Artifact "
            "Registry only (and public Docker Hub images)",
            "set project.registry to an Artifact Registry repository "
            "(<location>-docker.pkg.dev/<project>/<repository>), or remove it: the Terraform "
            "stack then creates one per environment",
        )
    if not found["repository"]:
        return (
            f"{literal} names no Artifact Registry repository",
            "write it as <location>-docker.pkg.dev/<project>/<repository>",
        )
    return None
