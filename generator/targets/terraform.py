"""terraform: a stack for one cloud (AWS ECS/Fargate, GCP Cloud Run, Azure Container Apps).

The view derives what the HCL templates need and the model does not hold: per-environment
resource names (from generator/naming.py, shared with the CI deploy scripts), each service's
size rounded up to what the platform accepts, HCL identifiers, and the datastore versions each
cloud offers. An impossible size is refused here, with its place, rather than left to
`terraform apply`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from generator import naming
from generator.errors import InvalidDescriptor, Issue
from generator.model import Project, Service
from generator.render import Rendered

TEMPLATES = (
    '{% if model.targets.terraform != "none" %}terraform{% endif %}/*',
    "_shipforge_macros/terraform.jinja",
)

CLOUDS = ("aws-ecs", "gcp-cloud-run", "azure-container-apps")

# Fargate task sizes (CPU units, valid memory MiB), Linux platform 1.4.0.
FARGATE: tuple[tuple[int, tuple[int, ...]], ...] = (
    (256, (512, 1024, 2048)),
    (512, tuple(range(1024, 4096 + 1, 1024))),
    (1024, tuple(range(2048, 8192 + 1, 1024))),
    (2048, tuple(range(4096, 16384 + 1, 1024))),
    (4096, tuple(range(8192, 30720 + 1, 1024))),
    (8192, tuple(range(16384, 61440 + 1, 4096))),
    (16384, tuple(range(32768, 122880 + 1, 8192))),
)
# Cloud Run: whole vCPUs; memory floor per CPU count and CPU floor per memory (MiB).
CLOUD_RUN_CPUS = (1, 2, 4, 6, 8)
CLOUD_RUN_MEMORY_FLOOR = {1: 512, 2: 512, 4: 2048, 6: 4096, 8: 4096}
CLOUD_RUN_CPU_FOR_MEMORY = ((24 * 1024, 8), (16 * 1024, 6), (8 * 1024, 4), (4 * 1024, 2))
CLOUD_RUN_MAX_MEMORY = 32 * 1024
# Azure Container Apps (Consumption workload profile): 0.25 vCPU steps, 2 GiB per vCPU, 4 vCPU.
AZURE_STEP_MILLIS = 250
AZURE_MAX_MILLIS = 4000

# Major versions each managed service offers when the descriptor names only a major.
AWS_REDIS_ENGINE = {"6": "6.2", "7": "7.1"}
GCP_REDIS_VERSION = {"6": "REDIS_6_X", "7": "REDIS_7_2"}
# Azure Managed Redis runs Redis 7.4 (documented in docs/terraform.md).
AZURE_REDIS_VERSION = "7.4"


def _mebibytes(quantity: str) -> int:
    return int(quantity[:-2]) * (1024 if quantity.endswith("Gi") else 1)


def _ident(name: str) -> str:
    """An HCL identifier for a DNS-label or UPPER_SNAKE name."""
    key = re.sub(r"[^a-z0-9_]", "_", name.lower())
    return key if key[0].isalpha() else f"x{key}"


def _volume_key(service: str, volume: str) -> str:
    return f"{_ident(service)}__{_ident(volume)}"


# Resource labels a stack uses for itself; a service whose identifier equals one would clash.
RESERVED = {
    "aws-ecs": {"alb", "efs", "flow_logs", "internal", "main", "postgres", "redis", "waf"},
    "gcp-cloud-run": {"ci", "images", "main"},
    "azure-container-apps": {"ci", "main", "volumes"},
}


def _refuse_clashes(cloud: str, project: Project) -> None:
    """Names that would become the same HCL identifier or cloud name are refused, with places."""
    issues: list[Issue] = []
    for service in project.services:
        if _ident(service.name) in RESERVED[cloud]:
            issues.append(
                Issue(
                    f"the {cloud} stack uses the name `{service.name}` for a resource of its own",
                    "shipforge.yaml",
                    path=f"services.{service.name}",
                    hint="rename the service",
                )
            )
    seen: dict[str, str] = {}
    names = sorted({n for s in project.services for n in (*s.datastore_secrets, *s.secrets)})
    for name in names:
        derived_names = [f"identifier {_ident(name)}"]
        if cloud == "azure-container-apps":
            derived_names.append(f"Key Vault secret name {_kebab(name)}")
        for derived in derived_names:
            other = seen.setdefault(derived, name)
            if other != name:
                issues.append(
                    Issue(
                        f"secrets {other} and {name} map to the same {derived}",
                        "shipforge.yaml",
                        path="services",
                        hint="rename one of the secrets",
                    )
                )
    if issues:
        raise InvalidDescriptor(
            "the descriptor does not fit the chosen Terraform target", tuple(issues)
        )


def _kebab(name: str) -> str:
    """A Key Vault / Container Apps secret name: lowercase letters, digits and single dashes."""
    return re.sub(r"-+", "-", name.lower().replace("_", "-")).strip("-")


def fargate_size(cpu_millis: int, memory_mib: int) -> tuple[int, int] | None:
    """The smallest valid Fargate (cpu units, memory MiB) at least as large as asked."""
    units = math.ceil(cpu_millis * 1024 / 1000)
    for cpu, memories in FARGATE:
        if cpu < units:
            continue
        for memory in memories:
            if memory >= memory_mib:
                return cpu, memory
    return None


def cloud_run_size(cpu_millis: int, memory_mib: int) -> tuple[int, int] | None:
    """Whole vCPUs and memory MiB that Cloud Run accepts, at least as large as asked."""
    if memory_mib > CLOUD_RUN_MAX_MEMORY:
        return None
    floor = next((cpus for limit, cpus in CLOUD_RUN_CPU_FOR_MEMORY if memory_mib > limit), 1)
    cpu = next((c for c in CLOUD_RUN_CPUS if c * 1000 >= cpu_millis and c >= floor), None)
    if cpu is None:
        return None
    return cpu, max(memory_mib, CLOUD_RUN_MEMORY_FLOOR[cpu])


def container_apps_size(cpu_millis: int, memory_mib: int) -> tuple[str, str] | None:
    """A Consumption-profile (cpu, memory) pair: 0.25 vCPU steps with 2 GiB per vCPU."""
    steps = max(math.ceil(cpu_millis / AZURE_STEP_MILLIS), math.ceil(memory_mib / 512), 1)
    millis = steps * AZURE_STEP_MILLIS
    if millis > AZURE_MAX_MILLIS:
        return None
    cpu = f"{millis / 1000:.2f}".rstrip("0").rstrip(".")
    memory_gib = millis * 2 / 1000
    memory = f"{memory_gib:.1f}".rstrip("0").rstrip(".") + "Gi"
    return cpu, memory


def _size(cloud: str, service: Service) -> dict[str, Any]:
    where = f"services.{service.name}"
    if cloud == "aws-ecs":
        fargate = fargate_size(service.cpu_millis, service.memory_mib)
        if fargate is None:
            raise _too_big(where, "Fargate tasks", "16 vCPU and 120 GiB")
        return {"cpu": fargate[0], "memory": fargate[1]}
    if cloud == "gcp-cloud-run":
        run = cloud_run_size(service.cpu_millis, service.memory_mib)
        if run is None:
            raise _too_big(where, "Cloud Run instances", "8 vCPU and 32 GiB")
        return {"cpu": str(run[0]), "memory": f"{run[1]}Mi"}
    apps = container_apps_size(service.cpu_millis, service.memory_mib)
    if apps is None:
        raise _too_big(where, "Container Apps (Consumption profile)", "4 vCPU and 8 GiB")
    return {"cpu": apps[0], "memory": apps[1]}


def _too_big(where: str, platform: str, limit: str) -> InvalidDescriptor:
    return InvalidDescriptor(
        "the descriptor does not fit the chosen Terraform target",
        (
            Issue(
                f"cpu/memory exceed what {platform} offer ({limit})",
                "shipforge.yaml",
                path=where,
                hint="lower cpu or memory, or choose another targets.terraform",
            ),
        ),
    )


def ci_identity(project: Project) -> dict[str, Any]:
    """Who may deploy: the CI system whose OIDC tokens the stack trusts (GitHub unless GitLab).

    One decision for every cloud's trust (issuer, subject, variables) and resource labels.
    """
    gitlab = project.targets.ci == "gitlab"
    return {
        "label": "gitlab" if gitlab else "github",
        "gitlab": gitlab,
        "title": "GitLab CI" if gitlab else "GitHub Actions",
        "issuer_name": "the GitLab instance (var.gitlab_url)"
        if gitlab
        else "GitHub Actions (token.actions.githubusercontent.com)",
        "repository_variable": "gitlab_project" if gitlab else "github_repository",
        "repository_example": "<group>/<project>" if gitlab else "<owner>/<repo>",
    }


def stack_registry(project: Project) -> dict[str, str]:
    """The registry the stack's services pull from: the one CI pushes to (generator/naming.py).

    The loader already refused one the cloud cannot pull from; this guards direct callers.
    """
    cloud = project.targets.terraform
    refusal = naming.registry_refusal(project.registry, project.targets.ci, cloud)
    if refusal:
        raise InvalidDescriptor(
            "the descriptor does not fit the chosen Terraform target",
            (Issue(refusal[0], "shipforge.yaml", path="project.registry", hint=refusal[1]),),
        )
    return naming.registry(project.registry, project.targets.ci, cloud)


def _names(cloud: str, project: Project, env: str) -> dict[str, Any]:
    """Every length-limited or CI-shared resource name of one environment."""
    p = project.name
    stack = naming.stack(p, env)
    services: dict[str, dict[str, str]] = {}
    if cloud == "aws-ecs":
        for s in project.services:
            services[_ident(s.name)] = {
                "service": naming.ecs_service(p, env, s.name),
                "task_role": naming.fit(f"{stack}-{s.name}-task", 64),
                "execution_role": naming.fit(f"{stack}-{s.name}-exec", 64),
            }
            if s.public:
                services[_ident(s.name)]["target_group"] = naming.fit(f"{stack}-{s.name}", 32)
        efs = {
            f"efs_{_volume_key(s.name, v.name)}": naming.fit(f"{stack}-{s.name}-{v.name}", 64)
            for s in project.services
            for v in s.volumes
        }
        return {
            "stack": stack,
            **efs,
            "load_balancer": naming.fit(stack, 32),
            "alb_logs_prefix": f"{naming.fit(stack, 26)}-alb-",
            "ci_role": naming.fit(f"{stack}-ci", 64),
            "flow_logs_role": naming.fit(f"{stack}-flow-logs", 64),
            "rds_monitoring_role": naming.fit(f"{stack}-rds-monitoring", 64),
            "postgres": naming.fit(stack, 63),
            "redis": naming.fit(stack, 40),
            "services": services,
        }
    if cloud == "gcp-cloud-run":
        for s in project.services:
            services[_ident(s.name)] = {
                "service": naming.cloud_run_service(p, env, s.name),
                "job": naming.cloud_run_job(p, env, s.name),
                "account": naming.fit(f"{stack}-{s.name}-sa", 30),
            }
        buckets = {
            f"bucket_{_volume_key(s.name, v.name)}": naming.fit(f"{stack}-{s.name}-{v.name}", 54)
            for s in project.services
            for v in s.volumes
        }
        return {
            "stack": stack,
            **buckets,
            "ci_account": naming.fit(f"{stack}-ci", 30),
            # Compute Engine names: 1-63 characters (RFC 1035).
            "deny_ingress": naming.fit(f"{stack}-deny-ingress", 63),
            "private_services": naming.fit(f"{stack}-private-services", 63),
            "identity_pool": naming.fit(f"{stack}-{ci_identity(project)['label']}", 32),
            "postgres": naming.fit(f"{stack}-pg", 80),
            "redis": naming.fit(f"{stack}-redis", 40),
            "services": services,
        }
    compact = stack.replace("-", "")
    for s in project.services:
        services[_ident(s.name)] = {
            "app": naming.container_app(p, env, s.name),
            "job": naming.container_app_job(p, env, s.name),
            "identity": naming.fit(f"id-{stack}-{s.name}", 128),
        }
    return {
        "stack": stack,
        "resource_group": naming.resource_group(p, env),
        "log_workspace": naming.fit(f"log-{stack}", 63),
        "network": naming.fit(f"vnet-{stack}", 64),
        "apps_environment": naming.fit(f"cae-{stack}", 60),
        # Globally unique names get a hash of the subscription appended in HCL.
        "registry_prefix": f"cr{compact[:42]}",
        "key_vault_prefix": f"kv{compact[:16]}",
        "storage_prefix": f"st{compact[:16]}",
        "postgres_prefix": naming.fit(f"psql-{stack}", 56),
        "redis_prefix": naming.fit(f"redis-{stack}", 53),
        "redis_endpoint": naming.fit(f"pe-{stack}-redis", 64),
        "ci_identity": naming.fit(f"id-{stack}-ci", 128),
        "services": services,
    }


def _unknown_inputs(cloud: str, project: Project, domain: bool) -> list[str]:
    """The variables an environment's tfvars cannot set (README.md says where they come from)."""
    repository = ci_identity(project)["repository_variable"]
    if cloud == "aws-ecs":
        public = any(s.public for s in project.services)
        return [
            "region",
            repository,
            "image_tag",
            *(["certificate_arn"] if public and domain else []),
        ]
    if cloud == "gcp-cloud-run":
        return ["project_id", "region", repository, "image_tag"]
    postgres = any(store.name == "postgres" for store in project.datastores)
    return [
        "subscription_id",
        "location",
        repository,
        "image_tag",
        *(["postgres_admin_password"] if postgres else []),
    ]


