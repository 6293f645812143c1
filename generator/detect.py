"""Detect what a repository is, for `shipforge init`: services, runtimes, commands, datastores.

Everything here reads files and returns data; the CLI asks the questions detection could not
answer and `render_descriptor` writes the commented shipforge.yaml. Each detected value carries
the evidence it came from, which becomes a comment in the file, so a reviewer can check it.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from generator.formats import comment, yaml_str

# Folders never searched for projects or code.
SKIPPED_DIRS = {
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "env",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
    "build",
    ".next",
    "site-packages",
    ".shipforge",
    "docs",
    "doc",
    "tests",
    "test",
    "examples",
    "fixtures",
}
MAX_DEPTH = 3
MAX_SOURCE_FILES = 3000
MAX_SOURCE_BYTES = 400_000

# The documented defaults of `shipforge init --yes` for what detection cannot find.
DEFAULT_PORTS = {"python": 8000, "node": 3000}
DEFAULT_HEALTH = "/healthz"
DEFAULT_COMMANDS = {"python": "python -m app", "node": "npm start"}
DEFAULT_PROJECT = "app"
DATASTORE_VERSIONS = {"postgres": "16", "redis": "7"}

PYTHON_POSTGRES = {"psycopg", "psycopg2", "psycopg2-binary", "psycopg-binary", "asyncpg", "pg8000"}
PYTHON_ORMS = {"sqlalchemy", "sqlmodel", "databases", "tortoise-orm", "peewee", "django"}
PYTHON_REDIS = {"redis", "aioredis", "hiredis", "rq", "arq", "django-redis", "celery-redis"}
NODE_POSTGRES = {"pg", "postgres", "pg-promise", "@vercel/postgres"}
NODE_REDIS = {"redis", "ioredis", "bullmq", "bull", "bee-queue"}
NODE_WEB = {
    "express",
    "fastify",
    "koa",
    "hono",
    "@nestjs/core",
    "@hapi/hapi",
    "next",
    "nuxt",
    "@remix-run/serve",
    "restify",
}
_POSTGRES_URL = re.compile(r"postgres(?:ql)?(?:\+\w+)?://")
_REDIS_URL = re.compile(r"rediss?://")
_HEALTH = re.compile(r"^/(?:api/)?(?:_?health(?:z|check)?|livez|readyz|ready|live|ping|status)\b")
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|_KEY$|^KEY$|DSN|CREDENTIALS)")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=")


@dataclass
class Service:
    """A service as detected: each value is None when detection could not tell."""

    name: str
    runtime: str
    path: str = "."
    package_manager: str = ""
    version: str = ""
    command: str | None = None
    web: bool | None = None
    port: int | None = None
    health: str | None = None
    build: str = ""
    default_command: str = ""
    release: str = ""
    uses: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Detection:
    """What `shipforge init` found in a repository."""

    root: Path
    name: str | None = None
    name_why: str = ""
    services: list[Service] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def datastores(self) -> list[str]:
        return [d for d in ("postgres", "redis") if any(d in s.uses for s in self.services)]


@dataclass(frozen=True)
class Question:
    """A value detection could not find: asked interactively, or defaulted with --yes."""

    key: str
    prompt: str
    default: str
    why: str
    # Asked only when the answer to this other question is not empty (health needs a port).
    needs: str = ""


# --- small readers -------------------------------------------------------------------------


def _read(path: Path, limit: int = MAX_SOURCE_BYTES) -> str:
    try:
        if path.stat().st_size > limit:
            return ""
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError:
        return {}


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read(path))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _normalize(requirement: str) -> tuple[str, set[str]]:
    """A requirement's normalized name and extras, e.g. 'Celery[Redis]>=5' -> celery, {redis}."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", requirement)
    if not match:
        return "", set()
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    extras = {e.strip().lower() for e in (match.group(2) or "").split(",") if e.strip()}
    return name, extras


def dns_label(text: str) -> str:
    """The closest valid shipforge name (a lowercase DNS label), or "" when none is close."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower().rsplit("/", 1)[-1]).strip("-")
    label = re.sub(r"^[^a-z]+", "", label)[:40].rstrip("-")
    return label


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Source files under folder (not tests, not vendored), shallow ones first."""
    found: list[Path] = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(suffixes) and not name.startswith("test_"):
                found.append(Path(current) / name)
        if len(found) > MAX_SOURCE_FILES:
            break
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), str(p)))


