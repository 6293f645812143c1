"""The generated deploy scripts, run against fake platform CLIs that record every call.

For each platform: a healthy deploy exits 0 and rolls nothing back; a failed rollout and a failed
smoke test trigger that platform's rollback and exit non-zero; a failed release changes nothing
else; a missing variable stops the script before any platform command; the manual rollback
calls the platform's rollback. The fakes live in tests/fixtures/fakebin/fake.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator import lint
from tests.toolcheck import require

FAKE = Path(__file__).parent / "fixtures" / "fakebin" / "fake.py"
PLATFORM_TOOLS = {"kubectl", "aws", "gcloud", "az", "pm2", "docker", "ssh"}
SHA = "abc1234def5678901234567890abcdef12345678"
DIGEST = "sha256:" + "1" * 64
OLD = "sha256:" + "0" * 64


def _install_fakes(folder: Path) -> None:
    sys.path.insert(0, str(FAKE.parent))
    try:
        import fake  # type: ignore[import-not-found]

        fake.install(folder)
    finally:
        sys.path.pop(0)


@dataclass
class Run:
    """One script run: exit code, stderr, recorded calls and the fakes' final state."""

    code: int
    stdout: str
    stderr: str
    calls: list[list[str]]
    state: dict[str, Any]

    def of(self, tool: str) -> list[list[str]]:
        return [c[1:] for c in self.calls if c[0] == tool]

    def has(self, tool: str, *words: str) -> bool:
        return any(all(w in call for w in words) for call in self.of(tool))

    def index(self, tool: str, *words: str) -> int:
        return next(
            i for i, c in enumerate(self.calls) if c[0] == tool and all(w in c[1:] for w in words)
        )


Runner = Callable[..., Run]


@pytest.fixture
def run(tmp_path: Path, generated: dict[str, Path]) -> Runner:
    """run(example, script_args, env, state) -> Run, in a fresh copy of the generated example."""
    fakebin = tmp_path / "fakebin"
    _install_fakes(fakebin)

    def go(example: str, args: list[str], env: dict[str, str], state: dict[str, Any]) -> Run:
        project = tmp_path / "project"
        if project.exists():
            shutil.rmtree(project)
        shutil.copytree(generated[example], project, symlinks=True)
        log, state_file = tmp_path / "calls.jsonl", tmp_path / "state.json"
        log.write_text("")
        state_file.write_text(json.dumps(state))
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        base = {
            "PATH": f"{fakebin}:/usr/bin:/bin",
            "HOME": str(home),
            "FAKE_LOG": str(log),
            "FAKE_STATE": str(state_file),
            "SMOKE_DELAY": "0",
            "SMOKE_ATTEMPTS": "2",
            "POLL_INTERVAL": "0",
        }
        done = subprocess.run(
            ["bash", *args],
            cwd=project,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        state_now = json.loads(state_file.read_text())
        return Run(done.returncode, done.stdout, done.stderr, calls, state_now)

    return go


def _needs_jq() -> None:
    if shutil.which("jq") is None:
        if os.environ.get("CI"):
            pytest.fail("jq is missing: tests/install-tools.sh must install it", pytrace=False)
        pytest.skip("jq is not installed")


def test_every_script_passes_shellcheck(generated: dict[str, Path]) -> None:
    # One shellcheck run per example (with its lib.sh, which the others source), in parallel:
    # shellcheck takes a while per file.
    groups = [sorted(str(p) for p in tree.glob("deploy/*.sh")) for tree in generated.values()]
    groups = [g for g in groups if g]
    assert len({Path(p).name for g in groups for p in g}) >= 8, groups
    with ThreadPoolExecutor() as pool:
        results = list(pool.map(lint.shellcheck, groups))
    for result in results:
        require(result)


def test_scripts_are_executable(generated: dict[str, Path]) -> None:
    for tree in generated.values():
        for script in tree.glob("deploy/*.sh"):
            assert os.access(script, os.X_OK), script


# --- kubernetes (examples/06-github-kubernetes) ----------------------------------------

K8S = "06-github-kubernetes"
K8S_ENV = {
    "KUBECONFIG": "/dev/null",
    "GIT_SHA": SHA,
    "IMAGE_API": f"ghcr.io/acme/ledger-api@{DIGEST}",
}


def k8s_state(**knobs: Any) -> dict[str, Any]:
    workloads = ["deployment/api", "deployment/worker"]
    revisions = {} if knobs.get("new_workloads") else dict.fromkeys(workloads, "3")
    return {"workloads": workloads, "revisions": revisions, "knobs": knobs}


@pytest.fixture
def real_kubectl() -> dict[str, str]:
    found = shutil.which("kubectl")
    return {"REAL_KUBECTL": found} if found else {}


def test_kubernetes_healthy_deploy_runs_the_release_first_and_rolls_nothing_back(
    run: Runner, real_kubectl: dict[str, str]
) -> None:
    r = run(
        K8S, ["deploy/kubernetes.sh", "deploy", "staging"], {**K8S_ENV, **real_kubectl}, k8s_state()
    )
    assert r.code == 0, r.stderr
    release = r.index("kubectl", "wait", "--for=condition=complete", "job/api-release-abc1234")
    app = max(i for i, c in enumerate(r.calls) if c[0] == "kubectl" and "apply" in c)
    assert release < app
    assert r.has("kubectl", "rollout", "status", "deployment/api", "--timeout=600s")
    assert r.has("kubectl", "rollout", "status", "deployment/worker")
    assert r.has("curl", "https://staging.ledger.example.com/healthz")
    assert not r.has("kubectl", "undo")
    release_wrapper, app_wrapper = r.state["applied"]
    assert (
        "../../release/staging" in release_wrapper
        and 'target: {kind: Job, name: "api-release"}' in release_wrapper
        and 'value: "api-release-abc1234"' in release_wrapper
        and "nameSuffix" not in release_wrapper
    )
    assert "../../overlays/staging" in app_wrapper and f'digest: "{DIGEST}"' in app_wrapper
    if real_kubectl:  # the wrappers really build with the generated manifests
        release_built, app_built = r.state["built"]
        assert "name: api-release-abc1234" in release_built
        assert "name: api-abc1234" not in release_built, "only the Job is renamed"
        assert f"ghcr.io/acme/ledger-api@{DIGEST}" in app_built
        assert "@sha256" not in app_built.replace(f"ghcr.io/acme/ledger-api@{DIGEST}", "")


def test_kubernetes_failed_rollout_is_undone(run: Runner) -> None:
    r = run(
        K8S, ["deploy/kubernetes.sh", "deploy", "staging"], K8S_ENV, k8s_state(rollout_fail=True)
    )
    assert r.code != 0
    assert r.has("kubectl", "rollout", "undo", "deployment/api")
    assert r.has("kubectl", "rollout", "undo", "deployment/worker")
    assert not r.of("curl")
    assert "rolled back: deployment/api deployment/worker" in r.stderr


def test_kubernetes_failed_smoke_test_is_undone(run: Runner) -> None:
    state = k8s_state(curl_fail=["staging.ledger.example.com"])
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "staging"], K8S_ENV, state)
    assert r.code != 0
    assert len(r.of("curl")) == 2  # SMOKE_ATTEMPTS
    assert r.has("kubectl", "rollout", "undo", "deployment/api")
    assert r.index("curl") < r.index("kubectl", "undo", "deployment/api")


