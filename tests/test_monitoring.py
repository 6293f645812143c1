"""monitoring: Prometheus configs, alert rules and their promtool tests, Grafana files, compose.

promtool (Debian's `prometheus` package) checks every generated config and rule file and runs
the generated rule unit tests; dashboards must be valid JSON that the provisioning points at.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import lint, naming
from generator.targets import monitoring
from tests.conftest import EXAMPLES, ROOT, generate_tree
from tests.toolcheck import require

MONITORED = [
    e.name
    for e in EXAMPLES
    if (yaml.safe_load((e / "shipforge.yaml").read_text()).get("monitoring") or {}).get(
        "prometheus"
    )
]

# Values a descriptor may hold that YAML, PromQL, Go templates, JSON or a shell would misread.
HOSTILE = """\
version: 1
project:
  name: "on"
  description: "on 0755 ${{ x }} {{ x }} $(touch /tmp/pwned) 'q' \\"dq\\"\\nnext line"
services:
  "null":
    runtime: python
    command: "python -m app --name '{{ x }}' $(id) ${{ y }}"
    port: 8080
    health: /health.z
    env: {NOTE: "on\\n${{ z }}"}
  "yes":
    runtime: node
    command: node server.js
    port: 3000
  "off":
    runtime: python
    command: python -m worker
