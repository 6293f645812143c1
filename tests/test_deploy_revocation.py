"""A staging rollback lists what it rolled back from, and `images.sh revoke` revokes exactly that.

Drives the generated deploy scripts with the fake CLIs of tests/test_deploy_scripts.py (the
`run` fixture): a failed deploy that rolls back and a manual rollback each write the images
they left to ROLLED_BACK_FROM; `deploy/images.sh revoke` then tags each of those digests
`revoked-<environment>-<hex>` in the fake registry, and no other.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests import test_deploy_scripts as scripts
from tests.test_deploy_scripts import (
    ACA,
    ACA_ENV,
    COMPOSE,
    COMPOSE_ENV,
    DIGEST,
    K8S,
    K8S_ENV,
    OLD,
    REPO,
    WEB,
    WORKER,
    Run,
    Runner,
    aca_state,
    compose_state,
    k8s_state,
)

# The fixture that runs a generated script with the fake CLIs on PATH.
run = scripts.run


def _revoked(state: dict[str, Any], environment: str) -> set[str]:
    """`repository@digest` of every revoked-<environment>- tag in the fake registry."""
    prefix = f":revoked-{environment}-"
    return {
        f"{ref.split(prefix)[0]}@sha256:{ref.split(prefix)[1]}"
        for ref in state.get("registry", {})
        if prefix in ref
    }


def _revoke(run: Runner, example: str, environment: str, listed: str, state: dict[str, Any]) -> Run:
    """Run `images.sh revoke` on a file holding `listed`, with the fakes' state."""
    env = {"ROLLED_BACK_FROM_TEXT": listed}
    script = f'printf "%s" "$ROLLED_BACK_FROM_TEXT" >rb.env && deploy/images.sh revoke {environment} rb.env'
    return run(example, ["-c", script], env, {**state, "knobs": {}})