def test_kubernetes_failed_release_changes_nothing_else(run: Runner) -> None:
    r = run(
        K8S, ["deploy/kubernetes.sh", "deploy", "staging"], K8S_ENV, k8s_state(release_fail=True)
    )
    assert r.code != 0
    assert len(r.state["applied"]) == 1 and "release/staging" in r.state["applied"][0]
    assert not r.has("kubectl", "rollout")
    assert "nothing else was changed" in r.stderr


def test_kubernetes_first_deploy_has_nothing_to_undo(run: Runner) -> None:
    state = k8s_state(new_workloads=True, rollout_fail=True)
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "staging"], K8S_ENV, state)
    assert r.code != 0
    assert not r.has("kubectl", "undo")
    assert "no previous revision" in r.stderr


@pytest.mark.parametrize(
    ("earlier", "deleted"), [("running", False), ("complete", False), ("failed", True)]
)
def test_kubernetes_rerun_never_deletes_a_running_migration(
    run: Runner, earlier: str, deleted: bool
) -> None:
    state = k8s_state()
    state["jobs"] = {"job/api-release-abc1234": earlier}
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "staging"], K8S_ENV, state)
    assert r.code == 0, r.stderr
    assert r.has("kubectl", "delete", "job", "api-release-abc1234") == deleted


def test_kubernetes_release_still_running_at_the_timeout_is_left_and_nothing_rolls_out(
    run: Runner,
) -> None:
    env = {**K8S_ENV, "RELEASE_TIMEOUT": "0"}
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "staging"], env, k8s_state(release_hangs=True))
    assert r.code != 0 and "left to finish" in r.stderr
    assert len(r.state["applied"]) == 1  # the release Job only, never the overlay
    assert not r.has("kubectl", "delete")
    assert r.state["revisions"] == k8s_state()["revisions"]


@pytest.mark.parametrize("missing", ["KUBECONFIG", "GIT_SHA", "IMAGE_API"])
def test_kubernetes_missing_variable_stops_before_kubectl(run: Runner, missing: str) -> None:
    env = {k: v for k, v in K8S_ENV.items() if k != missing}
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "staging"], env, k8s_state())
    assert r.code != 0 and missing in r.stderr
    assert not r.calls


def test_kubernetes_image_must_be_pinned_by_digest(run: Runner) -> None:
    env = {**K8S_ENV, "IMAGE_API": "ghcr.io/acme/ledger-api:latest"}
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "staging"], env, k8s_state())
    assert r.code != 0 and "pinned by digest" in r.stderr and not r.calls


def test_kubernetes_manual_rollback_undoes_every_workload(run: Runner) -> None:
    r = run(
        K8S,
        ["deploy/kubernetes.sh", "rollback", "production"],
        {"KUBECONFIG": "/dev/null"},
        k8s_state(),
    )
    assert r.code == 0, r.stderr
    assert r.has("kubectl", "rollout", "undo", "deployment/api", "--namespace", "ledger-production")
    assert r.has("kubectl", "rollout", "undo", "deployment/worker")
    assert r.has("curl", "https://ledger.example.com/healthz")


def test_unknown_environment_is_refused(run: Runner) -> None:
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "qa"], K8S_ENV, k8s_state())
    assert r.code != 0 and "unknown environment 'qa'" in r.stderr and not r.calls


# --- aws-ecs (examples/08-github-aws-ecs) ----------------------------------------------

ECS = "08-github-aws-ecs"
ECS_ENV = {
    "AWS_REGION": "eu-west-1",
    "GIT_SHA": SHA,
    "IMAGE_API": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/invoicer-staging/invoicer-api@{DIGEST}",
    "ECS_SUBNETS": "subnet-1,subnet-2",
    "ECS_SECURITY_GROUPS_API": "sg-1,sg-2",
}