def _posix(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


# --- versions ------------------------------------------------------------------------------


def _allowed(spec: str, candidate: tuple[int, int]) -> bool:
    """Whether a Python major.minor satisfies a simple version specifier (PEP 440 or poetry)."""
    for clause in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", spec.strip()):
        match = re.match(r"^(\^|~=|~|==|!=|>=|<=|>|<)?\s*(\d+)(?:\.(\d+|\*))?", clause)
        if not match:
            continue
        op = match.group(1) or "=="
        wanted = (
            int(match.group(2)),
            int(match.group(3)) if (match.group(3) or "*") != "*" else -1,
        )
        if wanted[1] == -1:
            ok = candidate[0] == wanted[0] if op in ("==", "^", "~", "~=") else True
        elif op in ("^",):
            ok = candidate >= wanted and candidate[0] == wanted[0]
        elif op in ("~", "~=", "=="):
            ok = candidate == wanted or (
                op == "~=" and candidate > wanted and candidate[0] == wanted[0]
            )
        else:
            ok = {
                ">=": candidate >= wanted,
                "<=": candidate <= wanted,
                ">": candidate > wanted,
                "<": candidate < wanted,
                "!=": candidate != wanted,
            }[op]
        if not ok:
            return False
    return True


def _python_version(folder: Path, root: Path, pyproject: dict[str, Any]) -> tuple[str, str]:
    for place in (folder, root):
        pinned = _read(place / ".python-version").strip().splitlines()
        if pinned and (m := re.match(r"^(?:python-?)?(\d+\.\d+)", pinned[0].strip())):
            return m.group(1), f"{_posix(place / '.python-version', root)}"
    spec = pyproject.get("project", {}).get("requires-python") or (
        pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {}).get("python")
    )
    if isinstance(spec, str) and not _allowed(spec, (3, 12)):
        for minor in (13, 11, 10, 9):
            if _allowed(spec, (3, minor)):
                return f"3.{minor}", f"requires-python {spec}"
    return "", ""


def _node_version(folder: Path, root: Path, package: dict[str, Any]) -> tuple[str, str]:
    for place in (folder, root):
        for name in (".nvmrc", ".node-version"):
            text = _read(place / name).strip()
            if m := re.match(r"^v?(\d+)", text):
                return m.group(1), _posix(place / name, root)
    engines = package.get("engines", {})
    spec = engines.get("node") if isinstance(engines, dict) else None
    if isinstance(spec, str) and (m := re.match(r"^\s*(?:\^|~|=)?v?(\d+)(?:\.x|\.\d+)*\s*$", spec)):
        return m.group(1), f"engines.node {spec}"
    if isinstance(spec, str) and (m := re.search(r"<\s*(\d+)", spec)) and int(m.group(1)) <= 22:
        return str(int(m.group(1)) - 1), f"engines.node {spec}"
    return "", ""


# --- Python --------------------------------------------------------------------------------


def _python_dependencies(folder: Path) -> dict[str, set[str]]:
    """Every runtime dependency of a Python project: normalized name -> extras."""
    deps: dict[str, set[str]] = {}

    def add(requirement: str) -> None:
        name, extras = _normalize(requirement)
        if name and name != "python":
            deps.setdefault(name, set()).update(extras)

    pyproject = _toml(folder / "pyproject.toml")
    for requirement in pyproject.get("project", {}).get("dependencies", []) or []:
        add(str(requirement))
    poetry = pyproject.get("tool", {}).get("poetry", {})
    for name, spec in (poetry.get("dependencies") or {}).items():
        extras = spec.get("extras", []) if isinstance(spec, dict) else []
        add(f"{name}[{','.join(extras)}]" if extras else name)
    seen: set[Path] = set()

    def requirements(path: Path) -> None:
        if path in seen or not path.is_file():
            return
        seen.add(path)
        for raw in _read(path).splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith(("-r ", "--requirement ")):
                requirements(path.parent / line.split(None, 1)[1])
            elif line and not line.startswith("-"):
                add(line)

    requirements(folder / "requirements.txt")
    pipfile = _toml(folder / "Pipfile")
    for name in pipfile.get("packages", {}) or {}:
        add(name)
    return deps


def _python_manager(folder: Path, pyproject: dict[str, Any], service: Service) -> None:
    if (folder / "uv.lock").is_file():
        service.package_manager, service.why["package_manager"] = "uv", "uv.lock"
    elif (folder / "poetry.lock").is_file() or "poetry" in pyproject.get("tool", {}):
        service.package_manager = "poetry"
        service.why["package_manager"] = (
            "poetry.lock" if (folder / "poetry.lock").is_file() else "[tool.poetry]"
        )
        if not (folder / "poetry.lock").is_file():
            service.warnings.append("the image installs from poetry.lock: run `poetry lock`")
    else:
        service.package_manager = "pip"
        if (folder / "requirements.txt").is_file():
            service.why["package_manager"] = "requirements.txt"
        else:
            source = "Pipfile" if (folder / "Pipfile").is_file() else "pyproject.toml"
            service.why["package_manager"] = f"{source} without a lockfile"
            service.warnings.append(
                "the image installs requirements.txt, which is missing: export one "
                "(`pipenv requirements > requirements.txt` or `uv pip compile pyproject.toml "
                "-o requirements.txt`), or use uv with a uv.lock"
            )