def _aligned(values: dict[str, str]) -> list[dict[str, str]]:
    """Attribute lines with their keys padded as `terraform fmt` aligns consecutive lines."""
    width = max((len(k) for k in values), default=0)
    return [{"key": k.ljust(width), "value": v} for k, v in values.items()]


def view(project: Project) -> dict[str, Any]:
    """What the Terraform templates need beyond the model (empty when the target is off)."""
    cloud = project.targets.terraform
    if cloud not in CLOUDS:
        return {"cloud": cloud}
    _refuse_clashes(cloud, project)
    registry = stack_registry(project)

    secret_users: dict[str, list[str]] = {}
    for s in project.services:
        for name in (*s.datastore_secrets, *s.secrets):
            secret_users.setdefault(name, []).append(s.name)
    datastore_urls = {link.variable for s in project.services for link in s.datastore_env}
    secrets = [
        {
            "name": name,
            "key": _ident(name),
            "kebab": _kebab(name),
            "users": users,
            "user_keys": [_ident(u) for u in users],
            "datastore": name in datastore_urls,
        }
        for name, users in secret_users.items()
    ]
    secret_of = {s["name"]: s for s in secrets}
    # The secret each datastore's connection URL lives in (when a service uses the store):
    # Terraform writes it from the store it creates, so the first apply works in one go.
    datastore_secrets = {
        store.name: _ident(store.url_variable)
        for store in project.datastores
        if store.url_variable in secret_of
    }

    services: list[dict[str, Any]] = []
    for s in project.services:
        scale = s.autoscale
        services.append(
            {
                "name": s.name,
                "key": _ident(s.name),
                "web": s.web,
                "public": s.public,
                "port": s.port,
                "health": s.health,
                "replicas": s.replicas,
                "min": scale.min if scale else s.replicas,
                "max": s.max_instances,
                "autoscale": scale is not None,
                "cpu_target": scale.cpu if scale else 0,
                "argv": list(s.argv),
                "release": bool(s.release),
                "release_argv": list(s.release_argv),
                "env": [{"name": e.name, "value": e.value} for e in s.env],
                "secrets": [secret_of[name] for name in (*s.datastore_secrets, *s.secrets)],
                "image": _ident(s.image),
                "healthcheck": list(s.healthcheck),
                "uses": list(s.uses),
                "cpu": s.cpu,
                "memory": s.memory,
                "volumes": [
                    {
                        "name": volume.name,
                        "key": _volume_key(s.name, volume.name),
                        "mount": volume.mount,
                        "share": f"{s.name}-{volume.name}",
                        # Azure Files share names: 3-63 characters; environment storage
                        # names (referenced by the apps): at most 32.
                        "azure_share": naming.fit(f"{s.name}-{volume.name}", 63),
                        "azure_storage": naming.fit(f"{s.name}-{volume.name}", 32),
                        "gib": max(1, math.ceil(_mebibytes(volume.size) / 1024)),
                    }
                    for volume in s.volumes
                ],
                # A service with a volume is replaced, never doubled, during a deploy: two
                # tasks must not write the same files.
                "deploy_min": 0 if s.volumes else 100,
                "deploy_max": 100 if s.volumes else 200,
                "size": _size(cloud, s),
            }
        )

    images = [
        {
            "name": image.name,
            "key": _ident(image.name),
            "repository": f"{project.name}-{image.name}",
            "services": list(image.services),
        }
        for image in project.images
    ]
    public = [entry for entry in services if entry["public"]]
    public_names = [entry["name"] for entry in public]
    for index, entry in enumerate(public):
        # AWS, environment without a domain: the only public service on port 80, several on
        # 8081, 8082, ... of the load balancer's own DNS name (no host name to route by).
        entry["plain_port"] = 80 if len(public) == 1 else 8081 + index
    for entry in services:
        # An HCL template string (only DNS labels and var.domain): the public host rule
        # shared with the ingress and the CI smoke tests.
        entry["host"] = (
            naming.public_host(entry["name"], "${var.domain}", len(public))
            if entry["public"]
            else ""
        )
        # The same host as an HCL expression (`terraform fmt` unwraps a lone "${...}").
        entry["host_expr"] = (
            "var.domain" if entry["host"] == "${var.domain}" else f'"{entry["host"]}"'
        )

    stores = {store.name: store for store in project.datastores}
    postgres = stores.get("postgres")
    redis = stores.get("redis")
    datastores: dict[str, Any] = {}
    if postgres:
        major = postgres.version.split(".")[0]
        datastores["postgres"] = {
            "version": postgres.version,
            "major": major,
            "database": postgres.database,
            "users": [_ident(u) for u in postgres.users],
            "aws_family": f"postgres{major}",
            "gcp_version": f"POSTGRES_{major}",
        }
    if redis:
        major = redis.version.split(".")[0]
        aws_engine = redis.version if "." in redis.version else AWS_REDIS_ENGINE.get(major)
        datastores["redis"] = {
            "version": redis.version,
            "major": major,
            "users": [_ident(u) for u in redis.users],
            "aws_engine": aws_engine or f"{major}.0",
            "aws_family": f"redis{major}",
            "gcp_version": GCP_REDIS_VERSION.get(major, f"REDIS_{major}_0")
            if "." not in redis.version
            else "REDIS_" + redis.version.replace(".", "_"),
            "azure_version": AZURE_REDIS_VERSION,
        }

    environments = []
    for index, env in enumerate(project.environments):
        names = _names(cloud, project, env.name)
        scalars = {k: v for k, v in names.items() if isinstance(v, str)}
        environments.append(
            {
                "name": env.name,
                "domain": env.domain,
                "branch": env.branch,
                # Account-level resources (AWS: the OIDC provider, the ECR repositories) are
                # created by the first environment's stack and looked up by the others.
                "first": index == 0,
                "unknown_inputs": _unknown_inputs(cloud, project, bool(env.domain)),
                "names": names,
                "name_lines": _aligned(scalars),
                "service_lines": [
                    {"key": key, "lines": _aligned(per_service)}
                    for key, per_service in names["services"].items()
                ],
            }
        )
    return {
        "cloud": cloud,
        "project": project.name,
        "ci": ci_identity(project),
        "registry": registry,
        "services": services,
        "web": [s for s in services if s["web"]],
        "workers": [s for s in services if not s["web"]],
        "releases": [s for s in services if s["release"]],
        "public": public,
        "public_names": public_names,
        "single_public": len(public) == 1,
        "autoscaled": [s for s in services if s["autoscale"]],
        "volumes": [
            {**volume, "service": entry["name"], "service_key": entry["key"]}
            for entry in services
            for volume in entry["volumes"]
        ],
        "volume_users": [entry for entry in services if entry["volumes"]],
        "images": images,
        "secrets": secrets,
        "datastores": datastores,
        "datastore_secrets": datastore_secrets,
        "datastore_secret_names": {
            store.name: _kebab(store.url_variable)
            for store in project.datastores
            if store.url_variable in secret_of
        },
        "postgres": "postgres" in datastores,
        "redis": "redis" in datastores,
        "environments": environments,
        "environment_names": [env.name for env in project.environments],
    }