# The deploy and rollback paths run against moto with the real AWS CLI:
# tests/test_deploy_ecs_moto.py. Here: only what stops the script before any AWS call.


def ecs_state() -> dict[str, Any]:
    return {"knobs": {}}


@pytest.mark.parametrize("missing", ["AWS_REGION", "ECS_SUBNETS", "ECS_SECURITY_GROUPS_API"])
def test_ecs_missing_variable_stops_before_aws(run: Runner, missing: str) -> None:
    env = {k: v for k, v in ECS_ENV.items() if k != missing}
    r = run(ECS, ["deploy/aws-ecs.sh", "deploy", "staging"], env, ecs_state())
    assert r.code != 0 and missing in r.stderr and not r.calls


# --- gcp-cloud-run (examples/09-gitlab-gcp-cloud-run) ----------------------------------

RUN = "09-gitlab-gcp-cloud-run"
RUN_ENV = {
    "GCP_PROJECT": "acme-prod",
    "GCP_REGION": "europe-west1",
    "GIT_SHA": SHA,
    "IMAGE_WEB": f"europe-docker.pkg.dev/acme/apps/shortlinks-web@{DIGEST}",
}
SERVICE = "shortlinks-staging-web"
POOL = "shortlinks-staging-expirer"


def run_state(**knobs: Any) -> dict[str, Any]:
    return {
        "pools": {
            POOL: {
                "latestReadyRevision": f"projects/p/locations/r/workerPools/{POOL}/revisions/{POOL}-00001-old",
                "instanceSplits": [
                    {"type": "INSTANCE_SPLIT_ALLOCATION_TYPE_LATEST", "percent": 100}
                ],
                "revisions": [f"{POOL}-00001-old"],
            }
        },
        "services": {
            SERVICE: {
                "status": {
                    "url": "https://shortlinks-staging-web-abc-ew.a.run.app",
                    "traffic": [{"revisionName": f"{SERVICE}-00001-old", "percent": 100}],
                }
            }
        },
        "knobs": knobs,
    }


def serving(state: dict[str, Any]) -> str:
    traffic = state["services"][SERVICE]["status"]["traffic"]
    return str(next(t["revisionName"] for t in traffic if t.get("percent") == 100))


def pool_serving(state: dict[str, Any]) -> str:
    pool = state["pools"][POOL]
    split = pool["instanceSplits"][0]
    return str(split.get("revision") or pool["latestReadyRevision"].rsplit("/", 1)[1])


def pool_revisions(state: dict[str, Any]) -> list[str]:
    return list(state["pools"][POOL]["revisions"])


def test_cloud_run_verifies_the_tagged_revision_before_traffic_moves(run: Runner) -> None:
    _needs_jq()
    r = run(RUN, ["deploy/gcp-cloud-run.sh", "deploy", "staging"], RUN_ENV, run_state())
    assert r.code == 0, r.stderr
    job = r.index("gcloud", "execute", "shortlinks-staging-web-release", "--wait")
    deploy = r.index("gcloud", "deploy", SERVICE, "--no-traffic", "--tag", "sha-abc1234")
    candidate = r.index(
        "curl", "https://sha-abc1234---shortlinks-staging-web-abc-ew.a.run.app/healthz"
    )
    shift = r.index(
        "gcloud", "update-traffic", SERVICE, "--to-revisions", f"{SERVICE}-00002-new=100"
    )
    assert job < deploy < candidate < shift
    assert r.has("curl", "https://shortlinks-staging-web-abc-ew.a.run.app/healthz")
    assert serving(r.state) == f"{SERVICE}-00002-new"
    assert r.has("gcloud", "--update-tags", f"rollback={SERVICE}-00001-old")
    pool = r.index("gcloud", "worker-pools", "deploy", POOL)
    assert shift < pool
    assert pool_serving(r.state) == f"{POOL}-00002-new"


def test_cloud_run_failed_smoke_test_moves_traffic_back(run: Runner) -> None:
    _needs_jq()
    state = run_state(curl_fail=["https://shortlinks-staging-web-abc-ew"])
    r = run(RUN, ["deploy/gcp-cloud-run.sh", "deploy", "staging"], RUN_ENV, state)
    assert r.code != 0
    assert r.has("gcloud", "update-traffic", SERVICE, "--to-revisions", f"{SERVICE}-00001-old=100")
    assert serving(r.state) == f"{SERVICE}-00001-old"
    assert pool_serving(r.state) == f"{POOL}-00001-old"


def test_cloud_run_worker_pool_that_never_gets_ready_moves_the_service_back(run: Runner) -> None:
    _needs_jq()
    r = run(
        RUN, ["deploy/gcp-cloud-run.sh", "deploy", "staging"], RUN_ENV, run_state(pool_fail=True)
    )
    assert r.code != 0
    assert serving(r.state) == f"{SERVICE}-00001-old"
    assert pool_serving(r.state) == f"{POOL}-00001-old"


def test_cloud_run_failed_candidate_never_gets_traffic(run: Runner) -> None:
    _needs_jq()
    r = run(
        RUN,
        ["deploy/gcp-cloud-run.sh", "deploy", "staging"],
        RUN_ENV,
        run_state(curl_fail=["sha-abc1234---"]),
    )
    assert r.code != 0
    assert not r.has("gcloud", "update-traffic")
    assert serving(r.state) == f"{SERVICE}-00001-old"