_ASGI = re.compile(
    r"^(\w+)\s*(?::[^=\n]+)?=\s*(?:fastapi\.|starlette\.applications\.)?(FastAPI|Starlette)\s*\(",
    re.M,
)
_FLASK = re.compile(r"^(\w+)\s*(?::[^=\n]+)?=\s*(?:flask\.)?Flask\s*\(", re.M)
_FACTORY = re.compile(r"^def\s+(create_app|make_app|get_app|app_factory)\s*\(", re.M)
_CELERY = re.compile(r"^(\w+)\s*(?::[^=\n]+)?=\s*(?:celery\.)?Celery\s*\(", re.M)
_PY_ROUTE = re.compile(
    r"""@\w+\.(?:get|head|api_route|route)\(\s*["'](/[^"']*)["']|\bpath\(\s*["']([^"']*)["']"""
)
# Where Python code shows its port, most explicit first; datastore ports are never the web port.
_PY_PORTS = (
    re.compile(r"""--port[= ](\d{2,5})\b|--bind[= ]\S*:(\d{2,5})\b|-b\s+\S*:(\d{2,5})\b"""),
    re.compile(
        r"""\b(?:uvicorn|app|application|web|server)\.run\([^)\n]*\bport\s*=\s*(\d{2,5})\b"""
    ),
    re.compile(r"""["']PORT["']\s*,\s*["']?(\d{2,5})\b"""),
    re.compile(r"""^\s*EXPOSE\s+(\d{2,5})\b""", re.M),
)
_NOT_WEB_PORTS = {5432, 6379, 3306, 27017, 5672, 11211}


def _port(
    patterns: tuple[re.Pattern[str], ...], texts: list[tuple[str, str]]
) -> tuple[int, str] | None:
    """The first port the texts show, by pattern priority, with where it was seen."""
    for pattern in patterns:
        for text, where in texts:
            for match in pattern.finditer(text):
                value = int(next(g for g in match.groups() if g))
                if 0 < value < 65536 and value not in _NOT_WEB_PORTS:
                    return value, where
    return None