targets: {kubernetes: true}
monitoring: {prometheus: true, grafana: true, metrics_path: /internal/metrics.v1~x}
"""


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    (root / "shipforge.yaml").write_text(HOSTILE)
    return generate_tree(root / "shipforge.yaml", root / "out")


@pytest.fixture(scope="module")
def trees(generated: dict[str, Path], hostile: Path) -> dict[str, Path]:
    """Every generated tree with monitoring: the monitoring examples and the hostile one."""
    return {**{name: generated[name] for name in MONITORED}, "hostile": hostile}


def test_the_monitoring_examples_exist() -> None:
    assert {"18-monitoring", "19-monitoring-kubernetes"} <= set(MONITORED)


@pytest.mark.parametrize("name", [*MONITORED, "hostile"])
def test_promtool_checks_rules_and_runs_their_unit_tests(name: str, trees: dict[str, Path]) -> None:
    folder = trees[name] / "monitoring"
    pairs = [
        (folder / f"{rules}.yml", folder / f"{rules}.test.yml")
        for rules in ("alerts", "alerts.kubernetes")
        if (folder / f"{rules}.yml").exists()
    ]
    assert pairs and all(test.exists() for _, test in pairs), "every rule file has its tests"
    for rules, test in pairs:
        require(lint.promtool_check_rules(rules))
        require(lint.promtool_test_rules(test))


def _without_pod_discovery(config: Path, into: Path) -> Path:
    """The Kubernetes config with each pod discovery swapped for one static target.

    Debian's promtool is built without Kubernetes service discovery ("field
    kubernetes_sd_configs not found"), so promtool checks everything else this way, and
    test_kubernetes_discovery_keeps_only_each_services_pods checks the discovery blocks.
    """
    document = load(config)
    for job in document["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["pod.invalid:80"]}]
    into.mkdir()
    for rules in document["rule_files"]:
        shutil.copy(config.with_name(rules), into / rules)
    out = into / "prometheus.yml"
    out.write_text(yaml.safe_dump(document, sort_keys=False))
    return out


@pytest.mark.parametrize("name", [*MONITORED, "hostile"])
def test_promtool_checks_every_config(name: str, trees: dict[str, Path], tmp_path: Path) -> None:
    folder = trees[name] / "monitoring"
    host, kubernetes = folder / "prometheus.yml", folder / "prometheus.kubernetes.yml"
    assert host.exists() or kubernetes.exists()
    if host.exists():
        require(lint.promtool_check_config(host))
    if kubernetes.exists():
        require(lint.promtool_check_config(_without_pod_discovery(kubernetes, tmp_path / "k8s")))


def test_kubernetes_discovery_keeps_only_each_services_pods(trees: dict[str, Path]) -> None:
    root = trees["19-monitoring-kubernetes"]
    document = load(root / "monitoring" / "prometheus.kubernetes.yml")
    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    assert sorted(jobs) == ["api", "kube-state-metrics", "prometheus", "web"], "workers are not"
    assert jobs["kube-state-metrics"]["static_configs"] == [
        {"targets": [monitoring.KUBE_STATE_METRICS]}
    ]
    assert jobs["kube-state-metrics"]["honor_labels"] is True
    namespaces = [naming.namespace("ledger", env) for env in ("production", "staging")]
    for service, port in (("api", 8000), ("web", 3000)):
        job = jobs[service]
        assert job["metrics_path"] == "/internal/metrics"
        assert job["kubernetes_sd_configs"] == [
            {"role": "pod", "namespaces": {"names": namespaces}}
        ]
        keep, running, namespace, pod = job["relabel_configs"]
        assert keep == {
            "source_labels": [
                "__meta_kubernetes_pod_label_app_kubernetes_io_name",
                "__meta_kubernetes_pod_label_app_kubernetes_io_part_of",
                "__meta_kubernetes_pod_container_port_number",
            ],
            "regex": f"{service};ledger;{port}",
            "action": "keep",
        }
        # Prometheus anchors relabel regexes: the keep rule matches this pair and nothing else.
        anchored = re.compile(f"^(?:{keep['regex']})$")
        assert anchored.match(f"{service};ledger;{port}")
        assert not anchored.match(f"{service}x;ledger;{port}")
        assert not anchored.match(f"{service};other;{port}")
        assert running == {
            "source_labels": ["__meta_kubernetes_pod_phase"],
            "regex": "Running",
            "action": "keep",
        }
        assert namespace["target_label"] == "namespace" and pod["target_label"] == "pod"


def test_kubernetes_discovery_matches_the_generated_pods(trees: dict[str, Path]) -> None:
    """The keep rule selects the pods the kubernetes target really writes, and nothing else."""
    root = trees["19-monitoring-kubernetes"]
    manifests = sorted((root / "k8s").rglob("*.yaml")) if (root / "k8s").is_dir() else []
    deployments = [
        doc
        for path in manifests
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") in ("Deployment", "StatefulSet")
    ]
    if not deployments:
        pytest.skip("the kubernetes target wrote no workload")
    jobs = load(root / "monitoring" / "prometheus.kubernetes.yml")["scrape_configs"]
    keep = {job["job_name"]: job["relabel_configs"][0]["regex"] for job in jobs[2:]}
    scraped = {}
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for port in container.get("ports", []):
                value = ";".join(
                    (
                        labels.get("app.kubernetes.io/name", ""),
                        labels.get("app.kubernetes.io/part-of", ""),
                        str(port["containerPort"]),
                    )
                )
                scraped.update({job: value for job, regex in keep.items() if regex == value})
    assert scraped == {"api": "api;ledger;8000", "web": "web;ledger;3000"}


def test_hostile_values_land_as_the_same_strings(hostile: Path) -> None:
    folder = hostile / "monitoring"
    config = load(folder / "prometheus.yml")
    assert [job["job_name"] for job in config["scrape_configs"]] == ["prometheus", "null", "yes"]
    assert {job.get("metrics_path") for job in config["scrape_configs"][1:]} == {
        "/internal/metrics.v1~x"
    }
    assert config["scrape_configs"][1]["dns_sd_configs"][0]["names"] == ["null"]
    rules = load(folder / "alerts.yml")
    assert [group["name"] for group in rules["groups"]] == ["null", "yes"]
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["service"] == group["name"]
            assert f"job='{group['name']}'" in rule["expr"]
    for service in ("null", "yes"):
        dashboard = json.loads((folder / "grafana" / "dashboards" / f"{service}.json").read_text())
        assert dashboard["title"] == f"on / {service}"
        assert dashboard["uid"] == f"on-{service}"
    # No descriptor text other than names and the metrics path reaches the monitoring files.
    text = "".join(p.read_text() for p in folder.rglob("*") if p.is_file())
    for fragment in ("pwned", "${{", "$(id)", "next line"):
        assert fragment not in text


def test_workers_are_not_scraped_and_are_named_as_such(trees: dict[str, Path]) -> None:
    config = trees["18-monitoring"] / "monitoring" / "prometheus.yml"
    jobs = [job["job_name"] for job in load(config)["scrape_configs"]]
    assert jobs == ["prometheus", "api", "gateway"]
    assert "# Not scraped: worker (workers serve no HTTP" in config.read_text()


def test_compose_scrapes_every_replica_through_dns(trees: dict[str, Path]) -> None:
    jobs = load(trees["18-monitoring"] / "monitoring" / "prometheus.yml")["scrape_configs"]
    assert jobs[1]["dns_sd_configs"] == [
        {"names": ["api"], "type": "A", "port": 8000, "refresh_interval": "15s"}
    ]
    assert load(trees["18-monitoring"] / "monitoring" / "prometheus.yml")["rule_files"] == [
        "alerts.yml"
    ]


def _coverage(folder: Path, rules: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(service, alert) of every rule, and of every alert some unit test expects to fire."""
    groups = load(folder / f"{rules}.yml")["groups"]
    ruled = {(g["name"], r["alert"]) for g in groups for r in g["rules"]}
    tests = load(folder / f"{rules}.test.yml")["tests"]
    firing = {
        (alert["exp_labels"]["service"], check["alertname"])
        for test in tests
        for check in test["alert_rule_test"]
        for alert in check["exp_alerts"]
    }
    return ruled, firing


