"""monitoring: Prometheus scrape configs, alert rules with their promtool tests, Grafana files.

Every web service is scraped on `monitoring.metrics_path` under the job name of the service, in
compose (DNS discovery of the service name, one target per replica), on a plain host (a static
target on 127.0.0.1) and in Kubernetes (pod discovery keyed on the kubernetes target's pod
labels). The alert rules and dashboards select on that one `job` label, so they serve every
platform alike.
Workers serve no HTTP and cannot be scraped: they get neither a job nor alerts.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from generator import naming
from generator.errors import Issue
from generator.model import Project, Service
from generator.render import Rendered

TEMPLATES = ("*model.monitoring.prometheus %}monitoring{% endif %}/*",)

# Pinned images of the compose `monitoring` profile: Prometheus 3.5 is an LTS line.
PROMETHEUS_IMAGE = "prom/prometheus:v3.5.0"
GRAFANA_IMAGE = "grafana/grafana:12.1.1"
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
# The provisioned data source every dashboard panel names, and where dashboards are mounted.
DATASOURCE_UID = "prometheus"
DASHBOARDS_PATH = "/etc/grafana/dashboards"
GRAFANA_UID_LIMIT = 40
# The pod labels the kubernetes target puts on every pod: the service, then the project.
KUBERNETES_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")

# Alert thresholds, one place to tune them (docs/monitoring.md explains each).
DOWN_FOR = "2m"
ERROR_RATIO = "0.05"
ERROR_FOR = "5m"
LATENCY_P95_SECONDS = "1"
LATENCY_FOR = "10m"
RESTARTS = "3"
RESTART_WINDOW = "15m"
RATE_WINDOW = "5m"


def promql_str(value: str) -> str:
    """A PromQL string literal (single-quoted, so it reads cleanly inside YAML double quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rules(service: Service, metrics_path: str) -> list[dict[str, Any]]:
    """The alert rules of one web service; annotations keep Prometheus' own {{ }} templates."""
    job = f"job={promql_str(service.name)}"
    requests = f"sum by (namespace, job) (rate(http_requests_total{{{job}}}[{RATE_WINDOW}]))"
    errors = (
        f"sum by (namespace, job) "
        f"(rate(http_requests_total{{{job}, status=~'5..'}}[{RATE_WINDOW}]))"
    )
    buckets = (
        f"sum by (namespace, job, le) "
        f"(rate(http_request_duration_seconds_bucket{{{job}}}[{RATE_WINDOW}]))"
    )
    name = service.name
    return [
        {
            "alert": "TargetDown",
            "expr": f"up{{{job}}} == 0",
            "for": DOWN_FOR,
            "severity": "critical",
            "summary": f"{name} target {{{{ $labels.instance }}}} is down",
            "description": (
                f"Prometheus has not scraped {{{{ $labels.instance }}}} of {name} on "
                f"{metrics_path} for {DOWN_FOR}: the process is down or does not answer."
            ),
        },
        {
            "alert": "TargetMissing",
            "expr": f"absent(up{{{job}}})",
            "for": DOWN_FOR,
            "severity": "critical",
            "summary": f"no target of {name} is discovered",
            "description": (
                f"Prometheus has found no running instance of {name} for {DOWN_FOR}: every "
                "container or pod is gone (stopped, crashed and not restarted, or scaled to 0)."
            ),
        },
        {
            "alert": "HighErrorRatio",
            "expr": f"{errors} / {requests} > {ERROR_RATIO}",
            "for": ERROR_FOR,
            "severity": "warning",
            "summary": f"{name} answers too many 5xx responses",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of the requests to {name} failed with "
                f"a 5xx status over the last {RATE_WINDOW} (threshold {ERROR_RATIO})."
            ),
        },
        {
            "alert": "HighLatencyP95",
            "expr": f"histogram_quantile(0.95, {buckets}) > {LATENCY_P95_SECONDS}",
            "for": LATENCY_FOR,
            "severity": "warning",
            "summary": f"{name} is slow",
            "description": (
                f"95% of the requests to {name} took up to {{{{ $value | humanizeDuration }}}} "
                f"over the last {RATE_WINDOW} (threshold {LATENCY_P95_SECONDS}s)."
            ),
        },
        {
            "alert": "RestartLoop",
            "expr": (
                f"changes(process_start_time_seconds{{{job}}}[{RESTART_WINDOW}]) > {RESTARTS}"
            ),
            "for": "0m",
            "severity": "warning",
            "summary": f"{name} {{{{ $labels.instance }}}} keeps restarting",
            "description": (
                f"{{{{ $labels.instance }}}} of {name} started {{{{ $value }}}} times in "
                f"{RESTART_WINDOW} (threshold {RESTARTS})."
            ),
        },
    ]