def _module(file: Path, folder: Path) -> tuple[str, str]:
    """The import path of a file and the --app-dir it needs (src layout), from the service root."""
    parts = list(file.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if (
        len(parts) > 2
        and parts[0] == "src"
        and (folder / "src" / parts[1] / "__init__.py").is_file()
    ):
        return ".".join(parts[1:]), "src"
    return ".".join(parts), ""


def _app_or_factory(
    sources: dict[Path, str], folder: Path, pattern: re.Pattern[str], frameworks: tuple[str, ...]
) -> tuple[tuple[Path, str] | None, tuple[Path, str] | None]:
    """The best module-level app assignment, else the best app factory of these frameworks."""
    apps = [(f, m.group(1)) for f, t in sources.items() for m in pattern.finditer(t)]
    found = _best(apps, folder)
    if found:
        return found, None
    factories = [
        (f, m.group(1))
        for f, t in sources.items()
        if any(word in t.lower() for word in frameworks)
        for m in _FACTORY.finditer(t)
    ]
    return None, _best(factories, folder)


def _best(matches: list[tuple[Path, str]], folder: Path) -> tuple[Path, str] | None:
    preferred = ("main.py", "app.py", "asgi.py", "wsgi.py", "server.py", "api.py", "__init__.py")
    if not matches:
        return None
    return min(
        matches,
        key=lambda m: (
            m[0].name not in preferred,
            len(m[0].relative_to(folder).parts),
            str(m[0]),
        ),
    )


def _health_route(routes: list[tuple[str, str]]) -> tuple[str, str] | None:
    for route, where in routes:
        path = route if route.startswith("/") else "/" + route
        if _HEALTH.match(path):
            return path.rstrip("/") if path != "/" and not route.endswith("/") else path, where
    return None


def detect_python(folder: Path, root: Path, name: str) -> list[Service]:
    """The services of one Python project folder (a web app, a Celery worker, Procfile lines)."""
    pyproject = _toml(folder / "pyproject.toml")
    deps = _python_dependencies(folder)
    path = _posix(folder, root) if folder != root else "."
    base = Service(name=name, runtime="python", path=path)
    _python_manager(folder, pyproject, base)
    version, why = _python_version(folder, root, pyproject)
    if version:
        base.version, base.why["version"] = version, why

    sources = {file: _read(file) for file in _files(folder, (".py",))}
    texts = "\n".join(sources.values())
    config_text = "\n".join(
        _read(folder / n)
        for n in (
            ".env.example",
            ".env.sample",
            "alembic.ini",
            "docker-compose.yml",
            "compose.yaml",
            "settings.py",
        )
    )

    # Datastores from dependencies, and SQLAlchemy-style ORMs only with a Postgres URL in sight.
    uses: list[str] = []
    why_uses: list[str] = []
    drivers = sorted(PYTHON_POSTGRES & set(deps))
    orm = sorted(PYTHON_ORMS & set(deps))
    if drivers:
        uses.append("postgres")
        why_uses.append(", ".join(drivers))
    elif orm and (
        _POSTGRES_URL.search(texts + config_text) or "django.db.backends.postgresql" in texts
    ):
        uses.append("postgres")
        why_uses.append(f"{orm[0]} with a PostgreSQL URL")
    redis = sorted(
        {d for d in deps if d in PYTHON_REDIS}
        | {f"{d}[redis]" for d, extras in deps.items() if "redis" in extras}
    )
    if redis:
        uses.append("redis")
        why_uses.append(", ".join(redis))
    elif "celery" in deps and _REDIS_URL.search(texts + config_text):
        uses.append("redis")
        why_uses.append("celery with a redis:// broker")
    base.uses = uses
    if uses:
        base.why["uses"] = "; ".join(why_uses)

    web = _copy(base)
    services: list[Service] = []
    procfile = _procfile(folder)
    routes = [
        (m.group(1) or m.group(2), _posix(file, root))
        for file, text in sources.items()
        for m in _PY_ROUTE.finditer(text)
    ]
    port_hint = _port(
        _PY_PORTS,
        [(t, _posix(f, root)) for f, t in sources.items()]
        + [(_read(folder / n), _posix(folder / n, root)) for n in ("Dockerfile", "Procfile")],
    )

    if "web" in procfile:
        # Heroku passes the port in $PORT; no shell expands it here, so it becomes the port.
        web.command = re.sub(r"\$\{?PORT\}?\b", "{port}", procfile["web"])
        web.web = True
        web.why["command"] = "Procfile web:"
    elif {"fastapi", "starlette"} & set(deps):
        framework = "FastAPI" if "fastapi" in deps else "Starlette"
        found, factory = _app_or_factory(sources, folder, _ASGI, ("fastapi", "starlette"))
        web.web = True
        web.default_command = "uvicorn main:app --host 0.0.0.0 --port {port}"
        if found or factory:
            file, variable = found or factory  # type: ignore[misc]
            module, app_dir = _module(file, folder)
            flags = (" --factory" if factory else "") + (f" --app-dir {app_dir}" if app_dir else "")
            web.command = f"uvicorn {module}:{variable}{flags} --host 0.0.0.0 --port {{port}}"
            web.why["command"] = (
                f"{framework} app `{variable}` in {_posix(file, root)}"
                if found
                else f"{framework} app factory `{variable}()` in {_posix(file, root)}"
            )
            if "uvicorn" not in deps:
                web.warnings.append("the command runs uvicorn: add it to your dependencies")
    elif "flask" in deps:
        found, factory = _app_or_factory(sources, folder, _FLASK, ("flask",))
        web.web = True
        web.default_command = "gunicorn app:app --bind 0.0.0.0:{port}"
        if found or factory:
            file, variable = found or factory  # type: ignore[misc]
            module, app_dir = _module(file, folder)
            target = f"{module}:{variable}()" if factory else f"{module}:{variable}"
            chdir = f" --chdir {app_dir}" if app_dir else ""
            web.command = f"gunicorn {target}{chdir} --bind 0.0.0.0:{{port}}"
            web.why["command"] = f"Flask app `{variable}` in {_posix(file, root)}"
            if "gunicorn" not in deps:
                web.warnings.append("the command runs gunicorn: add it to your dependencies")
    elif "django" in deps:
        web.web = True
        web.default_command = "gunicorn config.wsgi:application --bind 0.0.0.0:{port}"
        wsgi = [f for f in sources if f.name == "wsgi.py" and "get_wsgi_application" in sources[f]]
        if wsgi:
            file = min(wsgi, key=lambda f: len(f.parts))
            module, app_dir = _module(file, folder)
            if not app_dir and (manage := _find_manage(folder)) and manage.parent != folder:
                app_dir = _posix(manage.parent, folder)
                module = ".".join(file.relative_to(manage.parent).with_suffix("").parts)
            chdir = f" --chdir {app_dir}" if app_dir else ""
            web.command = f"gunicorn {module}:application{chdir} --bind 0.0.0.0:{{port}}"
            web.why["command"] = f"Django WSGI application in {_posix(file, root)}"
            if "gunicorn" not in deps:
                web.warnings.append("the command runs gunicorn: add it to your dependencies")

    if web.web:
        if port_hint:
            web.port, web.why["port"] = port_hint[0], f"port {port_hint[0]} in {port_hint[1]}"
        health = _health_route(routes)
        if health:
            web.health, web.why["health"] = health[0], f"route in {health[1]}"
        if web.command and web.port is not None:
            web.command = web.command.replace("{port}", str(web.port))

    # Migrations: alembic, Django, or a Procfile release line, on the service that owns them.
    release = procfile.get("release", "")
    release_why = "Procfile release:" if release else ""
    if not release and "alembic" in deps:
        ini = sorted(folder.rglob("alembic.ini"), key=lambda p: len(p.parts))
        ini = [p for p in ini if not (set(p.relative_to(folder).parts) & SKIPPED_DIRS)]
        if ini:
            where = _posix(ini[0], folder)
            release = (
                "alembic upgrade head"
                if where == "alembic.ini"
                else f"alembic -c {where} upgrade head"
            )
            release_why = f"alembic dependency and {_posix(ini[0], root)}"
    if not release and "django" in deps and (manage := _find_manage(folder)):
        where = _posix(manage, folder)
        release = f"python {where} migrate"
        release_why = f"Django {_posix(manage, root)}"

    if web.web or web.command:
        services.append(web)
    celery = [(f, m.group(1)) for f, t in sources.items() for m in _CELERY.finditer(t)]
    workers = {k: v for k, v in procfile.items() if k not in ("web", "release")}
    for key, command in sorted(workers.items()):
        worker = _copy(base)
        worker.name = dns_label(key) or "worker"
        worker.command, worker.web = command, False
        worker.why["command"] = f"Procfile {key}:"
        services.append(worker)
    if not workers and "celery" in deps and (found := _best(celery, folder)):
        module, _ = _module(found[0], folder)
        worker = _copy(base)
        worker.name = "worker"
        worker.command = f"celery -A {module}:{found[1]} worker --loglevel INFO"
        worker.web = False
        worker.why["command"] = f"Celery app `{found[1]}` in {_posix(found[0], root)}"
        services.append(worker)
    if not services:
        # No framework found: a process whose command is asked for (or defaulted).
        main = next((f for f in sources if f.name == "__main__.py"), None)
        fallback = _copy(base)
        fallback.name = name
        if main is not None:
            module, _ = _module(main.parent / "__init__.py", folder)
            fallback.command = f"python -m {module}"
            fallback.why["command"] = f"{_posix(main, root)}"
        services.append(fallback)
    if release:
        owner = next((s for s in services if s.web and "postgres" in s.uses), services[0])
        owner.release, owner.why["release"] = release, release_why
    return services


def _copy(base: Service) -> Service:
    """Another service of the same project: same runtime, path, manager and datastores."""
    return replace(base, uses=list(base.uses), why=dict(base.why), warnings=list(base.warnings))


def _find_manage(folder: Path) -> Path | None:
    candidates = [
        p
        for p in folder.rglob("manage.py")
        if not (set(p.relative_to(folder).parts) & SKIPPED_DIRS)
        and len(p.relative_to(folder).parts) <= 3
    ]
    return min(candidates, key=lambda p: len(p.parts)) if candidates else None


def _procfile(folder: Path) -> dict[str, str]:
    """Heroku-style process types: the commands a project already declares."""
    processes: dict[str, str] = {}
    for line in _read(folder / "Procfile").splitlines():
        if m := re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip()):
            processes[m.group(1)] = m.group(2).strip()
    return processes