def test_the_alerts_cover_every_service_and_fault(trees: dict[str, Path]) -> None:
    host = trees["18-monitoring"] / "monitoring"
    ruled, firing = _coverage(host, "alerts")
    expected = ["TargetDown", "TargetMissing", "HighErrorRatio", "HighLatencyP95", "RestartLoop"]
    assert ruled == {(s, a) for s in ("api", "gateway") for a in expected}
    assert firing == ruled, "every alert of every service has a test where it fires"
    cluster = trees["19-monitoring-kubernetes"] / "monitoring"
    ruled, firing = _coverage(cluster, "alerts.kubernetes")
    web = ["TargetDown", "TargetMissing", "HighErrorRatio", "HighLatencyP95", "RestartLoop"]
    assert ruled == {(s, a) for s in ("api", "web") for a in web} | {
        ("reconciler", "WorkerNotRunning"),
        ("reconciler", "RestartLoop"),
    }
    assert firing == ruled
    # One absence rule per environment's namespace, for web services and workers alike.
    groups = {g["name"]: g["rules"] for g in load(cluster / "alerts.kubernetes.yml")["groups"]}
    for service, alert in (("api", "TargetMissing"), ("reconciler", "WorkerNotRunning")):
        namespaces = [r["labels"]["namespace"] for r in groups[service] if r["alert"] == alert]
        assert sorted(namespaces) == ["ledger-production", "ledger-staging"]


def test_the_unit_tests_grow_linearly_with_services(tmp_path: Path) -> None:
    """Each test covers every service at once: 10 times the services, about 10 times the
    bytes (the review measured 0.6 MB for 10 services and 61 MB for 100 before)."""
    sizes = {}
    for count in (5, 50):
        services = {
            f"s{i}": {"runtime": "python", "command": "python -m app", "port": 8000 + i}
            for i in range(count)
        }
        descriptor = tmp_path / f"shipforge-{count}.yaml"
        descriptor.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "project": {"name": "many"},
                    "services": services,
                    "targets": {"kubernetes": True},
                    "monitoring": {"prometheus": True},
                }
            )
        )
        folder = generate_tree(descriptor, tmp_path / f"out-{count}") / "monitoring"
        sizes[count] = sum(
            (folder / name).stat().st_size
            for name in ("alerts.test.yml", "alerts.kubernetes.test.yml")
        )
    assert sizes[50] < 11 * sizes[5], sizes