MARKER = "Generated by shipforge"


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """Invariants of the rendered stack that a reviewer would otherwise check by hand."""
    issues: list[Issue] = []
    tf = {f.path: f.content for f in files if f.path.endswith((".tf", ".tfvars"))}
    for path, content in tf.items():
        if MARKER not in content.split("\n", 1)[0]:
            issues.append(Issue("does not start with the generated-by comment", path))
        if ":latest" in content:
            issues.append(Issue("an image is referenced by the mutable tag latest", path))
        if content.count("{") != content.count("}"):
            issues.append(Issue("unbalanced braces", path))
    # Every quoted word of the stack, collected once (a substring search per secret was
    # quadratic in services, issue 19); overlapping, so `"A""B"` yields both.
    quoted = set(re.findall(r'(?="([A-Za-z0-9_]+)")', "\n".join(tf.values())))
    for service in project.services:
        for name in (*service.datastore_secrets, *service.secrets):
            if name not in quoted:
                issues.append(
                    Issue(f"secret {name} of {service.name} is not wired into the stack", "")
                )
    if project.targets.terraform == "aws-ecs":
        ecs = tf.get("terraform/ecs.tf", "")
        count = ecs.count('resource "aws_ecs_service"')
        if count != len(project.services):
            issues.append(Issue("one ECS service per service expected", "terraform/ecs.tf"))
        lines = [line.strip() for line in ecs.splitlines()]
        for needle in ("rollback = true", "ignore_changes = [task_definition"):
            if sum(line.startswith(needle) for line in lines) != count:
                issues.append(Issue(f"every ECS service needs `{needle}`", "terraform/ecs.tf"))
    return issues
