"""monitoring: Prometheus scrape configs, alert rules with their promtool tests, Alertmanager,
Grafana files.

Every web service is scraped on `monitoring.metrics_path` under the job name of the service, in
compose (DNS discovery of the service name, one target per replica), on a plain host (a static
target on 127.0.0.1) and in Kubernetes (pod discovery keyed on the kubernetes target's pod
labels). Two rule files: alerts.yml for a Prometheus beside the services (one per host, so one
environment) and alerts.kubernetes.yml for the in-cluster one, which watches every environment's
namespace and reads restarts, running workers and failed release Jobs from kube-state-metrics.
Their unit tests cover every service in each test, so they grow linearly with the services.
Workers serve no HTTP: they are not scraped, and only Kubernetes (kube-state-metrics) sees them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from generator import fastyaml, naming
from generator.errors import Issue
from generator.model import Project, Service
from generator.render import Rendered

TEMPLATES = (
    "*model.monitoring.prometheus %}monitoring{% endif %}/*",
    "_shipforge_macros/monitoring.jinja",
)

# Pinned images of the compose `monitoring` profile: Prometheus 3.5 is an LTS line.
PROMETHEUS_IMAGE = "prom/prometheus:v3.5.0"
GRAFANA_IMAGE = "grafana/grafana:12.1.1"
ALERTMANAGER_IMAGE = "prom/alertmanager:v0.28.1"
# Ports the containers listen on.
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
ALERTMANAGER_PORT = 9093
# The monitoring profile's ports on 127.0.0.1: a block of their own, away from the 3000/8000/8080
# that apps use (Grafana's own 3000 collided with every Node service); see
# targets/compose.py::host_ports().
HOST_PORTS = {"prometheus": 9090, "alertmanager": 9093, "grafana": 9094}
# The Alertmanager receiver's webhook URL is a secret: a file under SECRETS_DIR (a compose secret
# from the environment, or a key of a Kubernetes Secret mounted there), never a value in a file.
ALERTMANAGER_SECRET = "alertmanager_webhook_url"
SECRETS_DIR = "/run/secrets"
# Where the in-cluster Prometheus reaches kube-state-metrics (the Helm chart's Service, installed
# in kube-system): the source of restart counts and running containers.
KUBE_STATE_METRICS = "kube-state-metrics.kube-system.svc:8080"
# The provisioned data source every dashboard panel names, and where dashboards are mounted.
DATASOURCE_UID = "prometheus"
DATASOURCE_VARIABLE = "datasource"
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
# What increase() reports at 10m for a counter that grows by 1 a minute from 0 (extrapolated).
RESTART_VALUE = "10"


def promql_str(value: str) -> str:
    """A PromQL string literal (single-quoted, so it reads cleanly inside YAML double quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rule(
    alert: str,
    expr: str,
    duration: str,
    severity: str,
    summary: str,
    description: str,
    namespace: str = "",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One alerting rule; `labels` are static labels beyond service and severity, `namespace`
    the one namespace a rule watches when there is one rule per namespace."""
    return {
        "alert": alert,
        "namespace": namespace,
        "expr": expr,
        "for": duration,
        "severity": severity,
        "summary": summary,
        "description": description,
        "labels": sorted((labels or {}).items()),
    }


def _http_rules(service: Service, metrics_path: str, by: str) -> list[dict[str, Any]]:
    """The rules every web service gets on every platform: down, 5xx ratio, p95 latency.

    `by` are the labels the ratios keep (namespace on Kubernetes, where one Prometheus watches
    every environment)."""
    name, job = service.name, f"job={promql_str(service.name)}"
    requests = f"sum by ({by}) (rate(http_requests_total{{{job}}}[{RATE_WINDOW}]))"
    errors = f"sum by ({by}) (rate(http_requests_total{{{job}, status=~'5..'}}[{RATE_WINDOW}]))"
    buckets = (
        f"sum by ({by}, le) (rate(http_request_duration_seconds_bucket{{{job}}}[{RATE_WINDOW}]))"
    )
    return [
        _rule(
            "TargetDown",
            f"up{{{job}}} == 0",
            DOWN_FOR,
            "critical",
            f"{name} target {{{{ $labels.instance }}}} is down",
            f"Prometheus has not scraped {{{{ $labels.instance }}}} of {name} on "
            f"{metrics_path} for {DOWN_FOR}: the process is down or does not answer.",
        ),
        _rule(
            "HighErrorRatio",
            f"{errors} / {requests} > {ERROR_RATIO}",
            ERROR_FOR,
            "warning",
            f"{name} answers too many 5xx responses",
            f"{{{{ $value | humanizePercentage }}}} of the requests to {name} failed with "
            f"a 5xx status over the last {RATE_WINDOW} (threshold {ERROR_RATIO}).",
        ),
        _rule(
            "HighLatencyP95",
            f"histogram_quantile(0.95, {buckets}) > {LATENCY_P95_SECONDS}",
            LATENCY_FOR,
            "warning",
            f"{name} is slow",
            f"95% of the requests to {name} took up to {{{{ $value | humanizeDuration }}}} "
            f"over the last {RATE_WINDOW} (threshold {LATENCY_P95_SECONDS}s).",
        ),
    ]


def _host_rules(service: Service, metrics_path: str) -> list[dict[str, Any]]:
    """Rules for a Prometheus beside the services (compose network or host): one per host, so
    one environment, and `absent` of the job is that environment's outage."""
    name, job = service.name, f"job={promql_str(service.name)}"
    down, *traffic = _http_rules(service, metrics_path, "job")
    return [
        down,
        _rule(
            "TargetMissing",
            f"absent(up{{{job}}})",
            DOWN_FOR,
            "critical",
            f"no target of {name} is discovered",
            f"Prometheus has found no running instance of {name} for {DOWN_FOR}: every "
            "container is gone (stopped, crashed and not restarted, or scaled to 0).",
        ),
        *traffic,
        # Neither Docker nor PM2 exports a restart counter. Each scrape may land on another
        # worker process of the same server (gunicorn, uvicorn --workers, PM2 cluster), each with
        # its own start time, so counting changes of the start time would count worker flips.
        # The newest start time seen in 5m only moves when a process really starts anew.
        _rule(
            "RestartLoop",
            f"changes(max_over_time(process_start_time_seconds{{{job}}}[{RATE_WINDOW}])"
            f"[{RESTART_WINDOW}:1m]) > {RESTARTS}",
            "0m",
            "warning",
            f"{name} {{{{ $labels.instance }}}} keeps restarting",
            f"{{{{ $labels.instance }}}} of {name} started anew {{{{ $value }}}} times in "
            f"{RESTART_WINDOW} (threshold {RESTARTS}).",
        ),
    ]


def _kubernetes_rules(
    service: Service, metrics_path: str, namespaces: list[str]
) -> list[dict[str, Any]]:
    """Rules for the in-cluster Prometheus, which watches every environment's namespace: the
    absence rules are one per namespace, restarts come from kube-state-metrics' counters."""
    name = service.name
    in_namespaces = f"namespace=~{promql_str('|'.join(namespaces))}"
    container = f"container={promql_str(name)}"
    rules = []
    if service.web:
        down, *traffic = _http_rules(service, metrics_path, "namespace, job")
        rules.append(down)
        rules.extend(
            _rule(
                "TargetMissing",
                f"absent(up{{job={promql_str(name)}, namespace={promql_str(namespace)}}})",
                DOWN_FOR,
                "critical",
                f"no pod of {name} is scraped in {namespace}",
                f"Prometheus has found no running pod of {name} in {namespace} for "
                f"{DOWN_FOR}: the Deployment is gone, scaled to 0 or none of its pods runs.",
                namespace,
                {"namespace": namespace},
            )
            for namespace in namespaces
        )
        rules.extend(traffic)
    else:
        rules.extend(
            _rule(
                "WorkerNotRunning",
                f"absent(kube_pod_container_status_running{{namespace={promql_str(namespace)}, "
                f"{container}}} == 1)",
                DOWN_FOR,
                "critical",
                f"no container of worker {name} runs in {namespace}",
                f"kube-state-metrics has shown no running {name} container in {namespace} for "
                f"{DOWN_FOR}: the worker is crashing, pending or scaled to 0.",
                namespace,
                # absent() of an expression keeps no labels: name the namespace for routing.
                {"namespace": namespace},
            )
            for namespace in namespaces
        )
    rules.append(
        _rule(
            "RestartLoop",
            f"increase(kube_pod_container_status_restarts_total{{{in_namespaces}, {container}}}"
            f"[{RESTART_WINDOW}]) > {RESTARTS}",
            "0m",
            "warning",
            f"{name} in {{{{ $labels.namespace }}}} keeps restarting",
            f"The {name} container of pod {{{{ $labels.pod }}}} in {{{{ $labels.namespace }}}} "
            f"restarted {{{{ $value }}}} times in {RESTART_WINDOW} (threshold {RESTARTS}).",
        )
    )
    if service.release:
        rules.append(
            _rule(
                "ReleaseFailed",
                f"kube_job_status_failed{{{in_namespaces}, "
                f"job_name=~{promql_str(naming_release(name) + '.*')}}} > 0",
                "0m",
                "warning",
                f"the release Job of {name} failed in {{{{ $labels.namespace }}}}",
                f"Job {{{{ $labels.job_name }}}} ({name}'s release command) has failed pods: "
                "the rollout that needed it did not happen (kubectl logs job/<name>).",
            )
        )
    return rules


def naming_release(service: str) -> str:
    """The name of a service's release Job (the kubernetes target's manifests)."""
    return f"{service}-release"


def _pod_label(label: str) -> str:
    """The discovery meta label under which Prometheus exposes a pod label."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in label)


_TEMPLATE_FIELD = re.compile(r"\{\{ \$labels\.(\w+) \}\}|\{\{ \$value( \| \w+)? \}\}")


def _expected(
    rule: dict[str, Any], service: str, labels: dict[str, str], value: str
) -> dict[str, Any]:
    """The alert a promtool test expects: the series' labels plus the rule's, and the
    annotations as Prometheus renders them (`value` as the humanize function prints it)."""

    def expand(text: str) -> str:
        return _TEMPLATE_FIELD.sub(
            lambda m: labels.get(m.group(1), "") if m.group(1) else value, text
        )

    return {
        "labels": sorted(
            {
                **labels,
                **dict(rule["labels"]),
                "service": service,
                "severity": rule["severity"],
            }.items()
        ),
        "annotations": sorted((key, expand(rule[key])) for key in ("description", "summary")),
    }


def _series(metric: str, labels: dict[str, str], samples: str) -> dict[str, str]:
    selector = ", ".join(f"{key}={promql_str(value)}" for key, value in labels.items())
    return {"series": f"{metric}{{{selector}}}", "samples": samples}


# Two worker processes answering scrapes in turn, each with its own start time: no restart.
TWO_WORKERS = " ".join(["1000", "1010"] * 15 + ["1000"])


def _traffic(labels: dict[str, str], ok: str, failed: str) -> list[dict[str, str]]:
    return [
        _series("http_requests_total", {**labels, "status": "200"}, f"0+{ok}x30"),
        _series("http_requests_total", {**labels, "status": "500"}, f"0+{failed}x30"),
    ]


def _buckets(labels: dict[str, str], per_minute: dict[str, str]) -> list[dict[str, str]]:
    return [
        _series("http_request_duration_seconds_bucket", {**labels, "le": le}, f"0+{count}x30")
        for le, count in per_minute.items()
    ]


# p95 of 0.49 s: under the 1 s threshold (three buckets keep the tests small at scale).
HEALTHY_BUCKETS = {"0.5": "58", "1": "60", "+Inf": "60"}
SLOW_BUCKETS = {"0.5": "0", "1": "0", "2.5": "60", "+Inf": "60"}
PLACEHOLDER = [_series("up", {"job": "prometheus", "instance": "localhost:9090"}, "1x30")]


def _test(
    name: str,
    series: list[dict[str, str]],
    alert: str,
    quiet_at: str,
    firing_at: str,
    expected: list[dict[str, Any]],
) -> dict[str, Any]:
    """One promtool test: `alert` is still quiet (pending) at quiet_at and fires at firing_at."""
    return {
        "name": name,
        "series": series or PLACEHOLDER,
        "checks": [
            {"at": quiet_at, "alert": alert, "expected": []},
            {"at": firing_at, "alert": alert, "expected": expected},
        ],
    }


def _host_tests(web: list[Service], rules: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """promtool tests of alerts.yml. Each test covers every service at once (the size stays
    linear in services): healthy traffic stays quiet, and each fault, present in every service,
    fires exactly one alert per service (promtool compares the full list, so a rule that
    caught another service's series would fail the test)."""
    if not web:
        return []
    rule = {s.name: {r["alert"]: r for r in rules[s.name]} for s in web}
    labels = {s.name: {"job": s.name, "instance": f"{s.name}:{s.port}"} for s in web}
    by_job = {s.name: {"job": s.name} for s in web}

    def expected(alert: str, of: dict[str, dict[str, str]], value: str) -> list[dict[str, Any]]:
        return [_expected(rule[s.name][alert], s.name, of[s.name], value) for s in web]

    healthy = [
        row
        for s in web
        for row in (
            _series("up", labels[s.name], "1x30"),
            _series("process_start_time_seconds", labels[s.name], TWO_WORKERS),
            *_traffic(labels[s.name], ok="60", failed="1"),
            *_buckets(labels[s.name], HEALTHY_BUCKETS),
        )
    ]
    return [
        {
            "name": "healthy traffic from two worker processes per target raises no alert",
            "series": healthy,
            "checks": [
                {"at": at, "alert": alert, "expected": []}
                for alert in rule[web[0].name]
                for at in ("5m", "20m")
            ],
        },
        _test(
            f"TargetDown after {DOWN_FOR} down",
            [_series("up", labels[s.name], "1 1 0x10") for s in web],
            "TargetDown",
            "3m",
            "5m",
            expected("TargetDown", labels, ""),
        ),
        _test(
            "TargetMissing when no instance is discovered",
            [],
            "TargetMissing",
            "1m",
            "3m",
            expected("TargetMissing", {s.name: {"job": s.name} for s in web}, ""),
        ),
        _test(
            "HighErrorRatio at 25% of 5xx",
            [row for s in web for row in _traffic(labels[s.name], ok="45", failed="15")],
            "HighErrorRatio",
            "4m",
            "10m",
            expected("HighErrorRatio", by_job, "25%"),
        ),
        _test(
            "HighLatencyP95 when requests take 1 to 2.5 s",
            [row for s in web for row in _buckets(labels[s.name], SLOW_BUCKETS)],
            "HighLatencyP95",
            "5m",
            "15m",
            expected("HighLatencyP95", by_job, "2.425s"),
        ),
        _test(
            f"RestartLoop after 5 restarts in {RESTART_WINDOW}, even with worker flips",
            [
                _series(
                    "process_start_time_seconds",
                    labels[s.name],
                    "1000 1010 1060 1010 1120 1060 1180 1120 1240 1180 1240x10",
                )
                for s in web
            ],
            "RestartLoop",
            "2m",
            "10m",
            expected("RestartLoop", labels, "5"),
        ),
    ]


def _kubernetes_tests(
    services: list[Service], rules: dict[str, list[dict[str, Any]]], namespaces: list[str]
) -> list[dict[str, Any]]:
    """promtool tests of alerts.kubernetes.yml, each over every service and namespace at once.
    The absence tests take one environment away while the others keep running."""
    if not services:
        return []
    web = [s for s in services if s.web]
    workers = [s for s in services if not s.web]
    released = [s for s in services if s.release]
    rule = {(s.name, r["alert"], r["namespace"]): r for s in services for r in rules[s.name]}
    ksm = "kube-state-metrics"

    def pod(s: Service, namespace: str) -> dict[str, str]:
        return {
            "job": s.name,
            "instance": f"10.0.{namespaces.index(namespace)}.1:{s.port}",
            "namespace": namespace,
            "pod": f"{s.name}-0",
        }

    def container(s: Service, namespace: str) -> dict[str, str]:
        return {
            "job": ksm,
            "namespace": namespace,
            "pod": f"{s.name}-0",
            "container": s.name,
        }

    def job(s: Service, namespace: str) -> dict[str, str]:
        return {"job": ksm, "namespace": namespace, "job_name": naming_release(s.name)}

    def per_namespace(s: Service, namespace: str) -> dict[str, str]:
        return {"job": s.name, "namespace": namespace}

    def healthy(s: Service, namespace: str) -> list[dict[str, str]]:
        # A pod that restarted twice long ago: a count, not a loop.
        rows = [
            _series("kube_pod_container_status_restarts_total", container(s, namespace), "2x30")
        ]
        if not s.web:
            rows.append(
                _series("kube_pod_container_status_running", container(s, namespace), "1x30")
            )
        if s.web:
            rows += [
                _series("up", pod(s, namespace), "1x30"),
                *_traffic(pod(s, namespace), ok="60", failed="1"),
                *_buckets(pod(s, namespace), HEALTHY_BUCKETS),
            ]
        if s.release:
            rows.append(_series("kube_job_status_failed", job(s, namespace), "0x30"))
        return rows

    def expected(
        alert: str, group: list[Service], where: list[str], labels: Any, value: str = ""
    ) -> list[dict[str, Any]]:
        return [
            _expected(
                rule.get((s.name, alert, n)) or rule[s.name, alert, ""], s.name, labels(s, n), value
            )
            for s in group
            for n in where
        ]

    all_healthy = [row for s in services for n in namespaces for row in healthy(s, n)]
    alerts = sorted({r["alert"] for s in services for r in rules[s.name]})
    tests: list[dict[str, Any]] = [
        {
            "name": "healthy pods in every namespace raise no alert",
            "series": all_healthy,
            "checks": [
                {"at": at, "alert": alert, "expected": []}
                for alert in alerts
                for at in ("5m", "20m")
            ],
        }
    ]
    for gone in namespaces:
        running = [n for n in namespaces if n != gone]
        tests.append(
            _test(
                f"{gone} is gone while {', '.join(running) or 'nothing else'} runs",
                [row for s in services for n in running for row in healthy(s, n)],
                "TargetMissing" if web else "WorkerNotRunning",
                "1m",
                "3m",
                expected("TargetMissing", web, [gone], per_namespace)
                if web
                else expected("WorkerNotRunning", workers, [gone], lambda s, n: {}),
            )
        )
        if web and workers:
            tests[-1]["checks"] += [
                {"at": "1m", "alert": "WorkerNotRunning", "expected": []},
                {
                    "at": "3m",
                    "alert": "WorkerNotRunning",
                    "expected": expected("WorkerNotRunning", workers, [gone], lambda s, n: {}),
                },
            ]
    if web:
        tests += [
            _test(
                f"TargetDown after {DOWN_FOR} down",
                [_series("up", pod(s, n), "1 1 0x10") for s in web for n in namespaces],
                "TargetDown",
                "3m",
                "5m",
                expected("TargetDown", web, namespaces, pod),
            ),
            _test(
                "HighErrorRatio at 25% of 5xx",
                [row for s in web for n in namespaces for row in _traffic(pod(s, n), "45", "15")],
                "HighErrorRatio",
                "4m",
                "10m",
                expected("HighErrorRatio", web, namespaces, per_namespace, "25%"),
            ),
            _test(
                "HighLatencyP95 when requests take 1 to 2.5 s",
                [row for s in web for n in namespaces for row in _buckets(pod(s, n), SLOW_BUCKETS)],
                "HighLatencyP95",
                "5m",
                "15m",
                expected("HighLatencyP95", web, namespaces, per_namespace, "2.425s"),
            ),
        ]
    tests.append(
        _test(
            "RestartLoop when a container restarts every minute",
            [
                _series("kube_pod_container_status_restarts_total", container(s, n), "0+1x30")
                for s in services
                for n in namespaces
            ],
            "RestartLoop",
            "2m",
            "10m",
            expected("RestartLoop", services, namespaces, container, RESTART_VALUE),
        )
    )
    if released:
        tests.append(
            _test(
                "ReleaseFailed when a release Job has a failed pod",
                [
                    _series("kube_job_status_failed", job(s, n), "0 0 1x10")
                    for s in released
                    for n in namespaces
                ],
                "ReleaseFailed",
                "1m",
                "3m",
                expected("ReleaseFailed", released, namespaces, job),
            )
        )
    return tests


def _dashboard(project: Project, service: Service) -> dict[str, Any]:
    """One Grafana dashboard: request rate, error ratio, p95 latency, targets up, restarts."""
    job = f"job={promql_str(service.name)}"
    window = "$__rate_interval"
    panels: list[tuple[str, str, list[tuple[str, str]]]] = [
        (
            "Request rate by status",
            "reqps",
            [
                (
                    f"sum by (namespace, status) (rate(http_requests_total{{{job}}}[{window}]))",
                    "{{namespace}} {{status}}",
                )
            ],
        ),
        (
            "Error ratio (5xx)",
            "percentunit",
            [
                (
                    "sum by (namespace) "
                    f"(rate(http_requests_total{{{job}, status=~'5..'}}[{window}]))"
                    f" / sum by (namespace) (rate(http_requests_total{{{job}}}[{window}]))",
                    "{{namespace}}",
                )
            ],
        ),
        (
            "Latency p95",
            "s",
            [
                (
                    "histogram_quantile(0.95, sum by (namespace, le) "
                    f"(rate(http_request_duration_seconds_bucket{{{job}}}[{window}])))",
                    "{{namespace}}",
                )
            ],
        ),
        ("Targets up", "none", [(f"up{{{job}}}", "{{namespace}} {{instance}}")]),
        (
            f"Restarts ({RESTART_WINDOW})",
            "none",
            # The same signals as the RestartLoop rules: kube-state-metrics' counter in a
            # cluster, new process starts elsewhere (each query is empty where it does not apply).
            [
                (
                    "increase(kube_pod_container_status_restarts_total"
                    f"{{container={promql_str(service.name)}}}[{RESTART_WINDOW}])",
                    "{{namespace}} {{pod}}",
                ),
                (
                    f"changes(max_over_time(process_start_time_seconds{{{job}}}[{RATE_WINDOW}])"
                    f"[{RESTART_WINDOW}:1m])",
                    "{{instance}}",
                ),
            ],
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
                "targets": [
                    {"ref": chr(ord("A") + n), "expr": expr, "legend": legend}
                    for n, (expr, legend) in enumerate(queries)
                ],
                # Two panels a row; the last one spans the row when the count is odd.
                "x": 12 * (index % 2),
                "y": 8 * (index // 2),
                "w": 24 if index == len(panels) - 1 and len(panels) % 2 else 12,
            }
            for index, (title, unit, queries) in enumerate(panels)
        ],
    }


def view(project: Project) -> dict[str, Any]:
    """What the monitoring templates (and the compose monitoring profile) read."""
    web = [s for s in project.services if s.web]
    kubernetes_only = project.targets.kubernetes and not (
        project.targets.compose or project.targets.pm2
    )
    host = not kubernetes_only
    metrics_path = project.monitoring.metrics_path
    namespaces = [naming.namespace(project.name, e.name) for e in project.environments]
    rules = {s.name: _host_rules(s, metrics_path) for s in web} if host else {}
    cluster_rules = (
        {s.name: _kubernetes_rules(s, metrics_path, namespaces) for s in project.services}
        if project.targets.kubernetes
        else {}
    )
    return {
        "prometheus_image": PROMETHEUS_IMAGE,
        "grafana_image": GRAFANA_IMAGE,
        "alertmanager_image": ALERTMANAGER_IMAGE,
        "prometheus_port": PROMETHEUS_PORT,
        "grafana_port": GRAFANA_PORT,
        "alertmanager_port": ALERTMANAGER_PORT,
        # prometheus.yml serves a Prometheus beside the app: in the compose network, or on the
        # host of PM2 or plain containers. A Kubernetes-only project gets only its own config.
        "host": host,
        "compose": project.targets.compose,
        "kubernetes": project.targets.kubernetes,
        "alertmanager_host": (
            f"alertmanager:{ALERTMANAGER_PORT}"
            if project.targets.compose
            else f"127.0.0.1:{ALERTMANAGER_PORT}"
        ),
        "alertmanager_cluster": f"alertmanager:{ALERTMANAGER_PORT}",
        "alertmanager_secret": ALERTMANAGER_SECRET,
        "alertmanager_url_file": f"{SECRETS_DIR}/{ALERTMANAGER_SECRET}",
        "secrets_dir": SECRETS_DIR,
        "kube_state_metrics": KUBE_STATE_METRICS,
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
        "namespaces": namespaces,
        "groups": [{"name": s.name, "rules": rules[s.name]} for s in web] if host else [],
        "tests": _host_tests(web, rules) if host else [],
        "cluster_groups": [{"name": name, "rules": group} for name, group in cluster_rules.items()],
        "cluster_tests": _kubernetes_tests(list(project.services), cluster_rules, namespaces)
        if project.targets.kubernetes
        else [],
        "datasource_uid": DATASOURCE_UID,
        "datasource_variable": DATASOURCE_VARIABLE,
        # Panels name the data source through the dashboard's variable, whose default is the
        # provisioned uid: an imported dashboard asks for its data source instead of failing.
        "datasource": {"type": "prometheus", "uid": "${" + DATASOURCE_VARIABLE + "}"},
        "datasource_url": (
            f"http://127.0.0.1:{PROMETHEUS_PORT}"
            if not (project.targets.compose or project.targets.kubernetes)
            else f"http://prometheus:{PROMETHEUS_PORT}"
        ),
        "dashboards_path": DASHBOARDS_PATH,
        "dashboards": [_dashboard(project, s) for s in web],
    }


def _dashboard_issues(path: str, document: Any) -> list[Issue]:
    issues = []
    variables = {v["name"]: v for v in document["templating"]["list"]}
    variable = variables.get(DATASOURCE_VARIABLE, {})
    if variable.get("type") != "datasource" or variable["current"]["value"] != DATASOURCE_UID:
        issues.append(
            Issue(f"no ${DATASOURCE_VARIABLE} variable defaulting to {DATASOURCE_UID}", path)
        )
    sources = {
        source["datasource"]["uid"]
        for panel in document["panels"]
        for source in (panel, *panel["targets"])
    }
    if sources != {"${" + DATASOURCE_VARIABLE + "}"}:
        issues.append(Issue(f"panels use data sources {sorted(sources)}", path))
    return issues


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """Each file parses once; every dashboard names its data source through the variable.

    The rule unit tests are the largest files (linear in services and environments); they are
    parsed like the rest, once, from libyaml's events (generator/fastyaml.py)."""
    issues = []
    for file in files:
        try:
            if file.path.endswith(".json"):
                issues.extend(_dashboard_issues(file.path, json.loads(file.content)))
            else:
                fastyaml.load(file.content)
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as error:
            issues.append(Issue(f"does not parse: {error}", file.path))
    return issues