# --- Node ----------------------------------------------------------------------------------

_NODE_ROUTE = re.compile(
    r"""\b(?:app|router|server|fastify|api)\.(?:get|all|head|route)\(\s*["'`](/[^"'`]*)["'`]"""
)
_NODE_PORTS = (
    re.compile(r"""(?:-p|--port)[= ]+(\d{2,5})\b"""),
    re.compile(r"""\.listen\(\s*(\d{2,5})\b"""),
    re.compile(r"""PORT\s*(?:\|\||\?\?)\s*["']?(\d{2,5})\b"""),
    re.compile(r"""\bport\s*[:=]\s*["']?(\d{2,5})\b"""),
)


def _node_manager(folder: Path, root: Path, package: dict[str, Any]) -> tuple[str, str]:
    for place in dict.fromkeys((folder, root)):
        for lockfile, manager in (
            ("pnpm-lock.yaml", "pnpm"),
            ("yarn.lock", "yarn"),
            ("package-lock.json", "npm"),
        ):
            if (place / lockfile).is_file():
                return manager, _posix(place / lockfile, root)
    declared = str(package.get("packageManager", ""))
    for manager in ("pnpm", "yarn", "npm"):
        if declared.startswith(manager + "@"):
            return manager, f'packageManager "{declared}"'
    return "npm", "no lockfile"


def _node_deps(package: dict[str, Any]) -> tuple[set[str], set[str]]:
    runtime = set((package.get("dependencies") or {}).keys())
    dev = set((package.get("devDependencies") or {}).keys())
    return runtime, dev