def test_cloud_run_failed_release_deploys_nothing(run: Runner) -> None:
    _needs_jq()
    r = run(
        RUN, ["deploy/gcp-cloud-run.sh", "deploy", "staging"], RUN_ENV, run_state(release_fail=True)
    )
    assert r.code != 0 and not r.has("gcloud", "deploy")


def test_cloud_run_missing_project_stops_before_gcloud(run: Runner) -> None:
    env = {k: v for k, v in RUN_ENV.items() if k != "GCP_PROJECT"}
    r = run(RUN, ["deploy/gcp-cloud-run.sh", "deploy", "staging"], env, run_state())
    assert r.code != 0 and "GCP_PROJECT" in r.stderr and not r.calls


def test_cloud_run_manual_rollback_uses_the_rollback_tag(run: Runner) -> None:
    _needs_jq()
    state = run_state()
    state["services"][SERVICE]["status"]["traffic"].append(
        {"revisionName": f"{SERVICE}-00000-older", "tag": "rollback", "percent": 0}
    )
    env = {"GCP_PROJECT": "acme-prod", "GCP_REGION": "europe-west1"}
    state["pools"][POOL]["revisions"] = [f"{POOL}-00001-old", f"{POOL}-00002-new"]
    state["pools"][POOL]["instanceSplits"] = [{"revision": f"{POOL}-00002-new", "percent": 100}]
    r = run(RUN, ["deploy/gcp-cloud-run.sh", "rollback", "staging"], env, state)
    assert r.code == 0, r.stderr
    assert serving(r.state) == f"{SERVICE}-00000-older"
    assert pool_serving(r.state) == f"{POOL}-00001-old"


def test_cloud_run_failure_halfway_moves_every_service_back(run: Runner) -> None:
    _needs_jq()
    r = run(
        RUN, ["deploy/gcp-cloud-run.sh", "deploy", "staging"], RUN_ENV, run_state(split_fail=True)
    )
    assert r.code != 0 and "PERMISSION_DENIED" in r.stderr
    # The service had already moved to its new revision: it serves the old one again.
    assert serving(r.state) == f"{SERVICE}-00001-old"
    assert pool_serving(r.state) == f"{POOL}-00001-old"
    assert "restored and verified" in r.stderr


def test_cloud_run_second_manual_rollback_never_returns_to_the_one_it_left(run: Runner) -> None:
    _needs_jq()
    state = run_state()
    state["services"][SERVICE]["status"]["traffic"].append(
        {"revisionName": f"{SERVICE}-00000-older", "tag": "rollback", "percent": 0}
    )
    state["pools"][POOL]["revisions"] = [f"{POOL}-00001-old", f"{POOL}-00002-new"]
    state["pools"][POOL]["instanceSplits"] = [{"revision": f"{POOL}-00002-new", "percent": 100}]
    env = {"GCP_PROJECT": "acme-prod", "GCP_REGION": "europe-west1"}
    first = run(RUN, ["deploy/gcp-cloud-run.sh", "rollback", "staging"], env, state)
    assert first.code == 0, first.stderr
    assert serving(first.state) == f"{SERVICE}-00000-older"
    second = run(RUN, ["deploy/gcp-cloud-run.sh", "rollback", "staging"], env, first.state)
    assert second.code != 0 and "no earlier verified revision" in second.stderr
    assert serving(second.state) == f"{SERVICE}-00000-older"
    assert not second.has("gcloud", "update-traffic")


def test_cloud_run_worker_pool_deploy_rollbacks_and_redeploy_end_in_the_platform_state(
    run: Runner,
) -> None:
    """Deploy, a failed deploy rolled back automatically, a deploy, a manual rollback, a
    deploy again: the pool always runs the verified revision, and a rollback never returns to
    a revision that failed."""
    _needs_jq()
    env = {"GCP_PROJECT": "acme-prod", "GCP_REGION": "europe-west1"}
    deploy = ["deploy/gcp-cloud-run.sh", "deploy", "staging"]
    first = run(RUN, deploy, RUN_ENV, run_state())
    assert first.code == 0, first.stderr
    assert pool_serving(first.state) == f"{POOL}-00002-new"
    assert first.has("gcloud", "run", "worker-pools", "deploy", POOL)
    assert not first.has("gcloud", "beta")

    # A deploy whose smoke test fails: the pool is pinned back, its new revision deleted.
    state = first.state
    state["knobs"] = {"curl_fail": ["https://shortlinks-staging-web-abc-ew"]}
    failed = run(RUN, deploy, RUN_ENV, state)
    assert failed.code != 0
    assert pool_serving(failed.state) == f"{POOL}-00002-new"
    assert failed.has("gcloud", "revisions", "delete", f"{POOL}-00003-new")
    assert pool_revisions(failed.state) == [f"{POOL}-00001-old", f"{POOL}-00002-new"]

    # The split stays pinned to 00002 after the rollback; the next deploy moves it itself.
    state = failed.state
    state["knobs"] = {}
    good = run(RUN, deploy, RUN_ENV, state)
    assert good.code == 0, good.stderr
    assert good.has(
        "gcloud", "update-instance-split", POOL, "--to-revisions", f"{POOL}-00004-new=100"
    )
    assert pool_serving(good.state) == f"{POOL}-00004-new"

    # The manual rollback returns to 00002 (verified), not to 00003 (failed and deleted), and
    # deletes 00004, so a second rollback goes further back.
    back = run(RUN, ["deploy/gcp-cloud-run.sh", "rollback", "staging"], env, good.state)
    assert back.code == 0, back.stderr
    assert pool_serving(back.state) == f"{POOL}-00002-new"
    assert pool_revisions(back.state) == [f"{POOL}-00001-old", f"{POOL}-00002-new"]

    again = run(RUN, deploy, RUN_ENV, back.state)
    assert again.code == 0, again.stderr
    assert pool_serving(again.state) == f"{POOL}-00005-new"


