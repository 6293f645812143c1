"""The generated Dockerfiles per package manager, read as buildah/BuildKit read them.

The slow tier (tests/test_real_apps.py) builds real apps; these fast checks pin the
decisions those builds rely on for every manager, including the ones no fixture app covers
(Poetry, uv, Yarn), and run hadolint on each variant.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from generator.loader import load
from tests.conftest import ROOT, generate_tree

BASE = """\
version: 1
project: {{name: shop}}
services:
  app:
    runtime: {runtime}
    version: "{version}"
    package_manager: {manager}
{extra}
"""


def render(tmp_path: Path, runtime: str, manager: str, extra: str, version: str = "") -> str:
    version = version or ("3.11" if runtime == "python" else "22")
    descriptor = tmp_path / "shipforge.yaml"
    body = BASE.format(runtime=runtime, manager=manager, version=version, extra=extra)
    descriptor.write_text(body.replace("\n\n", "\n"))
    generate_tree(descriptor, tmp_path)
    image = load(descriptor).images[0]
    return (tmp_path / image.dockerfile).read_text()


def stages(text: str) -> list[list[str]]:
    """Each stage's instructions as `KEYWORD value` lines (comments and continuations joined)."""
    # A file object: DockerfileParser without one reads and writes ./Dockerfile.
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    result: list[list[str]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result and instruction["instruction"] != "COMMENT":
            result[-1].append(f"{instruction['instruction']} {instruction['value']}")
    return result


def index(lines: list[str], fragment: str) -> int:
    found = [i for i, line in enumerate(lines) if fragment in line]
    assert found, f"{fragment!r} not in {lines}"
    return found[0]


def hadolint(path: Path) -> None:
    exe = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    result = subprocess.run(
        [exe, "--failure-threshold", "warning", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pnpm_is_pinned_before_fetch_and_present_at_run_time(tmp_path: Path) -> None:
    text = render(
        tmp_path,
        "node",
        "pnpm",
        "    command: pnpm start\n    release: pnpm --filter db run migrate\n    port: 3000",
    )
    build, runtime = stages(text)
    # package.json (packageManager) is there when pnpm is installed, and before pnpm fetch.
    assert index(build, "COPY package.json pnpm-lock.yaml") < index(build, '"pnpm@$pin"')
    assert index(build, '"pnpm@$pin"') < index(build, "pnpm fetch --prod")
    assert index(build, "pnpm fetch") < index(build, "COPY . .")
    assert "corepack" not in text
    assert any(line == "COPY --from=build /opt/pm /opt/pm" for line in runtime)
    assert 'ENTRYPOINT ["/usr/bin/tini", "-g", "--"]' in runtime
    hadolint(tmp_path / "Dockerfile")


def test_pnpm_is_left_out_of_the_runtime_when_nothing_runs_it(tmp_path: Path) -> None:
    text = render(tmp_path, "node", "pnpm", "    command: node server.js\n    port: 3000")
    runtime = stages(text)[-1]
    assert not any("/opt/pm" in line for line in runtime)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in runtime


@pytest.mark.parametrize(
    ("version", "pin"), [("3.12", "2.5.1"), ("3.9", "2.2.1"), ("3.8", "1.8.5")]
)
def test_poetry_fits_the_python_and_installs_the_project_after_the_sources(
    tmp_path: Path, version: str, pin: str
) -> None:
    text = render(tmp_path, "python", "poetry", "    command: python -m shop", version)
    build = stages(text)[0]
    assert index(build, f"poetry=={pin}") < index(build, "--no-root")
    assert index(build, "--no-root") < index(build, "COPY . /app/")
    assert build[-1].endswith("poetry install --only main --no-ansi")
    hadolint(tmp_path / "Dockerfile")


def test_uv_syncs_locked_twice(tmp_path: Path) -> None:
    text = render(tmp_path, "python", "uv", "    command: python -m shop")
    build = stages(text)[0]
    assert "--frozen" not in text
    assert index(build, "--no-install-project") < index(build, "COPY . /app/")
    assert build[-1].endswith("uv sync --locked --no-dev")
    hadolint(tmp_path / "Dockerfile")


def test_pip_build_step_has_the_venv_and_nested_requirements(tmp_path: Path) -> None:
    text = render(
        tmp_path, "python", "pip", "    build: flask assets build\n    command: flask run"
    )
    requirements, build, runtime = stages(text)
    assert any("-path '*requirements*'" in line for line in requirements)
    assert "PATH=/app/.venv/bin:$PATH" in build[2]
    assert index(build, "COPY --from=requirements") < index(build, "pip install -r")
    assert index(build, "pip install -r") < index(build, "RUN flask assets build")
    assert "COPY --from=build /app /app" in runtime
    hadolint(tmp_path / "Dockerfile")


def test_yarn_branches_on_its_major(tmp_path: Path) -> None:
    text = render(tmp_path, "node", "yarn", "    command: yarn start\n    port: 3000")
    assert "yarn install --immutable && yarn workspaces focus --all --production" in text
    assert "yarn install --frozen-lockfile --non-interactive --production" in text
    assert "--ignore-scripts" not in text.split("yarn install --immutable")[1].split(";;")[0]
    assert "@yarnpkg/cli-dist" in text
    hadolint(tmp_path / "Dockerfile")


def test_system_packages_land_in_their_stage(tmp_path: Path) -> None:
    text = render(
        tmp_path,
        "python",
        "pip",
        "    command: gunicorn app:app --bind 0.0.0.0:8000\n"
        "    system_packages: {build: [libpq-dev, gcc], runtime: [libpq5]}",
    )
    _, build, runtime = stages(text)
    assert "apt-get install -y --no-install-recommends gcc libpq-dev" in build[1]
    assert "libpq5" not in " ".join(build)
    assert "tini libpq5" in runtime[1]
    assert "libpq-dev" not in " ".join(runtime)
    hadolint(tmp_path / "Dockerfile")


def test_nextjs_gets_build_args_and_a_writable_cache(tmp_path: Path) -> None:
    text = render(
        tmp_path,
        "node",
        "npm",
        "    build: npm run build\n    command: next start\n    port: 3000\n"
        '    working_dir: apps/web\n    env: {NEXT_PUBLIC_API_URL: "https://api.example.com/$v"}',
    )
    build, runtime = stages(text)
    assert index(build, 'ARG NEXT_PUBLIC_API_URL="https://api.example.com/\\$v"') < index(
        build, "RUN npm run build"
    )
    assert index(build, "WORKDIR /app/apps/web") < index(build, "RUN npm run build")
    assert any("chown 10001:10001 /app/apps/web/.next/cache" in line for line in runtime)
    assert "WORKDIR /app/apps/web" in runtime
    service = load(tmp_path / "shipforge.yaml").services[0]
    assert service.writable_paths == ("/tmp", "/app/apps/web/.next/cache")
    hadolint(tmp_path / "Dockerfile")


def test_every_download_step_takes_the_build_secrets(tmp_path: Path) -> None:
    for runtime, manager in [("python", "pip"), ("python", "uv"), ("node", "npm")]:
        folder = tmp_path / manager
        folder.mkdir()
        text = render(folder, runtime, manager, "    command: app")
        for line in (line for stage in stages(text) for line in stage):
            if any(tool in line for tool in ("pip install", "uv sync", "npm ci")):
                assert "--mount=type=secret,id=ca-bundle" in line, line
                assert "--mount=type=cache," in line, line


def test_uses_map_names_the_variable_everywhere(tmp_path: Path) -> None:
    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        "version: 1\nproject: {name: shop}\nservices:\n  api:\n    runtime: python\n"
        "    command: python -m app\n    uses: {postgres: POSTGRES_DSN, redis: CACHE_URL}\n"
        "datastores: {postgres: {}, redis: {}}\n"
    )
    generate_tree(descriptor, tmp_path)
    service = load(descriptor).services[0]
    assert service.datastore_secrets == ("POSTGRES_DSN", "CACHE_URL")
    compose = (tmp_path / "compose.yaml").read_text()
    assert 'POSTGRES_DSN: "postgresql://postgres@postgres:5432/shop"' in compose
    assert 'CACHE_URL: "redis://redis:6379/0"' in compose
    assert "DATABASE_URL" not in compose
    production = (tmp_path / ".env.production.example").read_text()
    assert "POSTGRES_DSN=" in production and "DATABASE_URL" not in production


def test_servers_without_a_bind_listen_on_the_descriptors_port(tmp_path: Path) -> None:
    text = render(tmp_path, "python", "pip", "    command: gunicorn app:app -w 2\n    port: 8000")
    runtime = stages(text)[-1]
    assert 'ENV GUNICORN_CMD_ARGS="--bind=0.0.0.0:8000"' in runtime
    bound = tmp_path / "bound"
    bound.mkdir()
    text = render(
        bound, "python", "pip", "    command: gunicorn app:app -b 0.0.0.0:8000\n    port: 8000"
    )
    assert "GUNICORN_CMD_ARGS" not in text
    hadolint(tmp_path / "Dockerfile")
