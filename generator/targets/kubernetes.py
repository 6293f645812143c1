"""kubernetes: a Kustomize base, one overlay and one release kustomization per environment.

Layout (docs/kubernetes.md explains how to deploy it):

- `k8s/services/<service>/` the app part of one service (workload, Service, HPA, PDB,
  NetworkPolicy), with `config/` (ServiceAccount and ConfigMap, shared with the release Job) and,
  for services with `release`, `release/` (the Job and its NetworkPolicy).
- `k8s/base/` every service plus the namespace-wide default-deny NetworkPolicy.
- `k8s/overlays/<env>/` the Namespace, the base and the Ingresses of one environment.
- `k8s/release/<env>/` the Namespace and the release Jobs of one environment, self-sufficient.

The templates read this module's view (`model.views.kubernetes`); every decision lives here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import yaml

from generator import fastyaml, naming
from generator.errors import Issue
from generator.model import Project, Service
from generator.render import Rendered

TEMPLATES = ("{% if model.targets.kubernetes %}k8s{% endif %}/*",)

# Secrets are mounted as files here, and a fixed first step exports each one as an env var of
# the same name before exec'ing the command, so unmodified 12-factor apps work while no secret
# travels through the pod spec's env (CKV_K8S_35). `$(cat)` drops trailing newlines.
SECRETS_DIR = "/run/secrets/app"
EXPORT_SECRETS = (
    "set -eu; "
    f"for file in {SECRETS_DIR}/*; do "
    'name="${file##*/}"; value="$(cat "$file")"; export "$name=$value"; '
    "done; "
    'exec "$@"'
)
# Private, link-local (cloud metadata) and shared address ranges: HTTPS egress to the internet
# never reaches them.
NON_PUBLIC = (
    "10.0.0.0/8",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
)
PROGRESS_DEADLINE = 300
RELEASE_DEADLINE = 1800
RELEASE_TTL = 86400
IMAGE_PINNED_AT_DEPLOY = (
    "the image is pinned at deploy time by the kustomize images field "
    "(the tag or digest CI built); the committed manifest names the repository only"
)
WORKER_PROBES = (
    "a worker serves no port to probe; readiness gates no traffic and the kubelet restarts "
    "the container when its process exits, which an exec probe would only restate"
)


def _labels(project: Project, name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": project.name,
        "app.kubernetes.io/managed-by": "shipforge",
    }


def _selector(project: Project, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": project.name}


def _skips(*checks: tuple[str, str]) -> list[dict[str, str]]:
    """checkov's inline skips as annotations: checkov.io/skipN: CHECK=reason."""
    return [
        {"key": f"checkov.io/skip{i}", "value": f"{check}={reason}"}
        for i, (check, reason) in enumerate(checks, start=1)
    ]


def _egress(project: Project, service: Service, app: bool) -> list[dict[str, Any]]:
    """What a pod may reach: DNS and its datastores; an app also the project's web services and
    HTTPS on the internet (the APIs its secrets are keys for). A release Job needs no more than
    its datastores."""
    rules: list[dict[str, Any]] = [{"kind": "dns"}]
    stores = [s.port for s in project.datastores if s.name in service.uses]
    if stores:
        rules.append({"kind": "datastores", "ports": stores})
    # Every web container names its port `http`: one named port admits them all, where a list
    # of numbers would grow each policy with the project (quadratic output, issue 19).
    if app and any(s.web for s in project.services):
        rules.append({"kind": "project", "ports": ["http"]})
    if app:
        rules.append({"kind": "https"})
    return rules


def _ingress(service: Service, monitoring: bool) -> list[str]:
    """Who may connect to a web service's port: anyone when it is public (the ingress
    controller runs in a namespace the descriptor cannot name), else the project's own pods and,
    when the project is monitored, Prometheus."""
    if not service.web:
        return []
    if service.public:
        return ["any"]
    return ["project", "prometheus"] if monitoring else ["project"]


