"""Build and run the real fixture apps of tests/fixtures/apps with podman (shared by the slow
tier, tests/test_real_apps.py, and bench/bench_images.py).

Each app is copied to a scratch folder with its descriptor, generated, and built through the
generated Dockerfile's build-secret hook, exactly as a user behind a TLS-intercepting proxy
would: the host's CA bundle as `ca-bundle`, plus small pip.conf / npmrc files. Base images are
Debian stand-ins (tests/install-tools.sh) imported under the names the Dockerfiles use.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from generator.loader import load
from tests.conftest import ROOT, generate_tree

APPS = ROOT / "tests" / "fixtures" / "apps"
TOOLS = ROOT / ".tools"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# Stand-in tarball (tests/install-tools.sh) for each image name the generated files use.
BASES = {
    "python:3.11-slim-bookworm": "bookworm-python",
    "node:22-bookworm-slim": "bookworm-node22.23.5",
    "localhost/standin/postgres-rootfs:15": "bookworm-postgres",
    "localhost/standin/redis:7": "bookworm-redis",
}
# The official postgres image's variables, honoured by a small entrypoint over Debian's server.
POSTGRES_ENTRYPOINT = """\
#!/bin/sh
set -eu
data=/var/lib/postgresql/data
if [ ! -s "$data/PG_VERSION" ]; then
  mkdir -p "$data" && chown postgres:postgres "$data"
  printf '%s' "$POSTGRES_PASSWORD" > /tmp/pw && chown postgres /tmp/pw
  su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/initdb -D $data -U $POSTGRES_USER \\
    --pwfile=/tmp/pw --auth-host=scram-sha-256 --auth-local=trust" >/dev/null
  rm /tmp/pw
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$data/pg_hba.conf"
  su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/pg_ctl -D $data -w start -o '-c listen_addresses='" >/dev/null
  su postgres -s /bin/sh -c "psql -U $POSTGRES_USER -d postgres -c 'CREATE DATABASE \\"$POSTGRES_DB\\"'" >/dev/null
  su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/pg_ctl -D $data -w stop" >/dev/null
fi
mkdir -p /var/run/postgresql && chown postgres /var/run/postgresql
exec su postgres -s /bin/sh -c "exec /usr/lib/postgresql/15/bin/postgres -D $data -c listen_addresses='*'"
"""
POSTGRES_IMAGE = "localhost/standin/postgres:15"


@dataclass(frozen=True)
class App:
    """One fixture app: its folder, its descriptor and what the tests expect of it."""

    folder: str
    descriptor: str
    source: str  # a file a source-only change touches
    stop_log: str  # what the app's own SIGTERM handler prints
    body: str = ""  # a text the health (or page) response must contain
    page: str = ""  # a further path to fetch (Next.js: the page with the build-time value)
    rebuild: bool = True  # the slow tier also rebuilds after a source change
    # How a job reaches the worker: a command run inside the worker's container (the app's
    # own client, e.g. Celery's CLI), else `rpush jobs <job>` on the Redis list it pops.
    enqueue: tuple[str, ...] = ()
    worker_stop_log: str = "worker: SIGTERM handler ran"  # the worker's own SIGTERM handler


APPS_UNDER_TEST = {
    "fastapi-pip": App(
        "fastapi-pip",
        """\
version: 1
project: {name: fx-fastapi}
services:
  api:
    runtime: python
    version: "3.11"
    command: uvicorn --factory app.main:create_app --host 0.0.0.0 --port 8000
    port: 8000
    health: /healthz
    uses: {redis: QUEUE_URL}
  worker:
    runtime: python
    version: "3.11"
    command: python -m app.worker
    uses: {redis: QUEUE_URL}
datastores: {redis: {}}
""",
        "app/main.py",
        "api: shutdown handler ran",
        body='"status":"ok"',
    ),
    "django-psycopg": App(
        "django-psycopg",
        """\
version: 1
project: {name: fx-django}
services:
  web:
    runtime: python
    version: "3.11"
    command: gunicorn shop.wsgi --bind 0.0.0.0:8000 --workers 2
    port: 8000
    health: /healthz
    release: python manage.py migrate --noinput
    uses: {postgres: POSTGRES_DSN}
    system_packages: {runtime: [libpq5]}
datastores: {postgres: {}}
""",
        "shop/urls.py",
        "Handling signal: term",
        body='"orders": 0',
    ),
    "flask-uv": App(
        "flask-uv",
        """\
version: 1
project: {name: fx-flask}
services:
  web:
    runtime: python
    version: "3.11"
    package_manager: uv
    command: gunicorn inventory.web:create_app()
    port: 8000
    health: /healthz