def test_cloud_run_worker_pool_revision_that_never_gets_ready_is_deleted(run: Runner) -> None:
    _needs_jq()
    r = run(
        RUN, ["deploy/gcp-cloud-run.sh", "deploy", "staging"], RUN_ENV, run_state(pool_fail=True)
    )
    assert r.code != 0
    assert pool_serving(r.state) == f"{POOL}-00001-old"
    assert r.has("gcloud", "revisions", "delete", f"{POOL}-00002-new")
    assert pool_revisions(r.state) == [f"{POOL}-00001-old"]


# --- azure-container-apps (examples/10-github-azure-container-apps) --------------------

ACA = "10-github-azure-container-apps"
ACA_ENV = {"GIT_SHA": SHA, "IMAGE_WEB": f"crsurvey.azurecr.io/survey-web@{DIGEST}"}
WEB, WORKER = "survey-staging-web", "survey-staging-worker"


def aca_state(**knobs: Any) -> dict[str, Any]:
    return {
        "current": {WEB: f"{WEB}--old", WORKER: f"{WORKER}--old"},
        "ingress": {WEB: True, WORKER: False},
        "knobs": knobs,
    }


def test_container_apps_healthy_deploy(run: Runner) -> None:
    r = run(ACA, ["deploy/azure-container-apps.sh", "deploy", "staging"], ACA_ENV, aca_state())
    assert r.code == 0, r.stderr
    assert r.has("az", "containerapp", "job", "start", "--name", "survey-staging-web-release")
    pin = r.index("az", "ingress", "traffic", "set", f"{WEB}--old=100")
    create = r.index("az", "containerapp", "update", "--name", WEB)
    assert pin < create
    new = next(c for c in r.state["created"] if c.startswith(WEB))
    assert r.has("curl", f"https://{new}.example.azurecontainerapps.io/health")
    assert r.state["current"][WEB] == new
    assert r.has("az", "revision", "deactivate", "--name", WORKER, "--revision", f"{WORKER}--old")
    assert r.state["tags"] == {WEB: f"{WEB}--old", WORKER: f"{WORKER}--old"}
    assert all(
        "--resource-group" in c and "rg-survey-staging" in c
        for c in r.of("az")
        if c[0] == "containerapp"
    )


def test_container_apps_failed_smoke_test_moves_traffic_back(run: Runner) -> None:
    state = aca_state(curl_fail=["survey-staging-web.example.azurecontainerapps.io"])
    r = run(ACA, ["deploy/azure-container-apps.sh", "deploy", "staging"], ACA_ENV, state)
    assert r.code != 0
    assert r.state["current"] == {WEB: f"{WEB}--old", WORKER: f"{WORKER}--old"}
    assert not r.state.get("tags")


def test_container_apps_failed_revision_never_gets_traffic(run: Runner) -> None:
    r = run(
        ACA,
        ["deploy/azure-container-apps.sh", "deploy", "staging"],
        ACA_ENV,
        aca_state(revision_state="Failed"),
    )
    assert r.code != 0
    assert r.state["current"][WEB] == f"{WEB}--old"
    assert any(rev.startswith(f"{WEB}--r") for rev in r.state["deactivated"])


def test_container_apps_failed_release_creates_no_revision(run: Runner) -> None:
    r = run(
        ACA,
        ["deploy/azure-container-apps.sh", "deploy", "staging"],
        ACA_ENV,
        aca_state(release_fail=True),
    )
    assert r.code != 0 and not r.state.get("created")


def test_container_apps_missing_image_stops_before_az(run: Runner) -> None:
    r = run(
        ACA, ["deploy/azure-container-apps.sh", "deploy", "staging"], {"GIT_SHA": SHA}, aca_state()
    )
    assert r.code != 0 and "IMAGE_WEB" in r.stderr and not r.calls


def test_container_apps_manual_rollback_uses_the_recorded_revision(run: Runner) -> None:
    state = aca_state()
    state["tags"] = {WEB: f"{WEB}--older", WORKER: f"{WORKER}--older"}
    r = run(ACA, ["deploy/azure-container-apps.sh", "rollback", "staging"], {}, state)
    assert r.code == 0, r.stderr
    assert r.state["current"] == {WEB: f"{WEB}--older", WORKER: f"{WORKER}--older"}
    # Nothing verified before --older is recorded: a second rollback refuses before any change
    # and never returns to the revision it left.
    assert r.state["tags"] == {}
    again = run(ACA, ["deploy/azure-container-apps.sh", "rollback", "staging"], {}, r.state)
    assert again.code != 0 and "no earlier verified revision" in again.stderr
    assert again.state["current"] == {WEB: f"{WEB}--older", WORKER: f"{WORKER}--older"}


def test_container_apps_rollback_checks_every_target_before_moving(run: Runner) -> None:
    state = aca_state()
    state["tags"] = {WEB: f"{WEB}--older"}  # the worker has none recorded
    r = run(ACA, ["deploy/azure-container-apps.sh", "rollback", "staging"], {}, state)
    assert r.code != 0 and WORKER in r.stderr
    assert r.state["current"] == aca_state()["current"]
    assert not r.has("az", "activate")