def _service_view(project: Project, service: Service) -> dict[str, Any]:
    config = [{"name": s.name, "value": s.value} for s in service.env]
    # base32, not hex: 16 hex digits look like a key to secret scanners; this is a checksum.
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).digest()
    config_hash = base64.b32encode(digest).decode().lower()[:16]
    secret_keys = [*service.datastore_secrets, *service.secrets]
    wrap = ["/bin/sh", "-c", EXPORT_SECRETS, service.name] if secret_keys else []
    many = service.max_instances > 1
    skips = [("CKV_K8S_14", IMAGE_PINNED_AT_DEPLOY), ("CKV_K8S_43", IMAGE_PINNED_AT_DEPLOY)]
    if not service.web:
        skips += [("CKV_K8S_8", WORKER_PROBES), ("CKV_K8S_9", WORKER_PROBES)]
    release_skips = skips[:2]
    mounts = {v.mount for v in service.volumes}
    monitoring = project.monitoring.prometheus and service.web
    return {
        "name": service.name,
        "kind": "StatefulSet" if service.volumes else "Deployment",
        "image": service.image_repository,
        "args": [*wrap, *service.argv],
        "release": bool(service.release),
        "release_name": f"{service.name}-release",
        "release_command": service.release,
        "release_args": [*wrap, *service.release_argv],
        "web": service.web,
        "public": service.public,
        "port": service.port,
        "health": service.health,
        # With an HPA the Deployment leaves replicas to it, so an apply never resets the scale.
        "replicas": 0 if service.autoscale else service.replicas,
        "autoscale": (
            {
                "min": service.autoscale.min,
                "max": service.autoscale.max,
                "cpu": service.autoscale.cpu,
            }
            if service.autoscale
            else None
        ),
        "many": many,
        "cpu": service.cpu,
        "memory": service.memory,
        "env": config,
        "config_hash": config_hash,
        "config_name": f"{service.name}-config-{config_hash[:10]}",
        "secret_name": f"{service.name}-secrets",
        "secret_keys": secret_keys,
        "volumes": [
            {"name": f"data-{v.name}", "mount": v.mount, "size": v.size} for v in service.volumes
        ],
        # A persistent volume mounted at /tmp already gives the service a writable /tmp.
        "tmp": all(v.mount != "/tmp" for v in service.volumes),
        # Other paths the image writes to (Next.js' .next/cache), each an emptyDir of its own.
        "scratch": [
            {"name": f"scratch-{index}", "mount": path}
            for index, path in enumerate(
                p for p in service.writable_paths if p != "/tmp" and p not in mounts
            )
        ],
        "labels": _labels(project, service.name, "web" if service.web else "worker"),
        "selector": _selector(project, service.name),
        "release_labels": _labels(project, f"{service.name}-release", "release"),
        "release_selector": _selector(project, f"{service.name}-release"),
        "skips": _skips(*skips),
        "release_skips": _skips(*release_skips),
        "metrics": (
            {"port": service.port, "path": project.monitoring.metrics_path} if monitoring else None
        ),
        "ingress": _ingress(service, monitoring),
        "termination_grace": service.stop_grace + (PRESTOP_SECONDS if service.web else 0),
        "egress": _egress(project, service, app=True),
        "release_egress": _egress(project, service, app=False),
    }


# The port cert-manager's HTTP-01 solver pods listen on (the solver Service's target, 8089).
ACME_SOLVER_PORT = 8089
# The preStop `sleep 5` of a web service in app.yaml (endpoints drop the pod before SIGTERM).
PRESTOP_SECONDS = 5