""",
        "src/inventory/web.py",
        "Handling signal: term",
        body='"package":"inventory"',
    ),
    "poetry-app": App(
        "poetry-app",
        """\
version: 1
project: {name: fx-poetry}
services:
  api:
    runtime: python
    version: "3.11"
    package_manager: poetry
    command: catalog
    port: 8000
    health: /healthz
""",
        "src/catalog/main.py",
        "catalog: shutdown handler ran",
        body='"served_by":"catalog"',
    ),
    "express-npm": App(
        "express-npm",
        """\
version: 1
project: {name: fx-express}
services:
  web:
    runtime: node
    version: "22"
    command: npm start
    port: 3000
    health: /health
""",
        "server.js",
        "express: SIGTERM handler ran",
        body='"status":"ok"',
    ),
    "pnpm-workspace": App(
        "pnpm-workspace",
        """\
version: 1
project: {name: fx-pnpm}
services:
  api:
    runtime: node
    version: "22"
    package_manager: pnpm
    working_dir: apps/api
    command: pnpm start
    release: pnpm run migrate
    port: 3000
    health: /healthz
""",
        "apps/api/server.js",
        "api: SIGTERM handler ran",
        body="hello, pnpm",
    ),
    "yarn4": App(
        "yarn4",
        """\
version: 1
project: {name: fx-yarn}
services:
  web:
    runtime: node
    version: "22"
    package_manager: yarn
    command: yarn start
    port: 3000
    health: /healthz
""",
        "server.js",
        "yarn4: SIGTERM handler ran",
        body='"yarn":"4"',
    ),
    "nextjs": App(
        "nextjs",
        """\
version: 1
project: {name: fx-next}
services:
  web:
    runtime: node
    version: "22"
    build: npm run build
    command: npm start
    port: 3000
    health: /api/health
    env:
      NEXT_PUBLIC_GREETING: hello from the build
      NEXT_TELEMETRY_DISABLED: "1"
""",
        "app/page.js",
        "",  # next start exits on SIGTERM by itself; the stop time is what is asserted
        body='"status":"ok"',
        page="/",
        # A source change reruns `next build` (~100 s here): measured in the benchmark only.
        rebuild=False,
    ),
    "ts-api": App(
        "ts-api",
        """\
version: 1
project: {name: fx-ts}
services:
  api:
    runtime: node
    version: "22"
    build: npm run build
    command: node dist/server.js
    port: 3000
    health: /healthz
""",
        "src/server.ts",
        "ts-api: SIGTERM handler ran",
        body='"compiled":true',
    ),
    "celery-worker": App(
        "celery-worker",
        """\
version: 1
project: {name: fx-celery}
services:
  worker:
    runtime: python
    version: "3.11"
    command: celery --app billing worker --loglevel INFO --concurrency 1
    uses: {redis: CELERY_BROKER_URL}
datastores: {redis: {}}
""",
        "billing/__init__.py",
        "",
        enqueue=(
            "celery",
            "--app",
            "billing",
            "call",
            "billing.invoice",
            "--args",
            '["invoice-42"]',
        ),
        worker_stop_log="billing: worker_shutdown handler ran",
    ),
}


class Unavailable(Exception):
    """A tool or stand-in image this machine lacks (tests/install-tools.sh installs it)."""


@dataclass(frozen=True)
class Podman:
    """podman on a scratch image store that reads the stand-in bases from a kept store."""

    env: dict[str, str]
    base_env: dict[str, str]
    scratch: Path

    def __call__(
        self, *args: str, timeout: float = 600, base: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args],
            env=self.base_env if base else self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, timeout: float = 600, base: bool = False) -> str:
        result = self(*args, timeout=timeout, base=base)
        if result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result.stdout


def podman_lab(scratch: Path) -> Podman:
    """A podman with fresh storage (cold builds are cold) and every stand-in base imported."""
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed")
    conf = TOOLS / "podman" / "containers.conf"
    if not conf.is_file():
        raise Unavailable(f"{conf} is missing")
    base = TOOLS / "podman-base"
    base.mkdir(parents=True, exist_ok=True)
    (base / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{base / "graph"}"\n'
        f'runroot = "{base / "run"}"\n'
    )
    storage = scratch / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{scratch / "graph"}"\n'
        f'runroot = "{scratch / "run"}"\n\n'
        f'[storage.options]\nadditionalimagestores = ["{base / "graph"}"]\n'
    )
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}
    lab = Podman(env, {**env, "CONTAINERS_STORAGE_CONF": str(base / "storage.conf")}, scratch)
    for image, tarball_name in BASES.items():
        if lab("image", "exists", image, base=True).returncode == 0:
            continue
        tarball = TOOLS / "rootfs" / f"{tarball_name}.tar"
        if not tarball.is_file():
            raise Unavailable(f"{tarball} is missing")
        lab.ok("import", str(tarball), image, base=True)
    if lab("image", "exists", POSTGRES_IMAGE, base=True).returncode != 0:
        context = scratch / "postgres-image"
        context.mkdir()
        (context / "entrypoint.sh").write_text(POSTGRES_ENTRYPOINT)
        (context / "Containerfile").write_text(
            "FROM localhost/standin/postgres-rootfs:15\n"
            "COPY --chmod=755 entrypoint.sh /entrypoint.sh\n"
            'ENTRYPOINT ["/entrypoint.sh"]\n'
        )
        lab.ok("build", "--pull=never", "--tag", POSTGRES_IMAGE, str(context), base=True)
    return lab


def build_secrets(scratch: Path) -> list[str]:
    """The hook's secrets as this machine needs them: its CA bundle, and client settings."""
    (scratch / "pip.conf").write_text("[global]\ntimeout = 120\nretries = 5\n")
    (scratch / "npmrc").write_text("fund=false\naudit=false\nfetch-retries=5\n")
    secrets = [f"id=pip.conf,src={scratch / 'pip.conf'}", f"id=npmrc,src={scratch / 'npmrc'}"]
    if HOST_CA.is_file():
        secrets.append(f"id=ca-bundle,src={HOST_CA}")
    return [arg for secret in secrets for arg in ("--secret", secret)]


