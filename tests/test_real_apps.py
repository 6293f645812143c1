"""Real apps with real dependencies, built from the generated Dockerfiles and run hardened.

The slow tier's proof that the images serve real projects: each fixture app of
tests/fixtures/apps (real frameworks, lockfiles made by pip, uv, Poetry, npm, pnpm and Yarn 4)
is generated, built by podman through the build-secret hook (docs/docker.md), and run the way
production runs it: the image's non-root user, a read-only root filesystem with only the writable paths
the model gives the platform targets, no capabilities. The health route must answer, the
release must run against a real PostgreSQL and the worker against a real Redis (Debian's,
standing in for the official images), and `podman stop` must reach the app's own SIGTERM
handler; the image holds none of the secret-bearing files planted in its build context; a
source-only change reuses the dependency layer. Build times and sizes are printed here and
measured in bench/bench_images.py, never asserted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from generator.loader import load
from generator.model import Service
from tests import realapps
from tests.realapps import APPS_UNDER_TEST, App, Podman

pytestmark = pytest.mark.slow
STOP_GRACE = 10


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    try:
        podman = realapps.podman_lab(tmp_path_factory.mktemp("realapps"))
    except realapps.Unavailable as error:
        message = f"{error} (run tests/install-tools.sh)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    network = f"realapps-{os.getpid()}"
    podman.ok("network", "create", network)
    yield podman
    podman("rm", "--all", "--force", "--time", "0")
    podman("network", "rm", "--force", network)


def network(lab: Podman) -> str:
    return f"realapps-{os.getpid()}"


def run(lab: Podman, name: str, tag: str, service: Service, *argv: str, **env: str) -> str:
    """Start a service's container as production does; its host port when it has one."""
    args = ["run", "--detach", "--name", name, "--network", network(lab)]
    args += realapps.hardened(service.writable_paths)
    port = ""
    if service.port:
        port = str(realapps.free_port())
        args += ["--publish", f"127.0.0.1:{port}:{service.port}"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    lab.ok(*args, tag, *argv)
    return port


def datastore(lab: Podman, store: str) -> dict[str, str]:
    """A running PostgreSQL or Redis on the test network, and the URL a service reads."""
    name = f"{store}-{os.getpid()}"
    if lab("container", "exists", name).returncode != 0:
        if store == "postgres":
            lab.ok(
                "run", "--detach", "--name", name, "--network", network(lab),
                "--env", "POSTGRES_DB=shop", "--env", "POSTGRES_USER=shop",
                "--env", "POSTGRES_PASSWORD=test-only-password", realapps.POSTGRES_IMAGE,
            )  # fmt: skip
        else:
            lab.ok(
                "run", "--detach", "--name", name, "--network", network(lab),
                "localhost/standin/redis:7", "redis-server", "--bind", "0.0.0.0",
                "--protected-mode", "no", "--save", "",
            )  # fmt: skip
    probe = (
        ["su", "postgres", "-s", "/bin/sh", "-c", "pg_isready -h 127.0.0.1 -d shop -U shop"]
        if store == "postgres"
        else ["redis-cli", "ping"]
    )
    deadline = time.monotonic() + 60
    while lab("exec", name, *probe).returncode != 0:
        assert time.monotonic() < deadline, lab("logs", name).stderr
        time.sleep(0.5)
    if store == "postgres":
        return {"url": f"postgresql://shop:test-only-password@{name}:5432/shop", "name": name}
    return {"url": f"redis://{name}:6379/0", "name": name}


def stop(lab: Podman, name: str, expected_log: str) -> float:
    """podman stop (SIGTERM, then SIGKILL after the grace period): the seconds it took."""
    started = time.monotonic()
    lab.ok("stop", "--time", str(STOP_GRACE), name, timeout=60)
    took = time.monotonic() - started
    logs = lab.ok("logs", name) + lab("logs", name).stderr
    state = lab.ok("inspect", "--format", "{{.State.ExitCode}}", name).strip()
    assert took < STOP_GRACE - 1, f"{name}: stop took {took:.1f} s: SIGTERM was not handled"
    assert state != "137", f"{name} was killed, not stopped:\n{logs}"
    if expected_log:
        assert expected_log in logs, f"{name}: its SIGTERM handler did not run:\n{logs}"
    return took


def check_image(lab: Podman, tag: str) -> None:
    user = lab.ok("image", "inspect", "--format", "{{.Config.User}}", tag).strip()
    assert user == "10001:10001"


@pytest.mark.parametrize("key", list(APPS_UNDER_TEST))
def test_real_app_builds_serves_and_stops(
    key: str, lab: Podman, capsys: pytest.CaptureFixture[str]
) -> None:
    app: App = APPS_UNDER_TEST[key]
    root = realapps.prepare(app, lab.scratch)
    project = load(root / "shipforge.yaml")
    tag = f"localhost/fx-{key}:test"
    realapps.plant_leaks(root / project.images[0].path)
    cold, _ = realapps.build(lab, root, tag)
    check_image(lab, tag)
    listing = lab.ok(
        "run", "--rm", "--entrypoint", "find", tag, "/app", "-not", "-path", "*/node_modules/*"
    )
    inside = {line.removeprefix("/app/") for line in listing.splitlines()}
    assert not inside & set(realapps.LEAKS), (
        f"secret-bearing files in the image: {inside & set(realapps.LEAKS)}"
    )
    assert set(realapps.KEPT) <= inside

    env: dict[str, str] = {}
    for service in project.services:
        for link in service.datastore_env:
            env[link.variable] = datastore(lab, link.store)["url"]
    build_time = {arg.name: arg.value for image in project.images for arg in image.build_args}
    for service in project.services:
        for setting in service.env:
            # Build-time values are left out at run time: the page must show the built one.
            if setting.name not in build_time:
                env[setting.name] = setting.value
    web = next((s for s in project.services if s.web), None)
    stopped = 0.0
    if web:  # a worker-only project has no web service
        if web.release:
            name = f"{key}-release-{os.getpid()}"
            run(lab, name, tag, web, *web.release_argv, **env)
            code = lab.ok("wait", name, timeout=300).strip()
            logs = lab.ok("logs", name) + lab("logs", name).stderr
            assert code == "0", f"release `{web.release}` failed:\n{logs}"

        name = f"{key}-{web.name}-{os.getpid()}"
        port = run(lab, name, tag, web, **env)
        try:
            body = realapps.get(f"http://127.0.0.1:{port}{web.health}", 90)
            assert app.body in body.replace(" ", "") or app.body in body, body
            if app.page:
                page = realapps.get(f"http://127.0.0.1:{port}{app.page}", 30)
                assert build_time["NEXT_PUBLIC_GREETING"] in page, "NEXT_PUBLIC_* missed the build"
            check = lab("healthcheck", "run", name, timeout=30)
            assert check.returncode == 0, check.stdout + check.stderr
            assert lab.ok("exec", name, "id", "-u").strip() == "10001"
            stopped = stop(lab, name, app.stop_log)
        finally:
            lab("rm", "--force", "--time", "0", name)

    workers = [s for s in project.services if not s.web]
    for worker in workers:
        redis = datastore(lab, "redis")
        name = f"{key}-{worker.name}-{os.getpid()}"
        # The Redis is shared by the module's apps: a result left by another app must not count.
        lab.ok("exec", redis["name"], "redis-cli", "del", "done:invoice-42")
        run(lab, name, tag, worker, *worker.argv, **env)
        if app.enqueue:
            # The app's own client queues the job, from inside the worker's container.
            lab.ok("exec", name, *app.enqueue, timeout=120)
        else:
            lab.ok("exec", redis["name"], "redis-cli", "rpush", "jobs", "invoice-42")
        deadline = time.monotonic() + 30
        while lab.ok("exec", redis["name"], "redis-cli", "get", "done:invoice-42").strip() == "":
            assert time.monotonic() < deadline, lab("logs", name).stderr
            time.sleep(0.5)
        assert lab.ok("exec", redis["name"], "redis-cli", "get", "done:invoice-42").strip() == (
            "INVOICE-42"
        )
        stopped = max(stopped, stop(lab, name, app.worker_stop_log))
        lab("rm", "--force", "--time", "0", name)

    manager = project.images[0].package_manager
    if app.rebuild and manager in realapps.DEPENDENCY_STEPS:
        source = root / app.source
        comment = "\n# changed\n" if source.suffix == ".py" else "\n// changed\n"
        source.write_text(source.read_text() + comment)
        warm, output = realapps.build(lab, root, tag)
        step = realapps.DEPENDENCY_STEPS[manager]
        assert realapps.cached(output, step), "a source change must reuse the dependency layer"
        timing = f"warm after a source change {warm:.1f} s"
    else:
        timing = "warm build: see bench/bench_images.py"
    size = realapps.image_size(lab, tag)
    with capsys.disabled():
        print(
            f"\n{key}: cold build {cold:.1f} s, {timing}, image {size / 2**20:.0f} MiB, "
            f"podman stop {stopped:.2f} s"
        )