def test_compose_failed_deploy_lists_and_revokes_the_failed_digest(
    run: Runner, tmp_path: Path
) -> None:
    listed = tmp_path / "rolled-back.env"
    env = {**COMPOSE_ENV, "ROLLED_BACK_FROM": str(listed)}
    r = run(COMPOSE, ["deploy/compose.sh", "deploy", "staging"], env, compose_state(up_fail=True))
    assert r.code != 0
    assert r.state["running"] == {"api": f"{REPO}@{OLD}", "notifier": f"{REPO}@{OLD}"}
    assert listed.read_text() == f"IMAGE_API={REPO}@{DIGEST}\n"
    revoke = _revoke(run, COMPOSE, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {f"{REPO}@{DIGEST}"}


def test_compose_healthy_deploy_lists_nothing(run: Runner, tmp_path: Path) -> None:
    listed = tmp_path / "rolled-back.env"
    env = {**COMPOSE_ENV, "ROLLED_BACK_FROM": str(listed)}
    r = run(COMPOSE, ["deploy/compose.sh", "deploy", "staging"], env, compose_state())
    assert r.code == 0, r.stderr
    assert not listed.exists()


def test_compose_manual_rollback_lists_and_revokes_the_verified_digest_it_left(
    run: Runner, tmp_path: Path
) -> None:
    v1, v2 = f"{REPO}@{OLD}", f"{REPO}@sha256:{'2' * 64}"
    state = compose_state()
    state["running"] = {"api": v2, "notifier": v2}
    state["tags"] = {
        f"shipforge-{kind}/tickets/{s}:staging": ref
        for s in ("api", "notifier")
        for kind, ref in (("rollback", v1), ("verified", v2))
    }
    listed = tmp_path / "rolled-back.env"
    env = {k: v for k, v in COMPOSE_ENV.items() if k not in ("GIT_SHA", "IMAGE_API")}
    r = run(
        COMPOSE,
        ["deploy/compose.sh", "rollback", "staging"],
        {**env, "ROLLED_BACK_FROM": str(listed)},
        state,
    )
    assert r.code == 0, r.stderr
    assert r.state["running"] == {"api": v1, "notifier": v1}
    # Two services ran v2 (one image): it is listed once.
    assert listed.read_text() == f"IMAGE_API={v2}\n"
    revoke = _revoke(run, COMPOSE, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {v2}


# --- Kubernetes and Container Apps: what the pod templates and revisions run --------------
#
# The shared fakes know revisions, not images. These wrappers keep, in the same state file,
# the images each workload's pod template (a history, undone by `rollout undo`) or each
# Container Apps revision runs, answer the scripts' image queries from it, and hand every
# other call to the shared fake.

WRAPPER = r"""#!{python} -S
import json, os, re, sys
tool, args = {tool!r}, sys.argv[1:]
path = os.environ["FAKE_STATE"]
with open(path) as f:
    state = json.load(f)
handled = False
def option(name):
    return args[args.index(name) + 1] if name in args else ""
if tool == "kubectl":
    words = [a for i, a in enumerate(args)
             if a not in ("--context", "--namespace")
             and (i == 0 or args[i - 1] not in ("--context", "--namespace"))]
    history = state.setdefault("pod_images", {{}})
    if words[0] == "get" and "spec.template" in option("-o"):
        for image in (history.get(words[1]) or [[]])[-1]:
            print(image)
        handled = True
    elif words[0] == "apply":
        text = open(os.path.join(option("-k"), "kustomization.yaml")).read()
        if "overlays" in text:
            pinned = dict(re.findall(r'newName: "([^"]+)"\n    digest: "([^"]+)"', text))
            for workload, images in history.items():
                now = images[-1]
                images.append([f"{{n}}@{{pinned[n]}}" if n in pinned else i
                               for i in now for n in [i.split("@")[0]]])
    elif words[:2] == ["rollout", "undo"] and len(history.get(words[2], [])) > 1:
        history[words[2]].pop()
elif tool == "az":
    images = state.setdefault("revision_images", {{}})
    if args[:3] == ["containerapp", "revision", "show"] and "containers" in option("--query"):
        print(images.get(option("--revision"), "None"))
        handled = True
    elif args[:2] == ["containerapp", "update"]:
        images[option("--name") + "--" + option("--revision-suffix")] = option("--image")
with open(path, "w") as f:
    json.dump(state, f)
if handled:
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps([tool, *args]) + "\n")
    sys.exit(0)
os.execv(sys.executable, [sys.executable, "-S", {fake!r}, tool, *args])
"""


def _wrap(tmp_path: Path, tool: str) -> None:
    """Put the stateful wrapper in front of the shared fake of `tool` (same fakebin)."""
    shim = tmp_path / "fakebin" / tool
    shim.write_text(WRAPPER.format(python=sys.executable, tool=tool, fake=str(scripts.FAKE)))
    shim.chmod(0o755)


LEDGER = "ghcr.io/acme/ledger-api"
SIDECAR = f"docker.io/library/envoy@sha256:{'e' * 64}"
V1, V2 = f"{LEDGER}@sha256:{'a' * 64}", f"{LEDGER}@sha256:{'b' * 64}"


def _k8s(tmp_path: Path, **knobs: Any) -> dict[str, Any]:
    _wrap(tmp_path, "kubectl")
    state = k8s_state(**knobs)
    # Each workload ran V1, then runs V2 (with a sidecar of another project).
    state["pod_images"] = {w: [[V1, SIDECAR], [V2, SIDECAR]] for w in state["workloads"]}
    return state


def test_kubernetes_failed_deploy_lists_and_revokes_the_failed_digest(
    run: Runner, tmp_path: Path
) -> None:
    listed = tmp_path / "rolled-back.env"
    env = {**K8S_ENV, "ROLLED_BACK_FROM": str(listed)}
    state = _k8s(tmp_path, rollout_fail=True)
    r = run(K8S, ["deploy/kubernetes.sh", "deploy", "staging"], env, state)
    assert r.code != 0
    assert {w: h[-1] for w, h in r.state["pod_images"].items()} == {
        w: [V2, SIDECAR] for w in state["workloads"]
    }
    assert listed.read_text() == f"IMAGE_API={K8S_ENV['IMAGE_API']}\n"
    revoke = _revoke(run, K8S, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {K8S_ENV["IMAGE_API"]}


def test_kubernetes_manual_rollback_lists_and_revokes_what_it_left(
    run: Runner, tmp_path: Path
) -> None:
    listed = tmp_path / "rolled-back.env"
    env = {"KUBECONFIG": "/dev/null", "ROLLED_BACK_FROM": str(listed)}
    r = run(K8S, ["deploy/kubernetes.sh", "rollback", "staging"], env, _k8s(tmp_path))
    assert r.code == 0, r.stderr
    assert all(h[-1] == [V1, SIDECAR] for h in r.state["pod_images"].values())
    # Two workloads ran V2 (one image): listed once; the sidecar is not this project's.
    assert listed.read_text() == f"IMAGE_API={V2}\n"
    revoke = _revoke(run, K8S, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {V2}


SURVEY = "crsurvey.azurecr.io/survey-web"
A1, A2 = f"{SURVEY}@sha256:{'a' * 64}", f"{SURVEY}@sha256:{'b' * 64}"


def _aca(tmp_path: Path, **knobs: Any) -> dict[str, Any]:
    _wrap(tmp_path, "az")
    state = aca_state(**knobs)
    state["revision_images"] = {
        f"{app}--{suffix}": ref
        for app in (WEB, WORKER)
        for suffix, ref in (("older", A1), ("old", A2))
    }
    return state


def test_container_apps_failed_smoke_test_lists_and_revokes_the_failed_digest(
    run: Runner, tmp_path: Path
) -> None:
    listed = tmp_path / "rolled-back.env"
    env = {**ACA_ENV, "ROLLED_BACK_FROM": str(listed)}
    state = _aca(tmp_path, curl_fail=[f"{WEB}.example.azurecontainerapps.io"])
    r = run(ACA, ["deploy/azure-container-apps.sh", "deploy", "staging"], env, state)
    assert r.code != 0
    assert r.state["current"] == {WEB: f"{WEB}--old", WORKER: f"{WORKER}--old"}
    assert listed.read_text() == f"IMAGE_WEB={ACA_ENV['IMAGE_WEB']}\n"
    revoke = _revoke(run, ACA, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {ACA_ENV["IMAGE_WEB"]}


def test_container_apps_manual_rollback_lists_and_revokes_what_it_left(
    run: Runner, tmp_path: Path
) -> None:
    listed = tmp_path / "rolled-back.env"
    state = _aca(tmp_path)
    state["tags"] = {WEB: f"{WEB}--older", WORKER: f"{WORKER}--older"}
    r = run(
        ACA,
        ["deploy/azure-container-apps.sh", "rollback", "staging"],
        {"ROLLED_BACK_FROM": str(listed)},
        state,
    )
    assert r.code == 0, r.stderr
    assert r.state["current"] == {WEB: f"{WEB}--older", WORKER: f"{WORKER}--older"}
    assert listed.read_text() == f"IMAGE_WEB={A2}\n"
    revoke = _revoke(run, ACA, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {A2}