# Independent of the generated tests: the scenarios the platform review found (M1, M2).
MULTI_WORKER = """\
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - name: two gunicorn workers answer scrapes in turn, nothing restarts
    interval: 15s
    input_series:
      - series: process_start_time_seconds{job="api", instance="api:8000"}
        values: "FLIPS"
    alert_rule_test:
      - {eval_time: 10m, alertname: RestartLoop, exp_alerts: []}
      - {eval_time: 29m, alertname: RestartLoop, exp_alerts: []}
  - name: the container restarts every two minutes
    interval: 1m
    input_series:
      - series: process_start_time_seconds{job="api", instance="api:8000"}
        values: "1000 1000 1120 1120 1240 1240 1360 1360 1480 1480 1600 1600"
    alert_rule_test:
      - eval_time: 11m
        alertname: RestartLoop
        exp_alerts:
          - exp_labels: {job: api, instance: "api:8000", service: api, severity: warning}
            exp_annotations:
              summary: api api:8000 keeps restarting
              description: api:8000 of api started anew 5 times in 15m (threshold 3).
""".replace("FLIPS", " ".join(["1751000000", "1751000003", "1751000000"] * 40))

PRODUCTION_GONE = """\
rule_files: [alerts.kubernetes.yml]
evaluation_interval: 1m
tests:
  - name: production is gone while staging runs
    interval: 1m
    input_series:
      - series: up{job="api", namespace="ledger-staging", instance="10.1.0.5:8000", pod="api-1"}
        values: "1x20"
      - series: up{job="web", namespace="ledger-staging", instance="10.1.0.6:3000", pod="web-1"}
        values: "1x20"
      - series: kube_pod_container_status_running{namespace="ledger-staging", container="reconciler", pod="r-1"}
        values: "1x20"
    alert_rule_test:
      - eval_time: 10m
        alertname: TargetMissing
        exp_alerts:
          - exp_labels: {job: api, namespace: ledger-production, service: api, severity: critical}
            exp_annotations:
              summary: no pod of api is scraped in ledger-production
              description: "Prometheus has found no running pod of api in ledger-production for 2m: the Deployment is gone, scaled to 0 or none of its pods runs."
          - exp_labels: {job: web, namespace: ledger-production, service: web, severity: critical}
            exp_annotations:
              summary: no pod of web is scraped in ledger-production
              description: "Prometheus has found no running pod of web in ledger-production for 2m: the Deployment is gone, scaled to 0 or none of its pods runs."
      - eval_time: 10m
        alertname: WorkerNotRunning
        exp_alerts:
          - exp_labels: {namespace: ledger-production, service: reconciler, severity: critical}
            exp_annotations:
              summary: no container of worker reconciler runs in ledger-production
              description: "kube-state-metrics has shown no running reconciler container in ledger-production for 2m: the worker is crashing, pending or scaled to 0."
  - name: a healthy multi-worker pod that restarted twice last week is no restart loop
    interval: 1m
    input_series:
      - series: kube_pod_container_status_restarts_total{namespace="ledger-production", pod="api-1", container="api"}
        values: "2x30"
    alert_rule_test:
      - {eval_time: 20m, alertname: RestartLoop, exp_alerts: []}
"""


def _review_test(folder: Path, text: str, into: Path) -> Path:
    """A hand-written promtool test beside copies of the generated rule files."""
    into.mkdir()
    for rules in folder.glob("alerts*.yml"):
        shutil.copy(rules, into / rules.name)
    (into / "review.test.yml").write_text(text)
    return into / "review.test.yml"


def test_restart_loop_is_quiet_on_multi_worker_servers(
    trees: dict[str, Path], tmp_path: Path
) -> None:
    folder = trees["18-monitoring"] / "monitoring"
    require(lint.promtool_test_rules(_review_test(folder, MULTI_WORKER, tmp_path / "t")))


