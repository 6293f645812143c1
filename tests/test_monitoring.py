"""monitoring: Prometheus configs, alert rules and their promtool tests, Grafana files, compose.

promtool (Debian's `prometheus` package) checks every generated config and rule file and runs
the generated rule unit tests; dashboards must be valid JSON that the provisioning points at.
"""

from __future__ import annotations

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
from tests.conftest import EXAMPLES, generate_tree
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
    require(lint.promtool_check_rules(folder / "alerts.yml"))
    require(lint.promtool_test_rules(folder / "alerts.test.yml"))


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
    shutil.copy(config.with_name("alerts.yml"), into / "alerts.yml")
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
    assert sorted(jobs) == ["api", "prometheus", "web"], "workers are not scraped"
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
    keep = {job["job_name"]: job["relabel_configs"][0]["regex"] for job in jobs[1:]}
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


def test_the_alerts_cover_every_web_service_and_fault(trees: dict[str, Path]) -> None:
    rules = load(trees["18-monitoring"] / "monitoring" / "alerts.yml")
    expected = ["TargetDown", "TargetMissing", "HighErrorRatio", "HighLatencyP95", "RestartLoop"]
    assert {g["name"]: [r["alert"] for r in g["rules"]] for g in rules["groups"]} == {
        "api": expected,
        "gateway": expected,
    }
    tests = load(trees["18-monitoring"] / "monitoring" / "alerts.test.yml")["tests"]
    tested = {
        (t["name"].split(":")[0], c["alertname"]) for t in tests for c in t["alert_rule_test"]
    }
    assert tested == {(s, a) for s in ("api", "gateway") for a in expected}
    firing = {
        (t["name"].split(":")[0], c["alertname"])
        for t in tests
        for c in t["alert_rule_test"]
        if c["exp_alerts"]
    }
    assert firing == tested, "every alert has a test where it fires"


@pytest.mark.parametrize("name", [*MONITORED, "hostile"])
def test_dashboards_are_json_and_provisioned(name: str, trees: dict[str, Path]) -> None:
    grafana = trees[name] / "monitoring" / "grafana"
    provider = load(grafana / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    assert [p["options"]["path"] for p in provider] == [monitoring.DASHBOARDS_PATH]
    datasources = load(grafana / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert [d["uid"] for d in datasources] == [monitoring.DATASOURCE_UID]
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
        for panel in dashboard["panels"]:
            (target,) = panel["targets"]
            assert target["datasource"]["uid"] == monitoring.DATASOURCE_UID
            assert f"job='{path.stem}'" in target["expr"]
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
            "grafana_admin_password": {"environment": "GRAFANA_ADMIN_PASSWORD"}
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
    assert len(mine) == 7
    assert {getattr(owner(t), "name", None) for t in mine} == {"monitoring"}
    project = generator_project()
    bad = [
        Rendered("monitoring/alerts.yml", mine[0], "groups: [", False),
        Rendered("monitoring/grafana/dashboards/api.json", mine[0], "{", False),
        Rendered(
            "monitoring/grafana/dashboards/web.json",
            mine[0],
            json.dumps({"panels": [{"targets": [{"datasource": {"uid": "other"}}]}]}),
            False,
        ),
    ]
    assert [issue.file for issue in monitoring.check(project, bad)] == [b.path for b in bad]


def generator_project() -> Any:
    from generator.loader import load as load_descriptor

    return load_descriptor(EXAMPLES[0] / "shipforge.yaml")