# --- pm2 (examples/11-github-pm2) ------------------------------------------------------

PM2 = "11-github-pm2"
PM2_ENV = {
    "GIT_SHA": SHA,
    "PM2_DEPLOY_HOST": "app.example.net",
    "PM2_DEPLOY_USER": "deploy",
    "PM2_DEPLOY_REPO": "git@example.net:acme/status.git",
    "PM2_DEPLOY_PATH": "/srv/status",
    "SMOKE_URL_API": "https://staging.status.example.net/",
}


OLDER = "0" * 39 + "1"
OLD = "1" * 40


def pm2_state(**knobs: Any) -> dict[str, Any]:
    """A host running OLD, verified after OLDER (the host's .shipforge-verified list)."""
    if knobs.get("fresh"):
        return {"commit": "", "verified": [], "knobs": knobs}
    return {"commit": OLD[:7], "verified": [OLDER, OLD], "knobs": knobs}


def test_pm2_healthy_deploy_deploys_this_commit(run: Runner) -> None:
    r = run(PM2, ["deploy/pm2.sh", "deploy", "staging"], PM2_ENV, pm2_state())
    assert r.code == 0, r.stderr
    assert r.has("pm2", "deploy", "ecosystem.config.js", "staging", "ref", SHA)
    assert r.has("curl", "https://staging.status.example.net/healthz")
    assert not r.has("pm2", "setup") and "reverted" not in r.state
    assert r.state["commit"] == SHA[:7] and r.state["verified"] == [OLDER, OLD, SHA]


def test_pm2_first_deploy_sets_the_host_up(run: Runner) -> None:
    r = run(PM2, ["deploy/pm2.sh", "deploy", "staging"], PM2_ENV, pm2_state(fresh=True))
    assert r.code == 0, r.stderr
    assert r.index("pm2", "setup") < r.index("pm2", "ref")
    assert r.state["verified"] == [SHA]


@pytest.mark.parametrize(
    "knobs", [{"deploy_fail": "post_deploy"}, {"curl_fail": ["staging.status.example.net"]}]
)
def test_pm2_failed_deploy_or_smoke_test_goes_back_to_the_last_verified(
    run: Runner, knobs: dict[str, Any]
) -> None:
    r = run(PM2, ["deploy/pm2.sh", "deploy", "staging"], PM2_ENV, pm2_state(**knobs))
    assert r.code != 0
    assert r.index("pm2", "ref", SHA) < r.index("pm2", "ref", OLD)
    assert r.state["commit"] == OLD[:7]
    assert r.state["verified"] == [OLDER, OLD] and "reverted" not in r.state


def test_pm2_deploy_that_failed_before_the_switch_changes_nothing(run: Runner) -> None:
    r = run(
        PM2, ["deploy/pm2.sh", "deploy", "staging"], PM2_ENV, pm2_state(deploy_fail="before_switch")
    )
    assert r.code != 0 and "before the host changed" in r.stderr
    assert not r.has("pm2", "ref", OLD) and r.state["commit"] == OLD[:7]


@pytest.mark.parametrize("missing", ["PM2_DEPLOY_HOST", "SMOKE_URL_API", "GIT_SHA"])
def test_pm2_missing_variable_stops_before_pm2(run: Runner, missing: str) -> None:
    env = {k: v for k, v in PM2_ENV.items() if k != missing}
    r = run(PM2, ["deploy/pm2.sh", "deploy", "staging"], env, pm2_state())
    assert r.code != 0 and missing in r.stderr and not r.calls


def test_pm2_environment_specific_variable_counts(run: Runner) -> None:
    env = {k: v for k, v in PM2_ENV.items() if k != "PM2_DEPLOY_HOST"}
    env["PM2_DEPLOY_HOST_STAGING"] = "staging.example.net"
    r = run(PM2, ["deploy/pm2.sh", "deploy", "staging"], env, pm2_state())
    assert r.code == 0, r.stderr


def test_pm2_ssh_key_needs_known_hosts_and_goes_to_an_agent(run: Runner) -> None:
    env = {**PM2_ENV, "SSH_PRIVATE_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n"}
    r = run(PM2, ["deploy/pm2.sh", "deploy", "staging"], env, pm2_state())
    assert r.code != 0 and "SSH_KNOWN_HOSTS" in r.stderr and not r.calls
    env["SSH_KNOWN_HOSTS"] = "app.example.net ssh-ed25519 AAAAC3Nza"
    r = run(PM2, ["deploy/pm2.sh", "deploy", "staging"], env, pm2_state())
    assert r.code == 0, r.stderr
    assert r.state["ssh_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_pm2_manual_rollback_goes_to_the_verified_commit_before_the_running_one(
    run: Runner,
) -> None:
    env = {k: v for k, v in PM2_ENV.items() if k != "GIT_SHA"}
    r = run(PM2, ["deploy/pm2.sh", "rollback", "production"], env, pm2_state())
    assert r.code == 0, r.stderr
    assert r.has("pm2", "deploy", "ecosystem.config.js", "production", "ref", OLDER)
    assert r.has("curl", "https://status.example.com/healthz")
    assert r.state["commit"] == OLDER[:7] and r.state["verified"] == [OLDER]
    again = run(PM2, ["deploy/pm2.sh", "rollback", "production"], env, r.state)
    assert again.code != 0 and "no earlier verified commit" in again.stderr


