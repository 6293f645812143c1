"""Run what shipforge generates for containers, for real, with podman (the slow tier).

No registry can be reached here, so the base images the generated Dockerfiles name are stood in
for by Debian bookworm root filesystems (debootstrap) imported under exactly those names; builds
use `--pull=never` and the docker format (the OCI format drops HEALTHCHECK). Image storage is a
fresh folder per run, so the cold build is really cold. See ../shared/tooling.md for why podman
needs runc, capped ulimits and cgroupfs on these machines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.loader import load
from generator.targets import monitoring
from tests import realapps
from tests.conftest import ROOT, generate_tree
from tests.realapps import Podman

pytestmark = pytest.mark.slow

TOOLS = ROOT / ".tools"
APP_UID = "10001"
# Ports unlikely to be taken by anything else running on the machine (the compose file
# publishes them as they are).
API_PORT, WEB_PORT = 18631, 18632
DESCRIPTOR = f"""\
version: 1
project: {{name: podcheck}}
services:
  api:
    runtime: python
    path: api
    package_manager: pip
    command: python -m app --port {API_PORT}
    port: {API_PORT}
    health: /healthz
  web:
    runtime: node
    path: web
    package_manager: npm
    command: node server.js --port {WEB_PORT}
    port: {WEB_PORT}
    health: /health
monitoring: {{prometheus: true}}
"""

# Stand-in services: no dependency to download, a health path, and the metrics the generated
# alert rules and dashboards read, in Prometheus' text format.
PYTHON_APP = """\
import http.server, sys, time

START = time.time()
COUNT = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global COUNT
        COUNT += 1
        if self.path == "/metrics":
            body = (
                "# TYPE http_requests_total counter\\n"
                f'http_requests_total{{status="200"}} {COUNT}\\n'
                "# TYPE http_request_duration_seconds histogram\\n"
                f'http_request_duration_seconds_bucket{{le="0.1"}} {COUNT}\\n'
                f'http_request_duration_seconds_bucket{{le="+Inf"}} {COUNT}\\n'
                f"http_request_duration_seconds_sum {COUNT * 0.01}\\n"
                f"http_request_duration_seconds_count {COUNT}\\n"
                "# TYPE process_start_time_seconds gauge\\n"
                f"process_start_time_seconds {START}\\n"
            ).encode()
            content_type = "text/plain; version=0.0.4; charset=utf-8"
        elif self.path == "/healthz":
            body, content_type = b"ok", "text/plain"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[2])), Handler).serve_forever()
"""
NODE_APP = """\
const http = require("http");
const start = Date.now() / 1000;
let count = 0;
http
  .createServer((req, res) => {
    count += 1;
    if (req.url === "/metrics") {
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(
        `# TYPE http_requests_total counter\\nhttp_requests_total{status="200"} ${count}\\n` +
          `# TYPE http_request_duration_seconds histogram\\n` +
          `http_request_duration_seconds_bucket{le="0.1"} ${count}\\n` +
          `http_request_duration_seconds_bucket{le="+Inf"} ${count}\\n` +
          `http_request_duration_seconds_sum ${count * 0.01}\\n` +
          `http_request_duration_seconds_count ${count}\\n` +
          `# TYPE process_start_time_seconds gauge\\nprocess_start_time_seconds ${start}\\n`,
      );
    } else if (req.url === "/health") {
      res.writeHead(200).end("ok");
    } else {
      res.writeHead(404).end();
    }
  })
  .listen(Number(process.argv[3]), "0.0.0.0");