def test_target_missing_fires_for_production_while_staging_runs(
    trees: dict[str, Path], tmp_path: Path
) -> None:
    folder = trees["19-monitoring-kubernetes"] / "monitoring"
    require(lint.promtool_test_rules(_review_test(folder, PRODUCTION_GONE, tmp_path / "t")))
    rules = load(folder / "alerts.kubernetes.yml")["groups"]
    restarts = [r["expr"] for g in rules for r in g["rules"] if r["alert"] == "RestartLoop"]
    assert all("kube_pod_container_status_restarts_total" in e for e in restarts)
    assert not any("process_start_time_seconds" in r["expr"] for g in rules for r in g["rules"])


def test_alerts_reach_an_alertmanager_whose_receiver_is_a_secret(trees: dict[str, Path]) -> None:
    for name in ("18-monitoring", "19-monitoring-kubernetes"):
        folder = trees[name] / "monitoring"
        config = load(folder / "alertmanager.yml")
        (receiver,) = config["receivers"]
        assert config["route"]["receiver"] == receiver["name"]
        (webhook,) = receiver["webhook_configs"]
        assert webhook == {
            "url_file": "/run/secrets/alertmanager_webhook_url",
            "send_resolved": True,
        }
        for prometheus in folder.glob("prometheus*.yml"):
            (alerting,) = load(prometheus)["alerting"]["alertmanagers"]
            assert alerting["static_configs"][0]["targets"][0].endswith(":9093")
    root = trees["18-monitoring"]
    for file in ("compose.yaml", "compose.production.yaml"):
        document = load(root / file)
        alertmanager = document["services"]["alertmanager"]
        assert alertmanager["image"] == monitoring.ALERTMANAGER_IMAGE
        assert alertmanager["profiles"] == ["monitoring"]
        assert alertmanager["secrets"] == ["alertmanager_webhook_url"]
        assert (
            "./monitoring/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
            in (alertmanager["volumes"])
        )
        assert document["secrets"]["alertmanager_webhook_url"] == {
            "environment": "ALERTMANAGER_WEBHOOK_URL"
        }


def test_monitoring_host_ports_never_collide_with_services(tmp_path: Path) -> None:
    """Grafana's own 3000 is published on 9094; a service on a monitoring port moves it on."""
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        "version: 1\nproject: {name: ports}\nservices:\n"
        "  web: {runtime: node, command: node server.js, port: 3000}\n"
        "  metrics: {runtime: python, command: python -m m, port: 9090}\n"
        "  am: {runtime: python, command: python -m a, port: 9094}\n"
        "monitoring: {prometheus: true, grafana: true}\n"
    )
    out = generate_tree(descriptor, tmp_path / "out")
    for file in ("compose.yaml", "compose.production.yaml"):
        services = load(out / file)["services"]
        published = [
            port.split(":")[1] for service in services.values() for port in service.get("ports", [])
        ]
        assert len(published) == len(set(published)), published
        assert services["grafana"]["ports"] == ["127.0.0.1:9095:3000"]
        assert services["prometheus"]["ports"] == ["127.0.0.1:9091:9090"]
        assert services["alertmanager"]["ports"] == ["127.0.0.1:9093:9093"]