def test_pm2_manual_rollback_after_an_automatic_one_never_deploys_the_failed_commit(
    run: Runner,
) -> None:
    failed = run(
        PM2,
        ["deploy/pm2.sh", "deploy", "production"],
        PM2_ENV,
        pm2_state(deploy_fail="post_deploy"),
    )
    assert failed.code != 0 and failed.state["commit"] == OLD[:7]
    env = {k: v for k, v in PM2_ENV.items() if k != "GIT_SHA"}
    r = run(PM2, ["deploy/pm2.sh", "rollback", "production"], env, failed.state)
    assert r.code == 0, r.stderr
    assert not r.has("pm2", "ref", SHA) and r.state["commit"] == OLDER[:7]


# --- compose (examples/07-gitlab-compose) ----------------------------------------------

COMPOSE = "07-gitlab-compose"
REPO = "registry.gitlab.com/acme/tickets/tickets-api"
COMPOSE_ENV = {
    "DEPLOY_HOST": "203.0.113.10",
    "DEPLOY_USER": "deploy",
    "GIT_SHA": SHA,
    "IMAGE_API": f"{REPO}@{DIGEST}",
    "SMTP_PASSWORD": "not-a-real-secret",
    "DATABASE_URL": "postgresql://db.internal/tickets",
    "SMOKE_URL_API": "http://203.0.113.10:3000",
}


def compose_state(**knobs: Any) -> dict[str, Any]:
    return {
        "running": {"api": f"{REPO}@{OLD}", "notifier": f"{REPO}@{OLD}"},
        "new_digest": DIGEST,
        "knobs": knobs,
    }


def test_compose_healthy_deploy(run: Runner) -> None:
    r = run(COMPOSE, ["deploy/compose.sh", "deploy", "staging"], COMPOSE_ENV, compose_state())
    assert r.code == 0, r.stderr
    release = r.index("docker", "run", "--rm", "api-release")
    up = r.index("docker", "up", "--detach", "--wait")
    assert r.index("docker", "pull") < release < up
    # Nothing was missing, then each service was replaced alone, awaited before the next.
    assert r.state["replaced"] == [[], ["api"], ["notifier"]]
    assert r.state["running"] == {
        "api": COMPOSE_ENV["IMAGE_API"],
        "notifier": COMPOSE_ENV["IMAGE_API"],
    }
    assert r.has("curl", "http://203.0.113.10:3000/health")
    assert r.state["tags"]["shipforge-rollback/tickets/api:staging"] == f"{REPO}@{OLD}"
    assert r.state["tags"]["shipforge-verified/tickets/api:staging"] == COMPOSE_ENV["IMAGE_API"]
    assert all(
        "compose.production.yaml" in " ".join(c) for c in r.of("docker") if c[0] == "compose"
    )


@pytest.mark.parametrize("knobs", [{"up_fail": True}, {"curl_fail": ["203.0.113.10"]}])
def test_compose_failed_deploy_brings_the_previous_images_back(
    run: Runner, knobs: dict[str, Any]
) -> None:
    r = run(
        COMPOSE, ["deploy/compose.sh", "deploy", "staging"], COMPOSE_ENV, compose_state(**knobs)
    )
    assert r.code != 0
    if knobs.get("up_fail"):
        # api (first) never became healthy: notifier was never touched, api is back.
        assert r.state["replaced"] == [[], ["api"], ["api"]]
    else:
        # Both were replaced and healthy, the smoke test failed: both are back.
        assert r.state["replaced"] == [[], ["api"], ["notifier"], ["api", "notifier"]]
    assert r.state["running"] == {"api": f"{REPO}@{OLD}", "notifier": f"{REPO}@{OLD}"}


def test_compose_failure_halfway_restores_the_services_already_replaced(run: Runner) -> None:
    r = run(
        COMPOSE,
        ["deploy/compose.sh", "deploy", "staging"],
        COMPOSE_ENV,
        compose_state(up_fail="notifier"),
    )
    assert r.code != 0 and "notifier did not become healthy" in r.stderr
    # api was replaced and healthy, notifier failed: both run their previous image again.
    assert r.state["replaced"] == [[], ["api"], ["notifier"], ["api", "notifier"]]
    assert r.state["running"] == {"api": f"{REPO}@{OLD}", "notifier": f"{REPO}@{OLD}"}
    assert "shipforge-verified/tickets/api:staging" not in r.state.get("tags", {})


def test_compose_failed_release_starts_nothing(run: Runner) -> None:
    r = run(
        COMPOSE,
        ["deploy/compose.sh", "deploy", "staging"],
        COMPOSE_ENV,
        compose_state(release_fail=True),
    )
    assert r.code != 0 and not r.has("docker", "up")


@pytest.mark.parametrize("missing", ["DEPLOY_HOST", "SMTP_PASSWORD", "SMOKE_URL_API"])
def test_compose_missing_variable_stops_before_docker(run: Runner, missing: str) -> None:
    env = {k: v for k, v in COMPOSE_ENV.items() if k != missing}
    r = run(COMPOSE, ["deploy/compose.sh", "deploy", "staging"], env, compose_state())
    assert r.code != 0 and missing in r.stderr and not r.calls


def test_compose_new_service_never_disables_the_rollback_of_the_others(run: Runner) -> None:
    state = compose_state(up_fail=True)
    del state["running"]["notifier"]  # notifier is new in this deploy
    r = run(COMPOSE, ["deploy/compose.sh", "deploy", "staging"], COMPOSE_ENV, state)
    assert r.code != 0
    # api runs its previous image again; the new notifier is removed, not left failing.
    assert r.state["running"] == {"api": f"{REPO}@{OLD}"}
    assert r.has("docker", "rm", "--stop", "--force", "notifier")