"""
SOURCES = {
    # pip reads a requirements file of comments only as "nothing to install".
    "api/requirements.txt": "# no dependencies: the stand-in needs only the standard library\n",
    "api/app/__init__.py": "",
    "api/app/__main__.py": PYTHON_APP,
    "web/package.json": json.dumps({"name": "web", "version": "1.0.0", "private": True}),
    "web/package-lock.json": json.dumps(
        {
            "name": "web",
            "version": "1.0.0",
            "lockfileVersion": 3,
            "requires": True,
            "packages": {"": {"name": "web", "version": "1.0.0"}},
        }
    ),
    "web/server.js": NODE_APP,
}
# service -> (source file changed for the warm build, a command only the dependency step runs,
# health path). The Python image has a second RUN after the sources (`pip install .` for a
# pyproject-only project), which a source change rightly rebuilds.
CASES = {
    "api": ("app/__main__.py", "python3 -m venv", "/healthz"),
    "web": ("server.js", "npm ci", "/health"),
}
# The Debian root filesystem standing in for each runtime's base image (as
# tests/install-tools.sh builds them): debootstrap packages, then packages apt installs after.
# Node is the official image's current LTS from the npm registry (tests/install-tools.sh only;
# tests/realapps.py imports the same tarball under the same name).
ROOTFS = {
    "python": ("bookworm-python", "python3,python3-venv,tini", ""),
    "node": ("bookworm-node22.23.5", "", ""),
}


def missing(reason: str) -> None:
    """Skip locally, fail under CI: CI must never pass by not running the slow tier."""
    message = f"{reason} (run tests/install-tools.sh)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def rootfs(runtime: str, scratch: Path) -> Path:
    """The runtime's root filesystem tarball, built once with debootstrap and kept in .tools."""
    name, include, extra = ROOTFS[runtime]
    tarball = TOOLS / "rootfs" / f"{name}.tar"
    if tarball.is_file() and tarball.stat().st_size:
        return tarball
    if shutil.which("debootstrap") is None or not include:
        missing(f"{tarball} is missing and cannot be built here")
    root = scratch / f"rootfs-{name}"
    mirror = "http://deb.debian.org/debian"
    command = ["debootstrap", "--variant=minbase", f"--include={include}", "bookworm"]
    subprocess.run([*command, str(root), mirror], check=True, capture_output=True, timeout=900)
    if extra:
        # debootstrap ignores alternatives in Depends, which npm's dependencies use.
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        install = f"apt-get update -q && apt-get install -y -q --no-install-recommends {extra}"
        subprocess.run(
            ["chroot", str(root), "/bin/sh", "-c", install],
            check=True,
            capture_output=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        (root / "etc" / "resolv.conf").write_text("")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
        check=True,
        timeout=900,
    )
    partial.rename(tarball)
    shutil.rmtree(root)
    return tarball


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """podman on fresh storage per run (its cold build is cold), reading base images from a
    store kept between runs: tests/realapps.py's lab, which the real-app tests use too."""
    try:
        runner = realapps.podman_lab(tmp_path_factory.mktemp("podman"))
    except realapps.Unavailable as error:
        missing(str(error))
    yield runner
    runner("rm", "--all", "--force", "--time", "0")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, podman: Podman) -> Path:
    """The generated project with its stand-in sources, and its base images imported."""
    root = tmp_path_factory.mktemp("podcheck")
    (root / "shipforge.yaml").write_text(DESCRIPTOR)
    generate_tree(root / "shipforge.yaml", root)
    for relative, text in SOURCES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    for image in load(root / "shipforge.yaml").images:
        if podman("image", "exists", image.base, base=True).returncode == 0:
            continue
        started = time.monotonic()
        tarball = rootfs(image.runtime, tmp_path_factory.mktemp("rootfs"))
        podman.ok("import", str(tarball), image.base, timeout=600, base=True)
        print(f"\nimported {tarball.name} as {image.base} in {time.monotonic() - started:.1f} s")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float) -> bytes:
    """The body of the first successful GET of url, retried until the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def build(podman: Podman, context: Path, tag: str) -> tuple[float, str]:
    started = time.monotonic()
    output = podman.ok(
        "build", "--format", "docker", "--pull=never", "--tag", tag, str(context), timeout=600
    )
    return time.monotonic() - started, output


def step_used_cache(output: str, text: str) -> bool:
    """Whether the build steps whose instruction holds `text` were taken from the layer cache."""
    steps = re.split(r"^\[\d+/\d+\] STEP \d+/\d+: ", output, flags=re.MULTILINE)
    found = [s for s in steps if text in s.split("\n", 1)[0]]
    assert found, f"no step {text!r} in the build output"
    return all("--> Using cache" in s for s in found)


@pytest.mark.parametrize("service", sorted(CASES))
def test_image_runs_as_generated_and_rebuilds_from_the_dependency_cache(
    service: str, project: Path, podman: Podman, capsys: pytest.CaptureFixture[str]
) -> None:
    changed, dependencies, health = CASES[service]
    port = API_PORT if service == "api" else WEB_PORT
    context, tag = project / service, f"localhost/podcheck-{service}:test"
    cold, output = build(podman, context, tag)
    assert not step_used_cache(output, dependencies), "the first build must be a cold one"

    name, host_port = f"podcheck-{service}-{os.getpid()}", free_port()
    podman.ok("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{host_port}:{port}", tag)
    try:
        assert wait_for(f"http://127.0.0.1:{host_port}{health}", 30) == b"ok"
        # The image's own HEALTHCHECK, run by hand: there is no systemd timer to run it here.
        check = podman("healthcheck", "run", name, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        assert podman.ok("exec", name, "id", "-u").strip() == APP_UID
        assert podman.ok("exec", name, "id", "-g").strip() == APP_UID
        inspect = json.loads(podman.ok("inspect", name))[0]
        assert inspect["Config"]["User"] == f"{APP_UID}:{APP_UID}"
        # tini is PID 1 and hands SIGTERM to the service, which exits at once: no 10 s timeout.
        started = time.monotonic()
        podman.ok("stop", "--time", "10", name, timeout=30)
        stopped = time.monotonic() - started
        assert stopped < 5, f"stopping took {stopped:.1f} s: SIGTERM did not stop the service"
    finally:
        podman("rm", "--force", "--time", "0", name)

    source = context / changed
    source.write_text(source.read_text() + ("# changed\n" if service == "api" else "// changed\n"))
    warm, output = build(podman, context, tag)
    assert step_used_cache(output, dependencies), "a source change must reuse the dependency layer"
    copy = "COPY . /app/" if service == "api" else "COPY . ."
    assert not step_used_cache(output, copy), "the changed sources are copied again"
    with capsys.disabled():
        print(
            f"\n{service}: cold build {cold:.1f} s, warm build after a source change "
            f"{warm:.1f} s ({warm / cold:.0%}), podman stop {stopped:.2f} s"
        )
    assert warm < cold / 2, f"warm build {warm:.1f} s is not a small fraction of cold {cold:.1f} s"


def prometheus_api(path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitoring.PROMETHEUS_PORT}{path}") as r:
        return json.loads(r.read())["data"]


def test_dev_compose_comes_up_with_podman_compose_and_is_scraped(
    project: Path, podman: Podman, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """podman-compose brings up compose.yaml with its monitoring profile, and Prometheus
    (Debian's, standing in for the pinned image) finds and scrapes both web services."""
    compose_exe = shutil.which("podman-compose") or str(ROOT / ".venv" / "bin" / "podman-compose")
    prometheus_exe = shutil.which("prometheus")
    if not Path(compose_exe).is_file() or prometheus_exe is None:
        missing("podman-compose (PyPI) or prometheus (Debian) is not installed")
    for port in (API_PORT, WEB_PORT, monitoring.PROMETHEUS_PORT):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"127.0.0.1:{port} is taken: compose.yaml publishes it", pytrace=False)
    stand_in = tmp_path / "prometheus-image"
    stand_in.mkdir()
    shutil.copy(prometheus_exe, stand_in / "prometheus")
    (stand_in / "Dockerfile").write_text(
        f"FROM {load(project / 'shipforge.yaml').images[0].base}\n"
        "COPY prometheus /bin/prometheus\n"
        'ENTRYPOINT ["/bin/prometheus"]\n'
    )
    podman.ok("build", "--pull=never", "--tag", monitoring.PROMETHEUS_IMAGE, str(stand_in))

    compose = [compose_exe, "--podman-build-args=--format=docker --pull=never", "-f"]
    compose += [str(project / "compose.yaml"), "--profile", "monitoring"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, *args], env=podman.env, capture_output=True, text=True, timeout=600
        )

    started = time.monotonic()
    # Not Alertmanager: its image is not here offline, and podman-compose does not support the
    # environment-sourced secret that holds its receiver's URL.
    up = run("up", "--detach", "api", "web", "prometheus")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert wait_for(f"http://127.0.0.1:{API_PORT}/healthz", 30) == b"ok"
        assert wait_for(f"http://127.0.0.1:{WEB_PORT}/health", 30) == b"ok"
        ready = time.monotonic() - started
        wait_for(f"http://127.0.0.1:{monitoring.PROMETHEUS_PORT}/-/ready", 30)
        # DNS discovery resolves the compose service names; the first scrape comes within
        # one scrape interval.
        deadline, health = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            targets = prometheus_api("/api/v1/targets")["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            if sorted(health) == ["api", "prometheus", "web"] and set(health.values()) == {"up"}:
                break
            time.sleep(2)
        assert health == {"prometheus": "up", "api": "up", "web": "up"}
        requests = prometheus_api("/api/v1/query?query=http_requests_total")
        assert {s["metric"]["job"] for s in requests["result"]} == {"api", "web"}
        # A rule's health is "unknown" until its group's first evaluation.
        deadline = time.monotonic() + 60
        while True:
            groups = prometheus_api("/api/v1/rules")["groups"]
            healths = {r["health"] for g in groups for r in g["rules"]}
            if "unknown" not in healths or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert {g["name"]: len(g["rules"]) for g in groups} == {"api": 5, "web": 5}
        assert healths == {"ok"}, [
            (r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
        ]
        with capsys.disabled():
            print(f"\npodman-compose up: services answering after {ready:.1f} s, all targets up")
    finally:
        down = run("down", "--volumes")
        assert down.returncode == 0, down.stdout + down.stderr