def prepare(app: App, scratch: Path) -> Path:
    """The app copied to a scratch folder, its descriptor written and generated."""
    root = scratch / app.folder
    shutil.copytree(APPS / app.folder, root)
    (root / "shipforge.yaml").write_text(app.descriptor)
    generate_tree(root / "shipforge.yaml", root)
    return root


# Files the tools around an app leave in its folder (terraform, kubectl, gcloud, editors):
# the .dockerignore must keep each out of the image; only the example env file may go in.
LEAKS = (
    "terraform/terraform.tfstate",
    "terraform/terraform.tfstate.backup",
    "terraform/secrets.auto.tfvars",
    "terraform/.terraform/providers/registry/provider.bin",
    "plan.tfplan",
    "gcp-sa-key.json",
    "deploy/service-account.json",
    ".kube/config",
    "kubeconfig.yaml",
    ".env",
    ".env.local",
    ".env.production",
    "certs/server.pem",
    "certs/server.key",
    ".docker/config.json",
)
KEPT = (".env.example",)


def plant_leaks(root: Path) -> None:
    for relative in (*LEAKS, *KEPT):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("SECRET=not-for-images\n")


def build(lab: Podman, root: Path, tag: str) -> tuple[float, str]:
    """Build the generated Dockerfile of the app's only image; seconds and the build log."""
    image = load(root / "shipforge.yaml").images[0]
    started = time.monotonic()
    output = lab.ok(
        "build",
        "--format",
        "docker",
        "--pull=never",
        *build_secrets(lab.scratch),
        "--file",
        str(root / image.dockerfile),
        "--tag",
        tag,
        str(root / image.path),
        timeout=900,
    )
    return time.monotonic() - started, output


# The step of each manager that downloads the dependencies, which a source-only change must
# take from the layer cache (Yarn installs after the sources, from its cache mount).
DEPENDENCY_STEPS = {
    "pip": "pip install -r",  # requirements.txt, or pyproject.toml's dependencies
    "uv": "--no-install-project",
    "poetry": "--no-root",
    "npm": "npm ci",
    "pnpm": "pnpm fetch",
}


def cached(output: str, fragment: str) -> bool:
    """Whether every build step whose instruction contains fragment came from the cache."""
    steps = re.split(r"^(?:\[\d+/\d+\] )?STEP \d+/\d+: ", output, flags=re.MULTILINE)
    found = [step for step in steps if fragment in step.split("\n", 1)[0]]
    assert found, f"no build step with {fragment!r}"
    return all("--> Using cache" in step for step in found)


def image_size(lab: Podman, tag: str) -> int:
    return int(lab.ok("image", "inspect", "--format", "{{.Size}}", tag).strip())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, seconds: float) -> str:
    """The body of the first successful GET of url, retried until the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def hardened(writable: tuple[str, ...]) -> list[str]:
    """How the production compose file and the Kubernetes target run a service: the image's
    non-root user, a read-only root filesystem with only the writable paths it is given, no
    capabilities."""
    args = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    for path in writable:
        # An emptyDir / tmpfs is writable by the pod's user, as Kubernetes' fsGroup makes it.
        args += ["--tmpfs", f"{path}:rw,mode=1777"]
    return args