def detect_node(folder: Path, root: Path, name: str, build_root: Path | None = None) -> Service:
    """One Node service from a package folder; build_root is a workspace root when it has one."""
    package = _json_file(folder / "package.json")
    scripts = package.get("scripts") or {}
    scripts = scripts if isinstance(scripts, dict) else {}
    runtime_deps, dev_deps = _node_deps(package)
    deps = runtime_deps | dev_deps
    context = build_root or folder
    service = Service(
        name=name, runtime="node", path=_posix(context, root) if context != root else "."
    )
    manager, manager_why = _node_manager(context, root, _json_file(context / "package.json"))
    service.package_manager, service.why["package_manager"] = manager, manager_why
    if manager_why == "no lockfile":
        service.warnings.append("the image installs from a lockfile: commit package-lock.json")
    version, why = _node_version(folder, root, package)
    if version:
        service.version, service.why["version"] = version, why

    prefix = _posix(folder, context) if folder != context else ""
    start = str(scripts.get("start", ""))
    if start:
        simple = re.match(r"^node\s+(?!-)(\S+)(.*)$", start)
        if simple and not re.search(r"[;&|<>$`]", start):
            script = simple.group(1)
            service.command = f"node {prefix + '/' if prefix else ''}{script}{simple.group(2)}"
        else:
            service.command = f"npm --prefix {prefix} run start" if prefix else "npm run start"
        service.why["command"] = f"start script of {_posix(folder / 'package.json', root)}"
    elif isinstance(package.get("main"), str) and (folder / package["main"]).is_file():
        service.command = f"node {prefix + '/' if prefix else ''}{package['main']}"
        service.why["command"] = f"main of {_posix(folder / 'package.json', root)}"
    elif (folder / "server.js").is_file():
        service.command = f"node {prefix + '/' if prefix else ''}server.js"
        service.why["command"] = f"{_posix(folder / 'server.js', root)}"

    build_script = scripts.get("build")
    workspace_scripts = _json_file(context / "package.json").get("scripts") or {}
    if context != folder and isinstance(workspace_scripts, dict) and workspace_scripts.get("build"):
        # The workspace builds as a whole: every member shares one image.
        service.build = f"{manager} run build"
        service.why["build"] = "build script of the workspace package.json"
    elif build_script and context == folder:
        service.build = f"{manager} run build"
        service.why["build"] = "build script"
    elif build_script:
        service.build = {
            "pnpm": f"pnpm --filter {package.get('name') or prefix} run build",
            "npm": f"npm --prefix {prefix} run build",
            "yarn": f"yarn --cwd {prefix} run build",
        }[manager]
        service.why["build"] = f"build script of {_posix(folder / 'package.json', root)}"

    sources = {f: _read(f) for f in _files(folder, (".js", ".mjs", ".cjs", ".ts", ".mts"))}
    texts = "\n".join(sources.values())
    framework = sorted(NODE_WEB & deps)
    listens = ".listen(" in texts
    if framework or listens or "next start" in start:
        service.web = True
        port = _port(
            _NODE_PORTS,
            [(start, "the start script")] + [(t, _posix(f, root)) for f, t in sources.items()],
        )
        if port:
            service.port, service.why["port"] = port[0], f"port {port[0]} in {port[1]}"
        elif "next" in deps:
            service.port, service.why["port"] = 3000, "Next.js default port"
        routes = [
            (m.group(1), _posix(f, root))
            for f, t in sources.items()
            for m in _NODE_ROUTE.finditer(t)
        ]
        for file in sources:
            relative = file.relative_to(folder).as_posix()
            if m := re.match(
                r"^(?:src/)?(?:app|pages)(/api/[\w/-]+?)(?:/route|/index)?\.(?:ts|js|mjs)$",
                relative,
            ):
                routes.append((m.group(1), _posix(file, root)))
        health = _health_route(routes)
        if health:
            service.health, service.why["health"] = health[0], f"route in {health[1]}"
    elif {"bullmq", "bull", "bee-queue"} & deps:
        service.web = False

    uses, why_uses = [], []
    postgres = sorted(NODE_POSTGRES & deps)
    schema = folder / "prisma" / "schema.prisma"
    prisma = {"prisma", "@prisma/client"} & deps
    if prisma and re.search(r'provider\s*=\s*"postgres(?:ql)?"', _read(schema)):
        postgres.append("prisma (postgresql)")
    if postgres:
        uses.append("postgres")
        why_uses.append(", ".join(postgres))
    redis = sorted(NODE_REDIS & deps)
    if redis:
        uses.append("redis")
        why_uses.append(", ".join(redis))
    service.uses = uses
    if uses:
        service.why["uses"] = "; ".join(why_uses)
    if prisma and (folder / "prisma" / "migrations").is_dir():
        where = f" --schema {_posix(schema, context)}" if context != folder else ""
        service.release = f"npx prisma migrate deploy{where}"
        service.why["release"] = f"prisma migrations in {_posix(folder / 'prisma', root)}"
        if "prisma" not in runtime_deps:
            service.warnings.append(
                "the release runs the prisma CLI, a devDependency that production images "
                "prune: move `prisma` to dependencies"
            )
    return service


def _workspace_members(root: Path) -> list[Path] | None:
    """The package folders of a pnpm, npm or yarn workspace at root, or None without one."""
    patterns: list[str] = []
    pnpm = root / "pnpm-workspace.yaml"
    if pnpm.is_file():
        import yaml

        try:
            data = yaml.safe_load(_read(pnpm)) or {}
        except yaml.YAMLError:
            data = {}
        patterns = [str(p) for p in (data.get("packages") or []) if isinstance(p, str)]
    else:
        workspaces = _json_file(root / "package.json").get("workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        if not isinstance(workspaces, list):
            return None
        patterns = [str(p) for p in workspaces]
    members: list[Path] = []
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        for match in sorted(root.glob(pattern.rstrip("/"))):
            if (match / "package.json").is_file() and "node_modules" not in match.parts:
                members.append(match)
    excluded = {m for p in patterns if p.startswith("!") for m in root.glob(p[1:].rstrip("/"))}
    return [m for m in dict.fromkeys(members) if m not in excluded]


# --- the repository ------------------------------------------------------------------------


def _project_folders(root: Path) -> list[tuple[Path, str]]:
    """Folders holding a Python or Node project, at most MAX_DEPTH deep, outermost first."""
    found: list[tuple[Path, str]] = []
    for current, dirs, names in os.walk(root):
        here = Path(current)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(
            d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".") and depth < MAX_DEPTH
        )
        if {"pyproject.toml", "requirements.txt", "Pipfile", "setup.py"} & set(names):
            found.append((here, "python"))
        if "package.json" in names:
            found.append((here, "node"))
    return sorted(found, key=lambda f: (len(f[0].parts), str(f[0]), f[1]))


