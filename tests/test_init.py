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
    # The port is not in the code: the default is taken and said so in the file.
    assert "port: 8000  # shipforge init default" in text
    assert "# FastAPI app `app` in app/main.py" in text


def test_the_result_generates(tmp_path: Path) -> None:
    descriptor = init(tmp_path, "fastapi-asyncpg-redis-alembic", "--yes")
    # The repository's own .env.example is the user's: generate refuses to replace it.
    code, _, err = run("generate", str(descriptor))
    assert code == 1 and ".env.example: refusing to overwrite" in err
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
    assert "shipforge init default" not in descriptor.read_text()


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
    assert 'command: "python -m app"  # shipforge init default (no start command found)' in text


def test_without_yes_it_asks_what_it_cannot_detect(tmp_path: Path) -> None:
    # Prompts in order: command, port (empty for a worker), then health for a web service.
    descriptor = init(tmp_path, "unknown-script", stdin="python run_me.py\nnot-a-port\n8081\n/up\n")
    (service,) = services(descriptor).values()
    assert (service.command, service.port, service.health) == ("python run_me.py", 8081, "/up")
    assert "shipforge init default" not in descriptor.read_text()


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
    [(">=3.10,<3.12", "3.11"), ("^3.9", ""), ("==3.10.*", "3.10"), ("~=3.13", "3.13")],
)
def test_python_version_from_specifiers(tmp_path: Path, spec: str, expected: str) -> None:
    from generator.detect import _python_version

    data: dict[str, Any] = {"project": {"requires-python": spec}}
    assert _python_version(tmp_path, tmp_path, data)[0] == expected
