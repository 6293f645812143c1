"""`shipforge init`: one fixture repository per detection rule, each result validated.

Each folder under tests/fixtures/init is a small repository. init runs on a copy with --yes
(or with typed answers), and the descriptor it writes must load through the real loader.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from generator.cli import app
from generator.loader import load
from generator.model import Project, Service

FIXTURES = Path(__file__).parent / "fixtures" / "init"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.stdout, result.stderr


def init(tmp_path: Path, fixture: str, *args: str, stdin: str | None = None) -> Path:
    """Copy a fixture repository, run init in it, and return its new descriptor."""
    repo = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, repo)
    code, out, err = run("init", str(repo), *args, stdin=stdin)
    assert code == 0, out + err
    descriptor = repo / "shipforge.yaml"
    code, out, err = run("validate", str(descriptor))
    assert code == 0, out + err
    return descriptor


def services(descriptor: Path) -> dict[str, Service]:
    project: Project = load(descriptor)
    return {s.name: s for s in project.services}


def guessed_lines(descriptor: Path) -> list[str]:
    """The lines init marked as guessed (a value it wrote, or a commented one it did not)."""
    return [
        line
        for line in descriptor.read_text().splitlines()
        if line.lstrip().startswith("# guessed:") or "  # guessed (" in line
    ]


def datastores(descriptor: Path) -> list[str]:
    return [d.name for d in load(descriptor).datastores]


def test_fastapi_asyncpg_redis_alembic(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "fastapi-asyncpg-redis-alembic", "--yes")
    (api,) = services(descriptor).values()
    assert api.runtime == "python" and api.package_manager == "pip"
    assert api.command == "uvicorn app.main:app --host 0.0.0.0 --port 8000"
    assert "app.main:app" in api.argv
    assert api.port == 8000 and api.health == "/health"
    assert api.uses == ("postgres", "redis")
    assert datastores(descriptor) == ["postgres", "redis"]
    assert api.release == "alembic upgrade head"
    # Secret names from the repository's .env.example; the URLs come from `uses`.
    assert api.secrets == ("OPENAI_API_KEY",)
    text = descriptor.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    # The port is not in the code: the command shipforge writes binds uvicorn's usual one.
    assert "port: 8000  # port 8000: uvicorn's usual port 8000, set in the command" in text
    assert "# FastAPI app `app` in app/main.py" in text


def test_the_result_generates(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "fastapi-asyncpg-redis-alembic", "--yes")
    # The repository's own .env.example is the user's side of a merge: no line of it is lost.
    code, _, err = run("generate", str(descriptor))
    assert code == 1 and "conflict: .env.example (exists and was not written" in err
    assert "\nLOG_LEVEL=info\n=======\n" in (descriptor.parent / ".env.example").read_text()
    (descriptor.parent / ".env.example").unlink()
    code, out, err = run("generate", str(descriptor))
    assert code == 0, out + err
    compose = (descriptor.parent / "compose.yaml").read_text()
    assert '"alembic", "upgrade", "head"' in compose and "postgres:" in compose


def test_poetry_flask_with_its_port_and_python_bound(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "poetry-flask", "--yes")
    (web,) = services(descriptor).values()
    assert load(descriptor).name == "shop-front"
    assert (web.package_manager, web.version) == ("poetry", "3.11")
    assert web.command == "gunicorn shop.wsgi:app --bind 0.0.0.0:5000"
    assert (web.port, web.health, web.uses) == (5000, "/healthz", ("postgres",))
    assert not guessed_lines(descriptor)


def test_uv_django_migrate_release_and_redis(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "uv-django", "--yes")
    (web,) = services(descriptor).values()
    assert (web.package_manager, web.version) == ("uv", "3.12")
    assert web.command == "gunicorn mysite.wsgi:application --bind 0.0.0.0:8000"
    assert web.release == "python manage.py migrate"
    assert web.health == "/healthz/"
    assert web.uses == ("postgres", "redis")


def test_pipfile_starlette_and_celery_worker(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "pipfile-starlette-celery", "--yes")
    found = services(descriptor)
    assert sorted(found) == ["api", "worker"]
    assert found["api"].command == "uvicorn app.asgi:application --host 0.0.0.0 --port 8080"
    assert found["api"].port == 8080
    assert found["worker"].command == "celery -A app.tasks:celery_app worker --loglevel INFO"
    assert not found["worker"].web
    # SQLAlchemy counts as postgres only with a PostgreSQL URL in sight; celery[redis] is redis.
    assert found["api"].uses == ("postgres", "redis")
    text = descriptor.read_text()
    assert "requirements.txt, which is missing" in text


def test_express_npm(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "node-express", "--yes")
    (web,) = services(descriptor).values()
    assert load(descriptor).name == "billing-api"
    assert (web.runtime, web.package_manager, web.version) == ("node", "npm", "20")
    assert web.command == "node src/server.js"
    assert (web.port, web.health) == (4000, "/healthz"), "6379 is redis, not the web port"
    assert web.uses == ("postgres", "redis")


def test_nextjs_prisma_yarn(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "nextjs-prisma", "--yes")
    (web,) = services(descriptor).values()
    assert (web.package_manager, web.build) == ("yarn", "yarn run build")
    assert web.command == "npm run start"
    assert (web.port, web.health) == (3000, "/api/health")
    assert web.release == "npx prisma migrate deploy"
    assert web.uses == ("postgres",)
    assert "move `prisma` to dependencies" in descriptor.read_text()


def test_pnpm_workspace_gives_one_service_per_app(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "pnpm-workspace", "--yes")
    found = services(descriptor)
    assert sorted(found) == ["api", "worker"], "the library package is not a service"
    assert found["api"].command == "node apps/api/dist/main.js"
    assert (found["api"].port, found["api"].health) == (3100, "/readyz")
    assert found["worker"].command == "node apps/worker/dist/worker.js"
    assert not found["worker"].web
    for service in found.values():
        assert (service.path, service.package_manager, service.build) == (
            ".",
            "pnpm",
            "pnpm run build",
        )
    # One workspace, one build: both services share one image.
    assert len(load(descriptor).images) == 1
    assert "packages/shared: no start script" in descriptor.read_text()


def test_several_python_projects(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "python-multi", "--yes")
    found = services(descriptor)
    assert sorted(found) == ["ingest", "scorer"], "docs/requirements.txt is not a service"
    assert found["ingest"].path == "services/ingest"
    assert found["ingest"].command == "uvicorn ingest.app:api --host 0.0.0.0 --port 9000"
    assert (found["ingest"].port, found["ingest"].health) == (9000, "/livez")
    assert (found["scorer"].path, found["scorer"].package_manager) == ("services/scorer", "uv")
    assert found["scorer"].command == "python -m scorer"


def test_yes_takes_documented_defaults_and_says_so(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "unknown-script", "--yes")
    (service,) = services(descriptor).values()
    assert service.command == "python -m app" and not service.web
    text = descriptor.read_text()
    assert 'command: "python -m app"  # guessed (no start command found): check it' in text
    # Whether it listens at all is not shown: no port is written, only a guessed line.
    assert "# guessed: no port, a worker" in text


def test_without_yes_it_asks_what_it_cannot_detect(tmp_path: Path) -> None:
    # Prompts in order: command, port (empty for a worker), then health for a web service.
    descriptor = init(tmp_path, "unknown-script", stdin="python run_me.py\nnot-a-port\n8081\n/up\n")
    (service,) = services(descriptor).values()
    assert (service.command, service.port, service.health) == ("python run_me.py", 8081, "/up")
    assert not guessed_lines(descriptor)


def test_hostile_values_land_as_the_same_strings(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "hostile-procfile", "--yes")
    found = services(descriptor)
    assert found["web"].command == (
        "gunicorn app:app --bind 0.0.0.0:8000 --access-logformat "
        "'${{ github.token }} {{ x }} $(id) \"on\"'"
    ), "$PORT becomes the port; nothing else changes"
    assert found["web"].release == 'python -c \'print("on", "0755")\' # not a comment'
    assert found["worker"].argv == ("python", "-m", "jobs", "--queue", "a b")
    code, out, err = run("generate", str(descriptor))
    assert code == 0, out + err
    compose = (descriptor.parent / "compose.yaml").read_text()
    assert '"$${{ github.token }} {{ x }} $$(id) \\"on\\""' in compose


def test_never_overwrites_a_descriptor(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "node-express", repo)
    (repo / "shipforge.yaml").write_text("mine\n")
    code, _, err = run("init", str(repo), "--yes")
    assert code == 1
    assert "already exists: shipforge init never overwrites a descriptor" in err
    assert (repo / "shipforge.yaml").read_text() == "mine\n"


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    code, _, err = run("init", str(tmp_path), "--yes")
    assert code == 1 and "found no Python or Node project" in err
    assert not (tmp_path / "shipforge.yaml").exists()


def test_detection_is_deterministic(tmp_path: Path) -> None:
    first = init(tmp_path / "a", "pnpm-workspace", "--yes").read_bytes()
    second = init(tmp_path / "b", "pnpm-workspace", "--yes").read_bytes()
    assert first == second


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (">=3.10,<3.12", "3.11"),
        ("^3.9", ""),
        ("==3.10.*", "3.10"),
        ("~=3.13", "3.13"),
        # The cases the hand-written parser got wrong (review of issue 11, cause 9).
        ("!=3.12.0", ""),
        (">3.12", ""),
        ("~=3.12.1", ""),
        ("~=3.11.2", "3.11"),
        (">=3.8,<3.10", "3.9"),
        ("~3.10", "3.10"),
        (">=3.9 || <3.0", ""),
    ],
)
def test_python_version_from_specifiers(tmp_path: Path, spec: str, expected: str) -> None:
    from generator.detect.base import Repo
    from generator.detect.python import python_version

    data: dict[str, Any] = {"project": {"requires-python": spec}}
    found = python_version(Repo(tmp_path), tmp_path, data, None)
    assert (found[0] if found else "") == expected


# --- issue 11: one fixture per cause, each with the descriptor it must produce beside it ------

EXPECTED = sorted(p.name.removesuffix(".expected.yaml") for p in FIXTURES.glob("*.expected.yaml"))


@pytest.mark.parametrize("fixture", EXPECTED)
def test_writes_the_expected_descriptor(tmp_path: Path, fixture: str) -> None:
    import yaml

    descriptor = init(tmp_path, fixture, "--yes")
    expected = yaml.safe_load((FIXTURES / f"{fixture}.expected.yaml").read_text())
    assert yaml.safe_load(descriptor.read_text()) == expected


def test_a_factory_app_is_the_module_attribute_it_is_assigned_to(tmp_path: Path) -> None:
    (api,) = services(init(tmp_path, "factory-fastapi", "--yes")).values()
    # `app = create_application()`: app.main:app, no --factory; the router's prefix counts.
    assert api.command == "uvicorn app.main:app --host 0.0.0.0 --port 8000"
    assert api.health == "/api/health"


def test_the_dockerfile_cmd_and_compose_command_win(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "dockerfile-compose", "--yes")
    found = services(descriptor)
    # The entrypoint script only wraps CMD; CMD is the process, its --bind the port.
    assert found["web"].argv[0] == "gunicorn" and "ledger.web:make_app()" in found["web"].argv
    assert found["web"].port == 5050 and found["web"].version == "3.11"
    assert found["tasks"].command == "celery -A ledger.jobs worker --loglevel info"
    # Literal keys in compose.yaml become secret NAMES; the values never reach the descriptor.
    text = descriptor.read_text()
    assert found["web"].secrets == ("LEDGER_API_TOKEN", "SECRET_KEY")
    assert "dev-only-not-a-real-key" not in text and "tok-123" not in text
    assert "NEXT_PUBLIC_SITE" not in text


def test_procfile_chains_and_env_prefixes_are_split(tmp_path: Path) -> None:
    found = services(init(tmp_path, "procfile-chain", "--yes"))
    assert found["web"].command == "gunicorn journal:app"
    assert found["web"].release == "flask db upgrade"
    assert found["worker"].argv == ("rq", "worker", "mail")
    assert dict((s.name, s.value) for s in found["worker"].env) == {
        "QUEUE_NAME": "mail",
        "WORKER_CLASS": "rq.Worker",
    }


def test_code_in_a_subfolder_runs_from_it_with_its_alembic(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "alembic-subfolder", "--yes")
    (api,) = services(descriptor).values()
    assert api.working_dir == "backend"
    assert api.command.startswith("uvicorn main:api ")
    assert api.release == "alembic upgrade head"


def test_monorepo_stub_mobile_and_evaluation_are_not_services(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "monorepo-mixed", "--yes")
    found = services(descriptor)
    assert sorted(found) == ["backend", "frontend"]
    # Each service gets only the secret names its own code reads; NEXT_PUBLIC_* is public.
    assert found["backend"].secrets == ("OPENAI_API_KEY",)
    assert found["frontend"].secrets == ("STRIPE_SECRET_KEY",)
    text = descriptor.read_text()
    assert "mobile: a mobile app" in text and "UNUSED_SERVICE_PASSWORD" not in text
    # The backend's /health does not leak into the frontend, which has none.
    assert "# guessed: health: /healthz" in text
    assert yaml_services(descriptor)["frontend"].get("health") is None


def yaml_services(descriptor: Path) -> dict[str, dict[str, Any]]:
    import yaml

    data: dict[str, dict[str, Any]] = yaml.safe_load(descriptor.read_text())["services"]
    return data


def test_no_health_route_and_no_literal_port_are_not_invented(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "express-no-health", "--yes")
    raw = yaml_services(descriptor)["web"]
    # No route answers /healthz: the descriptor says there is none (null), since left out
    # the health path would be the default /healthz.
    assert "health" in raw and raw["health"] is None
    # The code listens on $PORT: the port is made true by setting PORT, not guessed.
    assert (raw["port"], raw["env"]) == (3000, {"PORT": "3000"})
    assert "commit pnpm-lock.yaml" in descriptor.read_text()


def test_no_health_route_generates_port_checks_only(tmp_path: Path) -> None:
    """`health: null`: every generated check connects to the port; none probes a path."""
    descriptor = init(tmp_path, "express-no-health", "--yes")
    text = descriptor.read_text().replace("#   kubernetes: true", "  kubernetes: true")
    text = text.replace("# targets:", "targets:")
    descriptor.write_text(text)
    out = tmp_path / "out"
    code, stdout, err = run("generate", str(descriptor), "--out", str(out))
    assert code == 0, stdout + err
    generated = {
        path.relative_to(out).as_posix(): path.read_text()
        for path in out.rglob("*")
        if path.is_file()
    }
    assert not [name for name, body in generated.items() if "/healthz" in body]
    dockerfile = next(body for name, body in generated.items() if "Dockerfile" in name)
    assert "require('net').connect(3000, '127.0.0.1')" in dockerfile
    manifests = "".join(body for name, body in generated.items() if name.startswith("k8s/"))
    assert "httpGet" not in manifests and "tcpSocket" in manifests


def test_workers_arq_and_celery_beat(tmp_path: Path) -> None:
    arq = services(init(tmp_path, "arq-worker", "--yes"))
    assert arq["worker"].command == "arq crawler.jobs.WorkerSettings"
    assert arq["api"].version == "3.9", "requires-python excludes the 3.12 default"
    beat = services(init(tmp_path, "celery-beat", "--yes"))
    assert beat["beat"].command == "celery -A shop.celery:app beat --loglevel INFO"
    assert beat["worker"].command == "celery -A shop.celery:app worker --loglevel INFO"


def test_explain_gives_file_and_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "factory-fastapi", repo)
    code, out, err = run("init", str(repo), "--yes", "--explain")
    assert code == 0, out + err
    assert "services.api.command = uvicorn app.main:app" in out
    assert "<- app/main.py:14: FastAPI app `app` in app/main.py" in out
    assert "services.api.health = /api/health  <- app/routes.py:6" in out


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(">=18 <21", "20"), ("^20.11 || ^22", "22"), ("20.x", "20"), (">=24", "24"), ("*", "22")],
)
def test_node_version_from_engines(tmp_path: Path, spec: str, expected: str) -> None:
    from generator.detect.base import Repo
    from generator.detect.node import node_version

    found = node_version(Repo(tmp_path), tmp_path, {"engines": {"node": spec}}, None)
    assert found is not None and found[0] == expected


# --- issue 16: hostile repositories end in a note or a located error, never a hang -----------


def _hostile(tmp_path: Path, kind: str) -> Path:
    import os

    repo = tmp_path / kind
    repo.mkdir()
    (repo / "requirements.txt").write_text("fastapi\n")
    (repo / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    if kind == "fifo":
        os.mkfifo(repo / "package.json")
    elif kind == "dev-zero":
        (repo / "package.json").symlink_to("/dev/zero")
    elif kind == "outside-link":
        secret = tmp_path / "credentials"
        secret.write_text("AWS_SECRET_ACCESS_KEY=leaked\n")
        (repo / ".env.example").symlink_to(secret)
    elif kind == "deep-pyproject":
        (repo / "pyproject.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    elif kind == "wrong-types":
        (repo / "web").mkdir()
        (repo / "web" / "package.json").write_text(
            '{"name": 5, "scripts": ["start"], "dependencies": "express", "engines": {"node": 20},'
            ' "workspaces": {"packages": [1, null]}, "prisma": "x", "main": ["a"]}'
        )
    elif kind == "absolute-workspaces":
        (repo / "package.json").write_text(
            '{"name": "w", "workspaces": ["/etc", "../outside", "C:\\\\x", "apps/*"]}'
        )
    elif kind == "link-loop":
        (repo / "Procfile").symlink_to(repo / "Procfile")
    elif kind == "binary":
        (repo / "Dockerfile").write_bytes(b"\x00\xff\xfeCMD x")
    return repo


HOSTILE = [
    "fifo",
    "dev-zero",
    "outside-link",
    "deep-pyproject",
    "wrong-types",
    "absolute-workspaces",
    "link-loop",
    "binary",
]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_repository_is_a_note_not_a_hang_or_a_crash(tmp_path: Path, kind: str) -> None:
    import subprocess
    import sys
    import time

    repo = _hostile(tmp_path, kind)
    started = time.monotonic()
    # A real process with a timeout: a hang must fail the test, not the suite.
    result = subprocess.run(
        [sys.executable, "-m", "generator", "init", str(repo), "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert time.monotonic() - started < 60
    assert result.returncode in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    if result.returncode == 0:
        text = (repo / "shipforge.yaml").read_text()
        assert "leaked" not in text and "AWS_SECRET_ACCESS_KEY" not in text
        if kind in ("fifo", "dev-zero", "outside-link", "link-loop", "binary", "deep-pyproject"):
            assert "# note:" in text and "skipped" in text


def test_platform_files_fly_render_entrypoint_and_uv_workspace(tmp_path: Path) -> None:
    fly = services(init(tmp_path, "fly-fastify", "--yes"))
    assert (fly["web"].port, fly["web"].health, fly["web"].release) == (
        8080,
        "/up",
        "node scripts/migrate.js",
    )
    assert fly["alerts"].command == "node alerts.js --queue=high" and not fly["alerts"].web
    render = services(init(tmp_path, "render-python", "--yes"))
    assert render["portal"].health == "/ready"
    assert render["portal"].release == "python manage.py migrate"
    assert render["mailer"].path == "portal"
    # An ENTRYPOINT script without CMD: its exec line runs, its migration is the release.
    script = services(init(tmp_path, "entrypoint-script", "--yes"))["web"]
    assert script.argv[:3] == ("gunicorn", "-b", ":5000") and script.release == "flask db upgrade"
    # A uv workspace member builds from the root (where uv.lock is) and runs from its folder;
    # the root compose file's healthcheck gives the health route the code hides behind a prefix.
    (server,) = services(init(tmp_path, "uv-workspace-docker", "--yes")).values()
    assert (server.path, server.working_dir, server.package_manager) == (".", "server", "uv")
    assert (server.port, server.health) == (8000, "/v1/ok")
    assert server.release == "alembic upgrade head"


def test_shell_only_syntax_is_flagged_and_redirections_dropped() -> None:
    from generator.detect.evidence import runnable

    assert runnable("node x.js > /dev/null 2>&1").command == "node x.js"
    assert runnable("locust --host=http://${FRONTEND_ADDR} -u 10").shell
    assert not runnable("gunicorn app:app --bind 0.0.0.0:$PORT").shell
    assert not runnable("python -c 'print($X)'").shell, "single quotes: no expansion"


@pytest.mark.parametrize(
    ("line", "command", "release", "env", "working_dir"),
    [
        (
            "flask db upgrade; flask translate compile; gunicorn app:app",
            "gunicorn app:app",
            "flask db upgrade",
            {},
            "",
        ),
        ("A=1 B='x y' celery -A t worker", "celery -A t worker", "", {"A": "1", "B": "x y"}, ""),
        ("cd src && exec uvicorn main:app", "uvicorn main:app", "", {}, "src"),
        (
            'sh -c "alembic upgrade head && uvicorn m:app"',
            "uvicorn m:app",
            "alembic upgrade head",
            {},
            "",
        ),
        (
            "poetry run alembic upgrade head && poetry run uvicorn a:b",
            "uvicorn a:b",
            "alembic upgrade head",
            {},
            "",
        ),
        ("python -c 'print(1); print(2)'", "python -c 'print(1); print(2)'", "", {}, ""),
    ],
)
def test_shell_lines_become_what_runs_without_a_shell(
    line: str, command: str, release: str, env: dict[str, str], working_dir: str
) -> None:
    from generator.detect.evidence import runnable

    split = runnable(line)
    assert (split.command, split.release, split.working_dir) == (command, release, working_dir)
    assert split.env == env


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("JWT_SECRET", True),
        ("STRIPE_SECRET_KEY", True),
        ("SENTRY_DSN", True),
        ("NEXT_PUBLIC_STRIPE_KEY", False),
        ("VITE_API_TOKEN", False),
        ("JWT_RESET_PASSWORD_EXPIRATION_MINUTES", False),
        ("SMTP_PASSWORD", True),
        ("LOG_LEVEL", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    from generator.detect.base import is_secret_name

    assert is_secret_name(name) is secret


def test_dockerfile_in_docker_folder_multi_stage_and_mounted_routes(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "docker-folder-django", "--yes")
    (web,) = services(descriptor).values()
    # docker/docker-compose.yml builds the root with docker/Dockerfile; its final stage copies
    # /opt/tracker from the builder, which copied the repository there.
    assert (web.command, web.port, web.version) == ("uwsgi docker/uwsgi.ini", 8800, "3.13")
    # `status/` is mounted under `api/v2/` by include(): its path is not claimed.
    assert yaml_services(descriptor)["web"]["health"] is None
    standalone = init(tmp_path, "next-standalone", "--yes")
    (next_web,) = services(standalone).values()
    assert next_web.command == "npm run start", "server.js exists only in the builder's output"
    assert next_web.health == "/api/heartbeat"
    assert "runs files its own build stage lays out" in standalone.read_text()


def test_a_router_mounted_under_a_prefix_gives_no_health_route(tmp_path: Path) -> None:
    from generator.detect import detect

    (tmp_path / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "utils.py").write_text(
        "from fastapi import APIRouter\n\nrouter = APIRouter(prefix='/utils')\n\n\n"
        "@router.get('/health-check/')\ndef check() -> bool:\n    return True\n"
    )
    (tmp_path / "app" / "ping.py").write_text(
        "from fastapi import APIRouter\n\nrouter = APIRouter()\n\n\n"
        "@router.get('/ping')\ndef ping() -> str:\n    return 'pong'\n"
    )
    (tmp_path / "app" / "main.py").write_text(
        "from fastapi import APIRouter, FastAPI\n\nfrom app import ping, utils\n\n"
        "api = APIRouter()\napi.include_router(utils.router)\n\n\n"
        "def create() -> FastAPI:\n    application = FastAPI()\n"
        "    application.include_router(api, prefix='/api/v1')\n"
        "    application.include_router(ping.router)\n    return application\n\n\n"
        "app = create()\n"
    )
    (service,) = detect(tmp_path).services
    # /utils/health-check/ really answers at /api/v1/utils/health-check/: not claimed;
    # ping.router is mounted on the app without a prefix: /ping is where it says.
    assert service.health == "/ping"
    (tmp_path / "app" / "ping.py").unlink()
    (tmp_path / "app" / "main.py").write_text(
        (tmp_path / "app" / "main.py")
        .read_text()
        .replace("ping, ", "")
        .replace("    application.include_router(ping.router)\n", "")
    )
    (service,) = detect(tmp_path).services
    assert service.health is None