@pytest.mark.parametrize("name", [*MONITORED, "hostile"])
def test_dashboards_are_json_and_provisioned(name: str, trees: dict[str, Path]) -> None:
    grafana = trees[name] / "monitoring" / "grafana"
    provider = load(grafana / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    assert [p["options"]["path"] for p in provider] == [monitoring.DASHBOARDS_PATH]
    datasources = load(grafana / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert [d["uid"] for d in datasources] == [monitoring.DATASOURCE_UID]
    variable = "${" + monitoring.DATASOURCE_VARIABLE + "}"
    dashboards = sorted((grafana / "dashboards").glob("*.json"))
    assert dashboards, "one dashboard per web service"
    uids = set()
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        assert len(dashboard["uid"]) <= 40
        titles = [panel["title"] for panel in dashboard["panels"]]
        assert titles[:4] == [
            "Request rate by status",
            "Error ratio (5xx)",
            "Latency p95",
            "Targets up",
        ]
        (choice,) = dashboard["templating"]["list"]
        assert choice["type"] == "datasource" and choice["query"] == "prometheus"
        assert choice["current"]["value"] == monitoring.DATASOURCE_UID, "the provisioned one"
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == variable
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == variable
                assert f"'{path.stem}'" in target["expr"]
    assert len(uids) == len(dashboards)


def test_compose_mounts_what_the_provisioning_reads(trees: dict[str, Path]) -> None:
    root = trees["18-monitoring"]
    for file in ("compose.yaml", "compose.production.yaml"):
        services = load(root / file)["services"]
        prometheus, grafana = services["prometheus"], services["grafana"]
        assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
        assert "./monitoring:/etc/prometheus:ro" in prometheus["volumes"]
        mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"][:2])
        assert mounts == {
            "./monitoring/grafana/provisioning": "/etc/grafana/provisioning",
            "./monitoring/grafana/dashboards": monitoring.DASHBOARDS_PATH,
        }
        for source in mounts:
            assert (root / source).is_dir()
        # The admin password is a secret from the environment, never a value in the file.
        assert grafana["secrets"] == ["grafana_admin_password"]
        assert load(root / file)["secrets"] == {
            "alertmanager_webhook_url": {"environment": "ALERTMANAGER_WEBHOOK_URL"},
            "grafana_admin_password": {"environment": "GRAFANA_ADMIN_PASSWORD"},
        }
        assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"]
        for service in (prometheus, grafana):
            assert service["image"] in (monitoring.PROMETHEUS_IMAGE, monitoring.GRAFANA_IMAGE)
            assert re.search(r":v?\d+\.\d+\.\d+$", service["image"]), "a pinned release"
            assert all(p.startswith("127.0.0.1:") for p in service["ports"])
            assert service["healthcheck"]["test"][0] == "CMD"
        if file == "compose.production.yaml":
            assert prometheus["read_only"] is grafana["read_only"] is True


@pytest.mark.parametrize("file", ["compose.yaml", "compose.production.yaml"])
def test_compose_with_the_monitoring_profile_is_valid(
    file: str, generated: dict[str, Path]
) -> None:
    path = generated["18-monitoring"] / file
    result = lint.compose_config(path)
    # compose.production.yaml reads IMAGE_TAG from the host at deploy time.
    require(
        lint.LintResult(
            result.tool,
            result.ran,
            result.skipped_reason,
            tuple(f for f in result.findings if "IMAGE_TAG" not in f.message),
        )
    )
    require(lint.check_jsonschema(path, "vendor.compose-spec"))
    require(lint.yamllint([path, *sorted((path.parent / "monitoring").rglob("*.yml"))]))
    exe = lint.find_tool("docker-compose")
    if exe is None:
        pytest.skip("docker-compose not installed")
    # The same with the profile on: its services must resolve too, with only IMAGE_TAG unset.
    env = {"PATH": os.environ["PATH"], "IMAGE_TAG": "0123abc"}
    resolved = subprocess.run(
        [exe, "--env-file", os.devnull, "-f", str(path), "--profile", "monitoring", "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert resolved.returncode == 0, resolved.stderr
    services = yaml.safe_load(resolved.stdout)["services"]
    assert {"prometheus", "grafana"} <= set(services)


def test_only_workers_gives_empty_rules_that_promtool_accepts(tmp_path: Path) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        "version: 1\nproject: {name: jobs}\n"
        "services: {worker: {runtime: python, command: python -m worker}}\n"
        "monitoring: {prometheus: true}\n"
    )
    folder = generate_tree(descriptor, tmp_path / "out") / "monitoring"
    assert sorted(p.name for p in folder.iterdir()) == [
        "alertmanager.yml",
        "alerts.test.yml",
        "alerts.yml",
        "prometheus.yml",
    ]
    assert load(folder / "alerts.yml") == {"groups": []}
    assert [j["job_name"] for j in load(folder / "prometheus.yml")["scrape_configs"]] == [
        "prometheus"
    ]
    require(lint.promtool_check_config(folder / "prometheus.yml"))
    require(lint.promtool_test_rules(folder / "alerts.test.yml"))


def test_without_compose_the_host_config_scrapes_localhost(tmp_path: Path) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        "version: 1\nproject: {name: solo}\n"
        "services: {api: {runtime: node, command: node server.js, port: 3000}}\n"
        "targets: {compose: false}\n"
        "monitoring: {prometheus: true, grafana: true}\n"
    )
    out = generate_tree(descriptor, tmp_path / "out")
    jobs = load(out / "monitoring" / "prometheus.yml")["scrape_configs"]
    assert jobs[1] == {
        "job_name": "api",
        "metrics_path": "/metrics",
        "static_configs": [{"targets": ["127.0.0.1:3000"]}],
    }
    datasource = load(out / "monitoring/grafana/provisioning/datasources/prometheus.yml")
    assert datasource["datasources"][0]["url"] == "http://127.0.0.1:9090"
    assert not (out / "monitoring" / "prometheus.kubernetes.yml").exists()


def test_monitoring_off_emits_nothing(generated: dict[str, Path]) -> None:
    for name, root in generated.items():
        if name not in MONITORED:
            assert not (root / "monitoring").exists()
            if (root / "compose.yaml").exists():
                assert "prometheus" not in (root / "compose.yaml").read_text()


def test_the_target_owns_and_checks_its_templates() -> None:
    from generator.render import TEMPLATE_DIR, Rendered
    from generator.targets import owner

    mine = [
        p.relative_to(TEMPLATE_DIR).as_posix()
        for p in TEMPLATE_DIR.rglob("*.jinja")
        if p.relative_to(TEMPLATE_DIR).parts[0].endswith("monitoring{% endif %}")
    ]
    assert len(mine) == 10
    assert {getattr(owner(t), "name", None) for t in mine} == {"monitoring"}
    project = generator_project()
    bad = [
        Rendered("monitoring/alerts.yml", mine[0], "groups: [", False),
        Rendered("monitoring/grafana/dashboards/api.json", mine[0], "{", False),
        Rendered(
            "monitoring/grafana/dashboards/web.json",
            mine[0],
            json.dumps(
                {
                    "templating": {"list": []},
                    "panels": [{"datasource": {"uid": "other"}, "targets": []}],
                }
            ),
            False,
        ),
    ]
    issues = monitoring.check(project, bad)
    assert sorted({issue.file for issue in issues}) == sorted(b.path for b in bad)
    assert [i.message for i in issues if i.file.endswith("web.json")] == [
        "no $datasource variable defaulting to prometheus",
        "panels use data sources ['other']",
    ]


def generator_project() -> Any:
    from generator.loader import load as load_descriptor

    return load_descriptor(EXAMPLES[0] / "shipforge.yaml")


LARGE = 200


@pytest.mark.slow
def test_promtool_checks_and_tests_the_rules_of_a_large_project(tmp_path: Path) -> None:
    """Every target on, LARGE services (bench/bench_scale.py's descriptor): the rules still
    pass promtool's lint, and their unit tests still pass (they are linear in services, so
    promtool's time is too)."""
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "bench_scale.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(yaml.safe_dump(bench.descriptor(LARGE), sort_keys=False))
    folder = generate_tree(descriptor, tmp_path / "out") / "monitoring"
    for rules in ("alerts", "alerts.kubernetes"):
        require(lint.promtool_check_rules(folder / f"{rules}.yml"))
        require(lint.promtool_test_rules(folder / f"{rules}.test.yml"))
    require(lint.promtool_check_config(folder / "prometheus.yml"))
    tests = load(folder / "alerts.kubernetes.test.yml")["tests"]
    firing = {
        alert["exp_labels"]["service"]
        for test in tests
        for check in test["alert_rule_test"]
        for alert in check["exp_alerts"]
    }
    assert len(firing) == LARGE, "every service has alerts that fire in the tests"
