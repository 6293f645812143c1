"""deploy/aws-ecs.sh run with the real AWS CLI against a moto server on 127.0.0.1.

The server (tests/fixtures/moto/ecs_server.py) is moto with ECS's documented deployment,
circuit-breaker and task behaviour patched in; it also answers the smoke test like a load
balancer in front of what the services really run (an image named "...unhealthy..." fails it).
After every scenario the test reads what each service runs and asserts it is exactly the last
version that passed verification. awscli and moto[server] live in .venv-aws
(tests/install-tools.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
AWS_VENV = REPO / ".venv-aws" / "bin"
SERVER = Path(__file__).parent / "fixtures" / "moto" / "ecs_server.py"
EXAMPLE = "08-github-aws-ecs"
CLUSTER = "invoicer-staging"
API, WORKER = "invoicer-staging-api", "invoicer-staging-worker"
REPOSITORY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/invoicer-staging/invoicer-api"
BOOTSTRAP = f"{REPOSITORY}:bootstrap"  # what Terraform registers before any CI deploy

pytestmark = pytest.mark.slow


def image(name: str) -> str:
    """A digest-pinned reference whose digest spells out the scenario's name."""
    digest = (name.encode().hex() + "0" * 64)[:64]
    return f"{REPOSITORY}@sha256:{digest}"


GOOD_A, GOOD_B, GOOD_C = image("a"), image("b"), image("c")


def unhealthy(name: str) -> str:
    # The digest stays valid hex; the repository name carries the scenario's behaviour.
    return image(name).replace("invoicer-api@", "invoicer-api-unhealthy@")


def crashing(name: str) -> str:
    return image(name).replace("invoicer-api@", "invoicer-api-crash@")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Moto:
    port: int
    control: int

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control}{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control}/state", timeout=30) as a:
            result: dict[str, Any] = json.loads(a.read())
            return result

    def running(self) -> dict[str, str]:
        return {name: s["image"] for name, s in self.state()["services"].items()}