def view(project: Project) -> dict[str, Any]:
    """Names, labels, arguments and rules the Kubernetes templates render, decided once."""
    services = [_service_view(project, s) for s in project.services]
    public = [s for s in project.services if s.public]
    environments = []
    for environment in project.environments:
        # cert-manager's ingress-shim reads one of these annotations and creates the
        # Certificate, which writes the Secret the Ingress names.
        annotations = {}
        if environment.tls_cluster_issuer:
            annotations["cert-manager.io/cluster-issuer"] = environment.tls_cluster_issuer
        elif environment.tls_issuer:
            annotations["cert-manager.io/issuer"] = environment.tls_issuer
        ingresses = [
            {
                "name": s.name,
                "host": naming.public_host(s.name, environment.domain, len(public)),
                "tls_secret": environment.tls_secret or f"{s.name}-tls",
                "labels": _labels(project, s.name, "web"),
                "annotations": annotations,
            }
            for s in public
            if environment.domain
        ]
        environments.append(
            {
                "name": environment.name,
                "namespace": naming.namespace(project.name, environment.name),
                "ingress_class": environment.ingress_class,
                "ingresses": ingresses,
                # HTTP-01 solver pods run in this namespace: default-deny would drop the
                # ingress controller's challenge requests without a policy of their own.
                "acme_solver": bool(ingresses and annotations),
                "acme_labels": _labels(project, "acme-http01-solver", "tls"),
                "acme_port": ACME_SOLVER_PORT,
            }
        )
    releases = [s for s in services if s["release"]]
    return {
        "services": services,
        "images": sorted({s.image_repository for s in project.services}),
        "release_services": releases,
        "environments": environments,
        "project_labels": {
            "app.kubernetes.io/part-of": project.name,
            "app.kubernetes.io/managed-by": "shipforge",
        },
        "app_uid": project.app_uid,
        "secrets_dir": SECRETS_DIR,
        "non_public": list(NON_PUBLIC),
        "progress_deadline": PROGRESS_DEADLINE,
        "release_deadline": RELEASE_DEADLINE,
        "release_ttl": RELEASE_TTL,
    }


def _documents(file: Rendered) -> list[dict[str, Any]]:
    return [d for d in fastyaml.load_all(file.content) if d]


def _pod_issues(file: Rendered, where: str, pod: dict[str, Any], image: str) -> list[Issue]:
    issues = []
    security = pod.get("securityContext", {})
    if not security.get("runAsNonRoot") or pod.get("automountServiceAccountToken") is not False:
        issues.append(
            Issue("pods run as non-root without a service account token", file.path, path=where)
        )
    for container in pod.get("containers", []):
        context = container.get("securityContext", {})
        if (
            context.get("readOnlyRootFilesystem") is not True
            or context.get("allowPrivilegeEscalation") is not False
            or context.get("capabilities", {}).get("drop") != ["ALL"]
        ):
            issues.append(
                Issue("containers are read-only, unprivileged and drop ALL", file.path, path=where)
            )
        if container.get("image") != image:
            issues.append(
                Issue(
                    f"the image must be exactly {image} (pinned by kustomize)",
                    file.path,
                    path=where,
                )
            )
        if any("valueFrom" in e for e in container.get("env", [])) or any(
            "secretRef" in e for e in container.get("envFrom", [])
        ):
            issues.append(Issue("secrets are mounted as files, never env", file.path, path=where))
    return issues


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """Manifests parse, no Secret carries data, names are unique, pods are hardened."""
    issues: list[Issue] = []
    images = {s.name: s.image_repository for s in project.services}
    seen: dict[tuple[str, str, str], str] = {}
    for file in files:
        if not file.path.endswith(".yaml"):
            continue
        try:
            documents = _documents(file)
        except yaml.YAMLError as error:
            issues.append(Issue(f"not valid YAML: {error}", file.path))
            continue
        # Overlays and release kustomizations are separate builds; all else is one app.
        scope = "/".join(file.path.split("/")[:3]) if "/overlays/" in file.path else "app"
        for document in documents:
            kind, name = document.get("kind", ""), document.get("metadata", {}).get("name", "")
            where = f"{kind}/{name}"
            if kind == "Secret" and (document.get("data") or document.get("stringData")):
                issues.append(Issue("a Secret carries data", file.path, path=where))
            if kind in ("Kustomization", "Namespace"):
                continue
            key = (scope, kind, name)
            if key in seen and seen[key] != file.path:
                issues.append(
                    Issue(f"{where} is also defined in {seen[key]}", file.path, path=where)
                )
            seen.setdefault(key, file.path)
            pod = document.get("spec", {}).get("template", {}).get("spec")
            if pod is not None:
                service = document["metadata"]["labels"]["app.kubernetes.io/name"]
                image = (
                    images[service.removesuffix("-release")] if kind == "Job" else images[service]
                )
                issues.extend(_pod_issues(file, where, pod, image))
    return issues