def test_compose_manual_rollback_after_an_automatic_one(run: Runner) -> None:
    """Verified v1 then v2, v3 fails and is undone, the manual rollback goes to v1, then stops."""
    v1, v2 = f"{REPO}@{OLD}", f"{REPO}@sha256:{'2' * 64}"
    state = compose_state(up_fail=True)
    state["running"] = {"api": v2, "notifier": v2}
    state["tags"] = {
        f"shipforge-{kind}/tickets/{s}:production": ref
        for s in ("api", "notifier")
        for kind, ref in (("rollback", v1), ("verified", v2))
    }
    deploy = run(COMPOSE, ["deploy/compose.sh", "deploy", "production"], COMPOSE_ENV, state)
    assert deploy.code != 0
    assert deploy.state["running"] == {"api": v2, "notifier": v2}
    env = {k: v for k, v in COMPOSE_ENV.items() if k not in ("GIT_SHA", "IMAGE_API")}
    state = {**deploy.state, "knobs": {}}
    r = run(COMPOSE, ["deploy/compose.sh", "rollback", "production"], env, state)
    assert r.code == 0, r.stderr
    assert r.state["running"] == {"api": v1, "notifier": v1}
    assert r.has("curl", "https://tickets.example.com/health")
    assert r.state["tags"]["shipforge-verified/tickets/api:production"] == v1
    # Nothing verified before v1 is recorded: a second rollback refuses, never returns to v2.
    again = run(COMPOSE, ["deploy/compose.sh", "rollback", "production"], env, r.state)
    assert again.code != 0 and "no earlier verified images" in again.stderr
    assert again.state["running"] == {"api": v1, "notifier": v1}


# --- images.sh: once per commit, promotion by source tree -------------------------------


def _git(project: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project, check=True, capture_output=True)
    _git_commit(project)


def _git_commit(project: Path) -> None:
    for args in (
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def test_images_build_scan_and_push_once_per_commit(run: Runner) -> None:
    env = {"GIT_SHA": SHA, "GITHUB_REPOSITORY_OWNER": "Acme"}
    r = run(K8S, ["deploy/images.sh", "build"], env, {})
    assert r.code == 0, r.stderr
    assert r.has("docker", "build", "--tag", f"shipforge-build/ledger-api:{SHA}")
    assert r.has("docker", "run", "--rm")  # the trivy scan

    r = run(K8S, ["deploy/images.sh", "build"], env, {"knobs": {"scan_fail": True}})
    assert r.code != 0 and "not pushed" in r.stderr

    r = run(K8S, ["deploy/images.sh", "push"], env, {})
    assert r.code == 0, r.stderr
    digest = r.state["registry"][f"ghcr.io/acme/ledger-api:{SHA}"]
    line = f"IMAGE_API=ghcr.io/acme/ledger-api@{digest}"
    assert r.has("docker", "push", "--quiet", f"ghcr.io/acme/ledger-api:{SHA}")

    assert r.stdout == f"{line}\n"

    registry = {f"ghcr.io/acme/ledger-api:{SHA}": DIGEST}
    r = run(K8S, ["deploy/images.sh", "push"], env, {"registry": registry})
    assert r.code == 0 and not r.has("docker", "push")  # one image per commit
    assert r.stdout == f"IMAGE_API=ghcr.io/acme/ledger-api@{DIGEST}\n"


def test_images_promotion_copies_the_verified_digest(
    tmp_path: Path, generated: dict[str, Path]
) -> None:
    project = tmp_path / "project"
    shutil.copytree(generated[ECS], project)
    _git(project)
    tree = subprocess.run(
        ["git", "rev-parse", "HEAD^{tree}"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    fakebin = tmp_path / "fakebin"
    _install_fakes(fakebin)
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    staging_ref = f"{host}/invoicer-api@{DIGEST}"
    state = tmp_path / "state.json"
    log = tmp_path / "calls.jsonl"
    log.write_text("")
    state.write_text(json.dumps({"registry": {}}))
    env = {
        "PATH": f"{fakebin}:/usr/bin:/bin",
        "FAKE_LOG": str(log),
        "FAKE_STATE": str(state),
        "GIT_SHA": SHA,
        "ECR_REGISTRY": host,
        "IMAGE_API": staging_ref,
    }

    def images(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "deploy/images.sh", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    done = images("verified", "staging")
    assert done.returncode == 0, done.stderr
    verified = f"{host}/invoicer-api:verified-staging-{tree}"
    assert json.loads(state.read_text())["registry"][verified] == DIGEST

    # Same registry (one account): production deploys the very digest, nothing is copied.
    done = images("promote", "production")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"IMAGE_API={host}/invoicer-api@{DIGEST}\n"
    assert f"{host}/invoicer-api:{SHA}" not in json.loads(state.read_text())["registry"]

    # Another account's registry: the digest is copied byte for byte, then checked.
    other = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
    registry = json.loads(state.read_text())["registry"]
    registry[f"{other}/invoicer-api:verified-staging-{tree}"] = DIGEST
    state.write_text(json.dumps({"registry": registry}))
    env["SOURCE_REGISTRY"] = other
    done = images("promote", "production")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"IMAGE_API={host}/invoicer-api@{DIGEST}\n"
    assert json.loads(state.read_text())["registry"][f"{host}/invoicer-api:{SHA}"] == DIGEST

    # A tree staging never verified is refused.
    (project / "change.txt").write_text("x")
    _git_commit(project)
    done = images("promote", "production")
    assert done.returncode != 0 and "deploy it to staging first" in done.stderr