@pytest.fixture(scope="module")
def moto_server() -> Iterator[Moto]:
    if not (AWS_VENV / "aws").exists():
        if os.environ.get("CI"):
            pytest.fail("awscli/moto missing: run tests/install-tools.sh", pytrace=False)
        pytest.skip("awscli and moto[server] are not installed in .venv-aws")
    port, control = _free_port(), _free_port()
    process = subprocess.Popen(
        [str(AWS_VENV / "python"), str(SERVER), str(port), str(control)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield Moto(port, control)
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Result:
    code: int
    stderr: str
    rolled_back: str  # the ROLLED_BACK_FROM file: images a verified rollback left


Deploy = Callable[..., Result]


@pytest.fixture
def ecs(moto_server: Moto, tmp_path: Path, generated: dict[str, Path]) -> Iterator[Deploy]:
    """A fresh account with Terraform's cluster, services and bootstrap revisions."""
    urllib.request.urlopen(
        urllib.request.Request(
            f"http://127.0.0.1:{moto_server.port}/moto-api/reset", data=b"", method="POST"
        ),
        timeout=30,
    ).close()
    moto_server.post("/control", {"release_seconds": 0.0, "release_exit": 0, "update_fail": []})
    network = moto_server.post(
        "/setup",
        {
            "cluster": CLUSTER,
            "services": [
                {"name": API, "container": "api", "image": BOOTSTRAP},
                {"name": WORKER, "container": "worker", "image": BOOTSTRAP},
            ],
        },
    )
    project = tmp_path / "project"
    shutil.copytree(generated[EXAMPLE], project, symlinks=True)
    shim = tmp_path / "bin"
    shim.mkdir()
    # curl: the smoke URL's host is served by the harness (the load balancer's stand-in).
    (shim / "curl").write_text(
        '#!/bin/bash\nargs=()\nfor a in "$@"; do\n'
        '  case "$a" in https://*) a="http://127.0.0.1:$SMOKE_PORT/${a#https://}" ;; esac\n'
        '  args+=("$a")\ndone\nexec /usr/bin/curl "${args[@]}"\n'
    )
    (shim / "curl").chmod(0o755)
    base = {
        "PATH": f"{shim}:{AWS_VENV}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_server.port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
        "SMOKE_PORT": str(moto_server.control),
        "ECS_SUBNETS": network["subnet"],
        "ECS_SECURITY_GROUPS_API": network["security_group"],
        "SMOKE_DELAY": "0",
        "SMOKE_ATTEMPTS": "2",
        "POLL_INTERVAL": "0.2",
        "ROLLED_BACK_FROM": str(tmp_path / "rolled-back.env"),
    }

    def go(action: str, img: str = "", sha: str = "a" * 40, **env: str) -> Result:
        extra = {"IMAGE_API": img, "GIT_SHA": sha} if action == "deploy" else {}
        done = subprocess.run(
            ["bash", "deploy/aws-ecs.sh", action, "staging"],
            cwd=project,
            env={**base, **extra, **env},
            capture_output=True,
            text=True,
            timeout=240,
        )
        record = tmp_path / "rolled-back.env"
        return Result(done.returncode, done.stderr, record.read_text() if record.exists() else "")

    go.network = network  # type: ignore[attr-defined]  # for the GitLab jobs' variables
    yield go


def both(img: str) -> dict[str, str]:
    return {API: img, WORKER: img}


def test_deploys_rollbacks_and_the_verified_chain(ecs: Deploy, moto_server: Moto) -> None:
    """Healthy deploys, a failed smoke test, a manual rollback after the automatic one."""
    r = ecs("deploy", GOOD_A)
    assert r.code == 0, r.stderr
    assert moto_server.running() == both(GOOD_A)
    r = ecs("deploy", GOOD_B)
    assert r.code == 0, r.stderr
    assert moto_server.running() == both(GOOD_B)
    state = moto_server.state()
    tags = state["revisions"][f"{API}:3"]["tags"]
    # Linked to the verified revision it replaced; Terraform's tags carried over.
    assert tags["shipforge-previous"] == f"{API}:2" and tags["managed-by"] == "terraform"
    # The release ran as a one-off task of each new revision, before its rollout.
    assert [t["startedBy"] for t in state["tasks"]] == ["shipforge-release"] * 2

    # Failed smoke test: every service back on b, c's revisions deregistered.
    r = ecs("deploy", unhealthy("c"))
    assert r.code != 0 and "restored and verified" in r.stderr, r.stderr
    assert moto_server.running() == both(GOOD_B)
    revisions = moto_server.state()["revisions"]
    assert revisions[f"{API}:4"]["status"] == revisions[f"{WORKER}:4"]["status"] == "INACTIVE"

    # The manual rollback after that automatic one goes to a, never to the failed c.
    r = ecs("rollback")
    assert r.code == 0, r.stderr
    assert moto_server.running() == both(GOOD_A)
    assert r.rolled_back == f"IMAGE_API={GOOD_B}\n"  # for `images.sh revoke`
    assert moto_server.state()["revisions"][f"{API}:3"]["status"] == "INACTIVE"

    # a is the first verified revision: a second rollback refuses before any change.
    r = ecs("rollback")
    assert r.code != 0 and "first verified revision" in r.stderr
    assert moto_server.running() == both(GOOD_A)


def test_failures_halfway_and_terraform_configuration(ecs: Deploy, moto_server: Moto) -> None:
    """Circuit breaker, an AWS error halfway through the services, Terraform's revisions."""
    assert ecs("deploy", GOOD_A).code == 0
    # Terraform changes the configuration: a new revision with the image it knows, unused.
    moto_server.post(
        "/terraform", {"family": API, "container": "api", "image": BOOTSTRAP, "config": "2"}
    )

    r = ecs("deploy", crashing("b"))
    assert r.code != 0 and "did not complete" in r.stderr, r.stderr
    assert moto_server.running() == both(GOOD_A)

    moto_server.post("/control", {"update_fail": [WORKER]})
    r = ecs("deploy", GOOD_B, AWS_MAX_ATTEMPTS="1")
    assert r.code != 0 and "AccessDenied" in r.stderr, r.stderr
    moto_server.post("/control", {"update_fail": []})
    # The api had already moved: it is back on a; nothing of the aborted deploy stays active.
    assert moto_server.running() == both(GOOD_A)
    active = {k for k, v in moto_server.state()["revisions"].items() if v["status"] == "ACTIVE"}
    assert active == {f"{API}:1", f"{API}:2", f"{API}:3", f"{WORKER}:1", f"{WORKER}:2"}

    # The next deploy copies Terraform's newest revision (config 2), replacing only the image.
    r = ecs("deploy", GOOD_B)
    assert r.code == 0, r.stderr
    api = moto_server.state()["services"][API]
    assert api["image"] == GOOD_B and api["config"] == {"CONFIG_VERSION": "2"}
    # The rollback returns to the verified a, never to Terraform's revision that never ran.
    assert ecs("rollback").code == 0
    api = moto_server.state()["services"][API]
    assert api["image"] == GOOD_A and api["taskDefinition"] == f"{API}:2"


def test_first_deploy_release_failure_and_a_slow_migration(ecs: Deploy, moto_server: Moto) -> None:
    """Nothing verified yet, a failing release, a release still running at the timeout."""
    r = ecs("deploy", unhealthy("a"))
    assert r.code != 0, r.stderr
    assert moto_server.running() == both(BOOTSTRAP)
    r = ecs("rollback")
    assert r.code != 0 and "no verified revision" in r.stderr
    assert moto_server.running() == both(BOOTSTRAP)

    moto_server.post("/control", {"release_exit": 3})
    r = ecs("deploy", GOOD_A)
    assert r.code != 0 and "exited with 3" in r.stderr, r.stderr
    assert moto_server.running() == both(BOOTSTRAP)

    moto_server.post("/control", {"release_exit": 0, "release_seconds": 60.0})
    r = ecs("deploy", GOOD_A, RELEASE_TIMEOUT="1")
    assert r.code != 0 and "left to finish" in r.stderr, r.stderr
    # A re-run while that migration still runs starts nothing and never stops it.
    r = ecs("deploy", GOOD_A)
    assert r.code != 0 and "still runs" in r.stderr, r.stderr
    releases = [t for t in moto_server.state()["tasks"] if t["startedBy"] == "shipforge-release"]
    # The first two (the unhealthy a, the failing release) ended; the slow one runs on.
    assert [t["status"] for t in releases] == ["STOPPED", "STOPPED", "RUNNING"]
    assert moto_server.running() == both(BOOTSTRAP)
    active = {k for k, v in moto_server.state()["revisions"].items() if v["status"] == "ACTIVE"}
    assert active == {f"{API}:1", f"{WORKER}:1"}


GITLAB_CI_LOCAL = REPO / ".tools" / "npm" / "node_modules" / ".bin" / "gitlab-ci-local"


def test_gitlab_jobs_deploy_verify_and_roll_back_on_moto(
    moto_server: Moto, ecs: Deploy, tmp_path: Path
) -> None:
    """The same project on GitLab: gitlab-ci-local runs the deploy-staging and rollback-staging
    jobs as written (before_script sign-in through a web identity token file included) on a
    shell executor, with the real AWS CLI against moto (whose STS accepts any token)."""
    if not GITLAB_CI_LOCAL.exists() or shutil.which("rsync") is None:
        if os.environ.get("CI"):
            pytest.fail("gitlab-ci-local or rsync missing: run tests/install-tools.sh")
        pytest.skip("gitlab-ci-local is not installed")
    from tests.conftest import generate_tree

    descriptor = tmp_path / "shipforge.yaml"
    source = (REPO / "examples" / EXAMPLE / "shipforge.yaml").read_text()
    descriptor.write_text(source.replace("  ci: github", "  ci: gitlab"))
    repo = generate_tree(descriptor, tmp_path / "repo")
    for args in (["init", "-q", "-b", "develop"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    shim = tmp_path / "bin"  # the ecs fixture's curl shim lives here; apk has nothing to add
    (shim / "apk").write_text("#!/bin/sh\nexit 0\n")
    (shim / "apk").chmod(0o755)
    variables = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_server.port}",
        "AWS_REGION": "eu-west-1",
        # The job's own before_script writes AWS_ID_TOKEN to AWS_WEB_IDENTITY_TOKEN_FILE: the
        # CLI then calls AssumeRoleWithWebIdentity (moto's STS accepts any token).
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/invoicer-staging-ci",
        "AWS_ID_TOKEN": "header.payload.signature",
        "SMOKE_PORT": str(moto_server.control),
        "SMOKE_DELAY": "0",
        "SMOKE_ATTEMPTS": "2",
        "POLL_INTERVAL": "0.2",
        "ECS_SUBNETS": ecs.network["subnet"],  # type: ignore[attr-defined]
        "ECS_SECURITY_GROUPS_API": ecs.network["security_group"],  # type: ignore[attr-defined]
    }

    def job(name: str, img: str = "") -> subprocess.CompletedProcess[str]:
        extra = {"IMAGE_API": img} if img else {}
        flags = [f"--variable={k}={v}" for k, v in {**variables, **extra}.items()]
        return subprocess.run(
            [str(GITLAB_CI_LOCAL), "--force-shell-executor", "--no-color", *flags, name],
            cwd=repo,
            env={**os.environ, "PATH": f"{shim}:{AWS_VENV}:/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=600,
        )

    done = job("deploy-staging", GOOD_A)
    assert done.returncode == 0, done.stdout[-3000:]
    assert moto_server.running() == both(GOOD_A)
    done = job("deploy-staging", GOOD_B)
    assert done.returncode == 0, done.stdout[-3000:]
    done = job("deploy-staging", unhealthy("c"))
    assert done.returncode != 0 and "restored and verified" in done.stdout, done.stdout[-3000:]
    assert moto_server.running() == both(GOOD_B)
    done = job("rollback-staging")
    assert done.returncode == 0, done.stdout[-3000:]
    assert moto_server.running() == both(GOOD_A)
    # The rollback job keeps what it left for revoke-staging.
    assert (repo / "rolled-back.env").read_text() == f"IMAGE_API={GOOD_B}\n"