def _pod_label(label: str) -> str:
    """The discovery meta label under which Prometheus exposes a pod label."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in label)


def _expand(text: str, values: dict[str, str]) -> str:
    """A rule annotation as Prometheus renders it, for the expected side of a unit test."""
    for key, value in values.items():
        text = text.replace("{{ " + key + " }}", value)
    return text


def _expected(rule: dict[str, Any], job: str, labels: dict[str, str], value: str) -> dict[str, Any]:
    """The alert a promtool test expects: its labels and its rendered annotations."""
    values = {
        "$labels.instance": labels.get("instance", ""),
        "$value": value,
        "$value | humanizePercentage": value,
        "$value | humanizeDuration": value,
    }
    return {
        "labels": sorted(
            {**labels, "job": job, "service": job, "severity": rule["severity"]}.items()
        ),
        "annotations": sorted(
            (key, _expand(rule[key], values)) for key in ("description", "summary")
        ),
    }


def _healthy(service: Service, instance: str) -> list[dict[str, str]]:
    """Series of a service in good health: up, not restarting, 1.6% errors, p95 of 0.45 s."""
    job = f"job={promql_str(service.name)}, instance={promql_str(instance)}"
    return [
        {"series": f"up{{{job}}}", "samples": "1+0x30"},
        {"series": f"process_start_time_seconds{{{job}}}", "samples": "1000+0x30"},
        *_requests(job, ok="60", failed="1"),
        *_buckets(job, {"0.1": "50", "0.5": "58", "1": "60", "2.5": "60", "+Inf": "60"}),
    ]


def _requests(job: str, ok: str, failed: str) -> list[dict[str, str]]:
    return [
        {"series": f"http_requests_total{{{job}, status='200'}}", "samples": f"0+{ok}x30"},
        {"series": f"http_requests_total{{{job}, status='500'}}", "samples": f"0+{failed}x30"},
    ]


def _buckets(job: str, per_minute: dict[str, str]) -> list[dict[str, str]]:
    return [
        {
            "series": f"http_request_duration_seconds_bucket{{{job}, le='{le}'}}",
            "samples": f"0+{count}x30",
        }
        for le, count in per_minute.items()
    ]


def _tests(services: list[Service], rules: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """promtool unit tests: healthy traffic stays quiet, each fault fires its alert in time."""
    tests: list[dict[str, Any]] = []
    for service in services:
        instance = f"{service.name}:{service.port}"
        job = f"job={promql_str(service.name)}, instance={promql_str(instance)}"
        others = [s for s in services if s is not service]
        background = [row for s in others for row in _healthy(s, f"{s.name}:{s.port}")]
        by_alert = {rule["alert"]: rule for rule in rules[service.name]}

        tests.append(
            {
                "name": f"{service.name}: healthy traffic raises no alert",
                "series": [*_healthy(service, instance), *background],
                "checks": [
                    {"at": "20m", "alert": rule["alert"], "expected": []}
                    for rule in rules[service.name]
                ],
            }
        )
        tests.append(
            {
                "name": f"{service.name}: TargetDown after {DOWN_FOR} down",
                "series": [{"series": f"up{{{job}}}", "samples": "1 1 0x10"}, *background],
                "checks": [
                    {"at": "3m", "alert": "TargetDown", "expected": []},
                    {
                        "at": "5m",
                        "alert": "TargetDown",
                        "expected": [
                            _expected(
                                by_alert["TargetDown"], service.name, {"instance": instance}, ""
                            )
                        ],
                    },
                ],
            }
        )
        tests.append(
            {
                "name": f"{service.name}: TargetMissing when no instance is discovered",
                "series": background
                or [
                    {"series": "up{job='prometheus', instance='localhost:9090'}", "samples": "1x5"}
                ],
                "checks": [
                    {"at": "1m", "alert": "TargetMissing", "expected": []},
                    {
                        "at": "3m",
                        "alert": "TargetMissing",
                        "expected": [_expected(by_alert["TargetMissing"], service.name, {}, "")],
                    },
                ],
            }
        )
        tests.append(
            {
                "name": f"{service.name}: HighErrorRatio at 25% of 5xx",
                "series": [*_requests(job, ok="45", failed="15"), *background],
                "checks": [
                    {"at": "4m", "alert": "HighErrorRatio", "expected": []},
                    {
                        "at": "10m",
                        "alert": "HighErrorRatio",
                        "expected": [
                            _expected(by_alert["HighErrorRatio"], service.name, {}, "25%")
                        ],
                    },
                ],
            }
        )
        tests.append(
            {
                "name": f"{service.name}: HighLatencyP95 when requests take 1 to 2.5 s",
                "series": [
                    *_buckets(job, {"0.5": "0", "1": "0", "2.5": "60", "+Inf": "60"}),
                    *background,
                ],
                "checks": [
                    {"at": "5m", "alert": "HighLatencyP95", "expected": []},
                    {
                        "at": "15m",
                        "alert": "HighLatencyP95",
                        "expected": [
                            _expected(by_alert["HighLatencyP95"], service.name, {}, "2.425s")
                        ],
                    },
                ],
            }
        )
        tests.append(
            {
                "name": f"{service.name}: RestartLoop after 5 restarts in {RESTART_WINDOW}",
                "series": [
                    {
                        "series": f"process_start_time_seconds{{{job}}}",
                        "samples": "1000 1060 1120 1180 1240 1300 1300x10",
                    },
                    *background,
                ],
                "checks": [
                    {"at": "2m", "alert": "RestartLoop", "expected": []},
                    {
                        "at": "10m",
                        "alert": "RestartLoop",
                        "expected": [
                            _expected(
                                by_alert["RestartLoop"], service.name, {"instance": instance}, "5"
                            )
                        ],
                    },
                ],
            }
        )
    return tests


def _dashboard(project: Project, service: Service) -> dict[str, Any]:
    """One Grafana dashboard: request rate, error ratio, p95 latency, targets up, restarts."""
    job = f"job={promql_str(service.name)}"
    window = "$__rate_interval"
    panels = [
        (
            "Request rate by status",
            "reqps",
            f"sum by (namespace, status) (rate(http_requests_total{{{job}}}[{window}]))",
            "{{namespace}} {{status}}",
        ),
        (
            "Error ratio (5xx)",
            "percentunit",
            f"sum by (namespace) (rate(http_requests_total{{{job}, status=~'5..'}}[{window}]))"
            f" / sum by (namespace) (rate(http_requests_total{{{job}}}[{window}]))",
            "{{namespace}}",
        ),
        (
            "Latency p95",
            "s",
            "histogram_quantile(0.95, sum by (namespace, le) "
            f"(rate(http_request_duration_seconds_bucket{{{job}}}[{window}])))",
            "{{namespace}}",
        ),
        ("Targets up", "none", f"up{{{job}}}", "{{namespace}} {{instance}}"),
        (
            f"Restarts ({RESTART_WINDOW})",
            "none",
            f"changes(process_start_time_seconds{{{job}}}[{RESTART_WINDOW}])",
            "{{namespace}} {{instance}}",
        ),
    ]
    return {
        "file": f"{service.name}.json",
        "uid": naming.fit(f"{project.name}-{service.name}", GRAFANA_UID_LIMIT),
        "title": f"{project.name} / {service.name}",
        "description": (
            f"Generated by shipforge from shipforge.yaml: {service.name} scraped on "
            f"{project.monitoring.metrics_path}."
        ),
        "panels": [
            {
                "id": index + 1,
                "title": title,
                "unit": unit,
                "expr": expr,
                "legend": legend,
                # Two panels a row; the last one spans the row when the count is odd.
                "x": 12 * (index % 2),
                "y": 8 * (index // 2),
                "w": 24 if index == len(panels) - 1 and len(panels) % 2 else 12,
            }
            for index, (title, unit, expr, legend) in enumerate(panels)
        ],
    }


def view(project: Project) -> dict[str, Any]:
    """What the monitoring templates (and the compose monitoring profile) read."""
    web = [s for s in project.services if s.web]
    kubernetes_only = project.targets.kubernetes and not (
        project.targets.compose or project.targets.pm2
    )
    rules = {s.name: _rules(s, project.monitoring.metrics_path) for s in web}
    return {
        "prometheus_image": PROMETHEUS_IMAGE,
        "grafana_image": GRAFANA_IMAGE,
        "prometheus_port": PROMETHEUS_PORT,
        "grafana_port": GRAFANA_PORT,
        # prometheus.yml serves a Prometheus beside the app: in the compose network, or on the
        # host of PM2 or plain containers. A Kubernetes-only project gets only its own config.
        "host": not kubernetes_only,
        "compose": project.targets.compose,
        "kubernetes": project.targets.kubernetes,
        "jobs": [
            {
                "name": s.name,
                "port": s.port,
                "target": f"127.0.0.1:{s.port}",
                # Matches the kubernetes_keep labels: service, project, container port.
                "kubernetes_keep": f"{s.name};{project.name};{s.port}",
            }
            for s in web
        ],
        "workers": [s.name for s in project.services if not s.web],
        "kubernetes_labels": list(KUBERNETES_LABELS),
        "kubernetes_keep": [_pod_label(label) for label in KUBERNETES_LABELS]
        + ["__meta_kubernetes_pod_container_port_number"],
        "namespaces": [naming.namespace(project.name, e.name) for e in project.environments],
        "groups": [{"name": s.name, "rules": rules[s.name]} for s in web],
        "tests": _tests(web, rules),
        "datasource_uid": DATASOURCE_UID,
        "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
        "datasource_url": (
            f"http://127.0.0.1:{PROMETHEUS_PORT}"
            if not (project.targets.compose or project.targets.kubernetes)
            else f"http://prometheus:{PROMETHEUS_PORT}"
        ),
        "dashboards_path": DASHBOARDS_PATH,
        "dashboards": [_dashboard(project, s) for s in web],
    }


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """YAML and JSON parse; every dashboard names the provisioned data source."""
    issues = []
    for file in files:
        try:
            if file.path.endswith(".json"):
                document = json.loads(file.content)
                sources = {
                    target["datasource"]["uid"]
                    for panel in document["panels"]
                    for target in panel["targets"]
                }
                if sources != {DATASOURCE_UID}:
                    issues.append(Issue(f"panels use data sources {sorted(sources)}", file.path))
            else:
                yaml.load(file.content, Loader=yaml.CSafeLoader)
        except (ValueError, yaml.YAMLError) as error:
            issues.append(Issue(f"does not parse: {error}", file.path))
    return issues