def detect(root: Path) -> Detection:
    """Everything `shipforge init` can tell about the repository at root."""
    root = root.resolve()
    detection = Detection(root=root)
    pyproject = _toml(root / "pyproject.toml")
    package = _json_file(root / "package.json")
    for candidate, source in (
        (pyproject.get("project", {}).get("name"), "pyproject.toml [project] name"),
        (pyproject.get("tool", {}).get("poetry", {}).get("name"), "[tool.poetry] name"),
        (package.get("name"), "package.json name"),
        (root.name, "folder name"),
    ):
        if isinstance(candidate, str) and (label := dns_label(candidate)):
            detection.name, detection.name_why = label, source
            break

    services: list[Service] = []
    # Folders whose services were found: nested projects of the same runtime belong to them.
    owners: list[tuple[Path, str]] = []
    members = _workspace_members(root)
    if members is not None:
        owners.append((root, "node"))
        for member in members:
            scripts = _json_file(member / "package.json").get("scripts") or {}
            if not (isinstance(scripts, dict) and scripts.get("start")):
                detection.notes.append(
                    f"{_posix(member, root)}: no start script (a library?): not a service"
                )
                continue
            services.append(detect_node(member, root, dns_label(member.name) or "app", root))
    for folder, kind in _project_folders(root):
        if any(kind == k and (folder == f or f in folder.parents) for f, k in owners):
            continue
        nested = folder != root
        name = (dns_label(folder.name) if nested else "") or "app"
        found = (
            detect_python(folder, root, name)
            if kind == "python"
            else [detect_node(folder, root, name)]
        )
        runnable = [s for s in found if s.command or s.web]
        if nested and not runnable:
            # Nothing runnable (docs, tooling, a library): not a service.
            detection.notes.append(f"{_posix(folder, root)}: no start command found: skipped")
            continue
        if not runnable and any(f != folder for f, _ in _project_folders(root)):
            # A root manifest with nothing runnable, in a repository of several projects:
            # the projects in the sub-folders are the services.
            detection.notes.append(f"{kind} project at the root: no start command found: skipped")
            continue
        owners.append((folder, kind))
        services.extend(found)
    if not services:
        # Nothing runnable anywhere: the outermost project is the service, its command asked.
        for folder, kind in _project_folders(root)[:1]:
            name = dns_label(folder.name) if folder != root else "app"
            services.extend(
                detect_python(folder, root, name or "app")
                if kind == "python"
                else [detect_node(folder, root, name or "app")]
            )
    _name_services(services)
    _detect_secrets(root, services)
    detection.services = services
    return detection


def _name_services(services: list[Service]) -> None:
    """Give single, anonymous services a name that says what they are, and make names unique."""
    for service in services:
        if service.name == "app" and len(services) > 0:
            if service.web and service.runtime == "python" and "uvicorn" in (service.command or ""):
                service.name = "api"
            elif service.web:
                service.name = "web"
            elif service.web is False:
                service.name = "worker"
    seen: dict[str, int] = {}
    for service in services:
        base = service.name or "app"
        if base in seen:
            seen[base] += 1
            service.name = f"{base[:37]}-{seen[base]}"
        else:
            seen[base] = 1


def _detect_secrets(root: Path, services: list[Service]) -> None:
    """Secret NAMES from the repository's own .env example (never a value)."""
    for name in (".env.example", ".env.sample", ".env.template"):
        text = _read(root / name)
        if not text:
            continue
        names = []
        for line in text.splitlines():
            if (m := _ENV_LINE.match(line)) and _SECRET_NAME.search(m.group(1)):
                names.append(m.group(1))
        for service in services:
            reserved = {"DATABASE_URL"} if "postgres" in service.uses else set()
            reserved |= {"REDIS_URL"} if "redis" in service.uses else set()
            service.secrets = sorted(set(names) - reserved)
            if service.secrets:
                service.why["secrets"] = f"secret names in {name}"
        return


# --- questions and the file ----------------------------------------------------------------


def questions(detection: Detection) -> list[Question]:
    """What detection could not find, each with the default `--yes` takes and why."""
    asked: list[Question] = []
    if not detection.name:
        asked.append(
            Question(
                "project.name",
                "Project name (lowercase letters, digits, -)",
                DEFAULT_PROJECT,
                "no usable project name found",
            )
        )
    for service in detection.services:
        where = f"services.{service.name}"
        if service.command is None:
            default = (service.default_command or DEFAULT_COMMANDS[service.runtime]).replace(
                "{port}", str(service.port or DEFAULT_PORTS[service.runtime])
            )
            asked.append(
                Question(
                    f"{where}.command",
                    f"Start command of {service.name}",
                    default,
                    "no start command found",
                )
            )
        if service.web is None and service.command is None:
            asked.append(
                Question(
                    f"{where}.port",
                    f"Port {service.name} listens on (empty for a worker)",
                    "",
                    "no web framework found: a worker (no port)",
                )
            )
        elif service.web and service.port is None:
            asked.append(
                Question(
                    f"{where}.port",
                    f"Port {service.name} listens on",
                    str(DEFAULT_PORTS[service.runtime]),
                    "the code does not show a port",
                )
            )
        unknown_kind = service.web is None and service.command is None
        if unknown_kind or (service.web and service.health is None):
            asked.append(
                Question(
                    f"{where}.health",
                    f"HTTP health path of {service.name}",
                    DEFAULT_HEALTH,
                    "no health route found: add one that answers 200",
                    # Whether it is a web service at all is asked as its port.
                    needs=f"{where}.port" if unknown_kind else "",
                )
            )
    return asked


def apply_answers(detection: Detection, answers: dict[str, str]) -> None:
    """Put the answered (or defaulted) values into the detection."""
    for key, value in answers.items():
        if key == "project.name":
            detection.name = dns_label(value) or DEFAULT_PROJECT
            continue
        _, name, attribute = key.split(".", 2)
        service = next(s for s in detection.services if s.name == name)
        if attribute == "command":
            service.command = value.strip()
        elif attribute == "port":
            service.port = int(value) if value.strip() else None
            service.web = service.port is not None
        elif attribute == "health":
            service.health = value.strip() if value.strip().startswith("/") else "/" + value.strip()
    for service in detection.services:
        if service.command and "{port}" in service.command:
            service.command = service.command.replace(
                "{port}", str(service.port or DEFAULT_PORTS[service.runtime])
            )


def render_descriptor(
    detection: Detection, schema: str, defaulted: dict[str, str] | None = None
) -> str:
    """The commented shipforge.yaml for a detection whose questions are all answered."""
    defaulted = defaulted or {}

    def note(key: str, why: str) -> str:
        if key in defaulted:
            return f"  # shipforge init default ({comment(defaulted[key])}): check it"
        return f"  # {comment(why)}" if why else ""

    lines = [
        f"# yaml-language-server: $schema={schema}",
        "# Written by `shipforge init` from what it found in this repository. Comments say where",
        "# each value came from; review them, then run `shipforge validate` and `shipforge generate`.",
        "version: 1",
        "project:",
        f"  name: {yaml_str(detection.name)}{note('project.name', detection.name_why)}",
        "services:",
    ]
    for service in detection.services:
        where = f"services.{service.name}"
        lines.append(f"  {service.name}:")
        for warning in service.warnings:
            lines.append(f"    # warning: {comment(warning)}")
        lines.append(f"    runtime: {yaml_str(service.runtime)}")
        if service.version:
            lines.append(
                f"    version: {yaml_str(service.version)}{note('', service.why.get('version', ''))}"
            )
        if service.path != ".":
            lines.append(f"    path: {yaml_str(service.path)}")
        lines.append(
            f"    package_manager: {yaml_str(service.package_manager)}"
            f"{note('', service.why.get('package_manager', ''))}"
        )
        if service.build:
            lines.append(
                f"    build: {yaml_str(service.build)}{note('', service.why.get('build', ''))}"
            )
        lines.append(
            f"    command: {yaml_str(service.command)}"
            f"{note(where + '.command', service.why.get('command', ''))}"
        )
        if service.port is not None:
            lines.append(
                f"    port: {service.port}{note(where + '.port', service.why.get('port', ''))}"
            )
            lines.append(
                f"    health: {yaml_str(service.health or DEFAULT_HEALTH)}"
                f"{note(where + '.health', service.why.get('health', ''))}"
            )
            lines.append(
                "    # public: true  # to serve it from the internet (ingress / load balancer)"
            )
        elif where + ".port" in defaulted:
            lines.append(f"    # no port: a worker{note(where + '.port', '')}")
        if service.release:
            lines.append(
                f"    release: {yaml_str(service.release)}{note('', service.why.get('release', ''))}"
            )
        if service.uses:
            uses = ", ".join(yaml_str(u) for u in service.uses)
            lines.append(f"    uses: [{uses}]{note('', service.why.get('uses', ''))}")
        if service.secrets:
            secrets = ", ".join(yaml_str(s) for s in service.secrets)
            lines.append(f"    secrets: [{secrets}]{note('', service.why.get('secrets', ''))}")
    if detection.datastores:
        lines.append("datastores:")
        for store in detection.datastores:
            lines.append(f"  {store}: {{}}  # version: the default ({DATASTORE_VERSIONS[store]})")
    lines += [
        "# targets:  # defaults: docker, compose and env; also pm2, kubernetes,",
        "#   kubernetes: true  # terraform (aws-ecs | gcp-cloud-run | azure-container-apps)",
        "#   ci: github  # and ci (github | gitlab)",
    ]
    for note_text in detection.notes:
        lines.append(f"# note: {comment(note_text)}")
    return "\n".join(lines) + "\n"
