"""Python projects: dependencies, version, and what the code shows, read with `ast`.

Code is parsed, never matched with regular expressions: an app assigned from a factory
(`app = create_app()`), a route in a multi-line decorator or a port in a keyword argument are
syntax, and comments or strings that merely mention `FastAPI(` are not.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from generator.detect import evidence as platform
from generator.detect.base import (
    SUPPORTED,
    Repo,
    Service,
    Why,
    dns_label,
    get,
    health_route,
    strings,
)

PYTHON_POSTGRES = {"psycopg", "psycopg2", "psycopg2-binary", "psycopg-binary", "asyncpg", "pg8000"}
PYTHON_ORMS = {"sqlalchemy", "sqlmodel", "databases", "tortoise-orm", "peewee", "django"}
PYTHON_REDIS = {"redis", "aioredis", "hiredis", "rq", "arq", "django-redis", "celery-redis"}
FRAMEWORKS = {"FastAPI": "fastapi", "Starlette": "starlette", "Flask": "flask", "Quart": "quart"}
_POSTGRES_URL = re.compile(r"postgres(?:ql)?(?:\+\w+)?://")
_REDIS_URL = re.compile(r"rediss?://")
_PREFERRED = ("main.py", "app.py", "asgi.py", "wsgi.py", "server.py", "api.py", "__init__.py")


# --- versions ------------------------------------------------------------------------------


def _poetry_spec(spec: str) -> str:
    """Poetry's `^3.9`, `~3.9` and `3.9.*` in PEP 440 terms (packaging parses the result)."""
    clauses = []
    for clause in re.split(r"\s*,\s*|\s+", spec.strip()):
        if m := re.match(r"^\^(\d+)(?:\.(\d+))?", clause):
            clauses.append(f">={m.group(1)}.{m.group(2) or 0},<{int(m.group(1)) + 1}")
        elif m := re.match(r"^~(?!=)(\d+)\.(\d+)", clause):
            clauses.append(f">={m.group(1)}.{m.group(2)},<{m.group(1)}.{int(m.group(2)) + 1}")
        elif clause and clause != "*":
            clauses.append(clause if re.match(r"^[<>=!~]", clause) else f"=={clause}")
    return ",".join(clauses)


def allowed_python(spec: str) -> list[str]:
    """The supported Python minors a specifier allows: some patch release of the minor fits."""
    alternatives = [part for part in spec.split("||") if part.strip()]
    found: list[str] = []
    for part in alternatives:
        try:
            specifier = SpecifierSet(_poetry_spec(part))
        except InvalidSpecifier:
            continue
        for minor in SUPPORTED["python"]:
            # `!=3.12.0` and `>3.12` still allow 3.12.x; `~=3.12.1` allows no 3.13.
            if any(specifier.contains(f"{minor}.{patch}") for patch in range(0, 30)):
                found.append(minor)
    return [m for m in SUPPORTED["python"] if m in found]


def python_version(
    repo: Repo, folder: Path, pyproject: dict[str, Any], dockerfile: tuple[str, str, Why] | None
) -> tuple[str, Why] | None:
    for place in dict.fromkeys((folder, repo.root)):
        lines = repo.text(place / ".python-version").strip().splitlines()
        if lines and (m := re.match(r"^(?:python-?|cpython-)?(3\.\d+)", lines[0].strip())):
            return m.group(1), repo.why(".python-version", place / ".python-version", 1)
    if dockerfile and dockerfile[0] == "python" and "." in dockerfile[1]:
        return dockerfile[1], dockerfile[2]
    runtime = repo.text(folder / "runtime.txt").strip()
    if m := re.match(r"^python-(3\.\d+)", runtime):
        return m.group(1), repo.why("runtime.txt", folder / "runtime.txt", 1)
    spec = get(pyproject, "project", "requires-python")
    where = "requires-python"
    if not isinstance(spec, str):
        spec, where = get(pyproject, "tool", "poetry", "dependencies", "python"), "python ="
    if isinstance(spec, str):
        minors = allowed_python(spec)
        file = folder / "pyproject.toml"
        if minors and minors[0] != SUPPORTED["python"][0]:
            return minors[0], repo.why(f"{where} {spec}", file, spec)
        if not minors:
            return None
    return None


# --- dependencies --------------------------------------------------------------------------


def _requirement(text: str) -> tuple[str, set[str]] | None:
    text = text.strip()
    if text.startswith(("-e ", "--editable ")) and "#egg=" in text:
        text = text.split("#egg=", 1)[1]
    try:
        requirement = Requirement(text.split(" #", 1)[0].split(";", 1)[0].strip())
    except InvalidRequirement:
        return None
    return canonicalize_name(requirement.name), {e.lower() for e in requirement.extras}


def dependencies(repo: Repo, folder: Path, pyproject: dict[str, Any]) -> dict[str, set[str]]:
    """Every runtime dependency: normalized name -> extras."""
    deps: dict[str, set[str]] = {}

    def add(text: str) -> None:
        found = _requirement(text)
        if found and found[0] != "python":
            deps.setdefault(found[0], set()).update(found[1])

    for requirement in strings(get(pyproject, "project", "dependencies")):
        add(requirement)
    poetry = get(pyproject, "tool", "poetry", "dependencies")
    for name, spec in poetry.items() if isinstance(poetry, dict) else []:
        extras = strings(get(spec, "extras"))
        add(f"{name}[{','.join(extras)}]" if extras else str(name))
    seen: set[Path] = set()

    def requirements(path: Path, depth: int = 0) -> None:
        if path in seen or depth > 5 or not repo.exists(path):
            return
        seen.add(path)
        for raw in repo.text(path).splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line.startswith(("-r ", "--requirement ", "-c ")):
                requirements(path.parent / line.split(None, 1)[1], depth + 1)
            elif line and not line.startswith(("#", "--")) and not re.match(r"^-[^e]", line):
                add(line)

    requirements(folder / "requirements.txt")
    for extra in ("requirements/production.txt", "requirements/prod.txt", "requirements/base.txt"):
        requirements(folder / extra)
    pipfile = get(repo.toml(folder / "Pipfile"), "packages")
    for name in pipfile if isinstance(pipfile, dict) else []:
        add(str(name))
    return deps


def package_manager(repo: Repo, folder: Path, pyproject: dict[str, Any], service: Service) -> None:
    def why(text: str, name: str) -> Why:
        return Why(text, repo.rel(folder / name))

    if repo.exists(folder / "uv.lock"):
        service.package_manager, service.why["package_manager"] = "uv", why("uv.lock", "uv.lock")
    elif repo.exists(folder / "poetry.lock") or isinstance(get(pyproject, "tool", "poetry"), dict):
        service.package_manager = "poetry"
        locked = repo.exists(folder / "poetry.lock")
        service.why["package_manager"] = (
            why("poetry.lock", "poetry.lock") if locked else why("[tool.poetry]", "pyproject.toml")
        )
        if not locked:
            service.warnings.append("the image installs from poetry.lock: run `poetry lock`")
    else:
        service.package_manager = "pip"
        if repo.exists(folder / "requirements.txt"):
            service.why["package_manager"] = why("requirements.txt", "requirements.txt")
        else:
            source = "Pipfile" if repo.exists(folder / "Pipfile") else "pyproject.toml"
            service.why["package_manager"] = why(f"{source} without a lockfile", source)
            service.warnings.append(
                "the image installs requirements.txt, which is missing: export one "
                "(`pipenv requirements > requirements.txt` or `uv pip compile pyproject.toml "
                "-o requirements.txt`), or use uv with a uv.lock"
            )


# --- code ----------------------------------------------------------------------------------


def _name(node: ast.expr) -> str:
    """The last name of a called thing: `FastAPI`, `fastapi.FastAPI` -> FastAPI."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _const(node: ast.expr | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


@dataclass
class PyFile:
    """What one Python file shows, with line numbers."""

    path: Path
    imports: set[str] = field(default_factory=set)
    apps: list[tuple[str, str, int]] = field(default_factory=list)  # variable, framework, line
    factories: list[tuple[str, str, int]] = field(default_factory=list)  # function, framework
    calls: list[tuple[str, str, int]] = field(default_factory=list)  # `x = f()`: x, f, line
    routes: list[tuple[str, int]] = field(default_factory=list)
    # Routes whose full path depends on where they are mounted: on an APIRouter (its
    # include_router may add a prefix) or in a Django urls module that is include()d.
    mounted: list[tuple[str, int]] = field(default_factory=list)
    includes: list[tuple[str, str]] = field(default_factory=list)  # Django (prefix, target)
    router_prefix: bool = False  # some include_router(..., prefix=...) in this file
    # app.include_router(ping.router) -> ("ping", "router", has a prefix, "app")
    mounts: list[tuple[str, str, bool, str]] = field(default_factory=list)
    apps_here: set[str] = field(default_factory=set)
    ports: list[tuple[int, int]] = field(default_factory=list)
    celery: list[tuple[str, int]] = field(default_factory=list)
    arq: list[tuple[str, int]] = field(default_factory=list)
    beat: int = 0
    words: set[str] = field(default_factory=set)
    constants: list[str] = field(default_factory=list)
    wsgi: bool = False


def parse(repo: Repo, path: Path) -> PyFile | None:
    key = ("python", path)
    if key not in repo.memo:
        repo.memo[key] = _parse(repo, path)
    found: PyFile | None = repo.memo[key]
    return found


def _parse(repo: Repo, path: Path) -> PyFile | None:
    text = repo.text(path)
    if not text:
        return None
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found = PyFile(path)
    prefixes: dict[str, str] = {}
    try:
        _scan(tree, found, prefixes)
    except RecursionError:
        return None
    return found


def _scan(tree: ast.Module, found: PyFile, prefixes: dict[str, str]) -> None:
    # Router prefixes first (`router = APIRouter(prefix="/api")`): its routes carry them.
    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.value, ast.Call)
            and _name(statement.value.func) == "APIRouter"
        ):
            prefix = next((k.value for k in statement.value.keywords if k.arg == "prefix"), None)
            for target in statement.targets:
                if isinstance(target, ast.Name) and isinstance(_const(prefix), str):
                    prefixes[target.id] = str(_const(prefix))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.imports.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.imports.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if len(node.value) < 300:
                found.constants.append(node.value)
                found.words.add(node.value.upper())
        elif isinstance(node, ast.Name):
            found.words.add(node.id.upper())
        elif isinstance(node, ast.Attribute):
            found.words.add(node.attr.upper())
            if node.attr in ("beat_schedule", "add_periodic_task"):
                found.beat = found.beat or node.lineno
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.words.add(node.target.id.upper())
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and _name(node.value.func) in FRAMEWORKS
        ):
            # Any variable holding an app, also inside a factory: `application = FastAPI()`.
            found.apps_here.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Call):
            _call(node, found)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute):
                    _route(decorator, found, prefixes)
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            value = statement.value
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if not names or not isinstance(value, ast.Call):
                continue
            called = _name(value.func)
            if called in FRAMEWORKS and FRAMEWORKS[called] in found.imports:
                found.apps.append((names[0], called, statement.lineno))
            elif called == "Celery" and "celery" in found.imports:
                found.celery.append((names[0], statement.lineno))
            elif called != "APIRouter":
                found.calls.append((names[0], called, statement.lineno))
            if called == "get_wsgi_application":
                found.wsgi = True
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(statement):
                if isinstance(inner, ast.Call) and _name(inner.func) in FRAMEWORKS:
                    framework = _name(inner.func)
                    if FRAMEWORKS[framework] in found.imports:
                        found.factories.append((statement.name, framework, statement.lineno))
                        break
        elif isinstance(statement, ast.ClassDef) and "arq" in found.imports | {"arq"}:
            for item in statement.body:
                targets = item.targets if isinstance(item, ast.Assign) else []
                if isinstance(item, ast.AnnAssign):
                    targets = [item.target]
                if any(isinstance(t, ast.Name) and t.id == "functions" for t in targets):
                    found.arq.append((statement.name, statement.lineno))
                    break


def _route(decorator: ast.Call, found: PyFile, prefixes: dict[str, str]) -> None:
    func = decorator.func
    assert isinstance(func, ast.Attribute)
    if func.attr not in ("get", "head", "api_route", "route") or not decorator.args:
        return
    route = _const(decorator.args[0])
    if isinstance(route, str) and route.startswith("/"):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        entry = (prefixes.get(owner, "") + route, decorator.lineno)
        # Collected for both; _health decides once every file is known (app or router).
        found.routes.append(entry)
        found.mounted.append((owner, decorator.lineno))


def _call(node: ast.Call, found: PyFile) -> None:
    called = _name(node.func)
    first = _const(node.args[0]) if node.args else None
    routing = ("add_api_route", "add_url_rule", "Route", "path", "re_path")
    second = node.args[1] if len(node.args) > 1 else None
    if (
        called in ("path", "re_path")
        and isinstance(second, ast.Call)
        and _name(second.func) == "include"
    ):
        # `path("api/", include(...))` mounts a list; `path("x/", View.as_view())` is a route.
        if isinstance(first, str) and first.strip("^/"):
            target = second.args[0] if second.args else None
            name = (
                _const(target)
                if isinstance(_const(target), str)
                else _name(target)
                if isinstance(target, ast.expr)
                else ""
            )
            found.includes.append((first, str(name or "")))
        return
    if called == "include_router":
        prefix = next((k.value for k in node.keywords if k.arg == "prefix"), None)
        has_prefix = prefix is not None and _const(prefix) != ""
        found.router_prefix = found.router_prefix or has_prefix
        target = node.args[0] if node.args else None
        func = node.func
        receiver = (
            func.value.id
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            else ""
        )
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            found.mounts.append((target.value.id, target.attr, has_prefix, receiver))
        elif isinstance(target, ast.Name):
            found.mounts.append(("", target.id, has_prefix, receiver))
    if called in routing and isinstance(first, str):
        route = first if first.startswith("/") else "/" + first.lstrip("^")
        found.routes.append((route, node.lineno))
    if called in ("get", "getenv") and first == "PORT" and len(node.args) > 1:
        default = _const(node.args[1])
        if str(default).isdigit():
            found.ports.append((int(str(default)), node.lineno))
    if called == "run":
        for keyword in node.keywords:
            if keyword.arg == "port" and isinstance(_const(keyword.value), int):
                found.ports.append((int(_const(keyword.value)), node.lineno))
    if called == "get_wsgi_application":
        found.wsgi = True
    for keyword in node.keywords:
        if keyword.arg == "beat_schedule":
            found.beat = found.beat or node.lineno


def module_of(repo: Repo, file: Path, base: Path) -> tuple[str, str]:
    """The import path of a file and the --app-dir it needs (src layout), from `base`."""
    parts = list(file.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if (
        len(parts) > 2
        and parts[0] == "src"
        and repo.exists(base / "src" / parts[1] / "__init__.py")
    ):
        return ".".join(parts[1:]), "src"
    return ".".join(parts), ""


def _best(items: list[tuple[PyFile, str, int]], folder: Path) -> tuple[PyFile, str, int] | None:
    if not items:
        return None
    return min(
        items,
        key=lambda m: (
            m[0].path.name not in _PREFERRED,
            len(m[0].path.relative_to(folder).parts),
            str(m[0].path),
        ),
    )


# --- the services of one project -----------------------------------------------------------

_WORKER_TOOLS = {"celery", "arq", "rq", "dramatiq", "huey_consumer", "taskiq", "faust"}
_WEB_TOOLS = {"uvicorn", "gunicorn", "hypercorn", "daphne", "granian", "waitress-serve"}
_PORT_FLAG = re.compile(r"(?:--port[= ]|--bind[= ]\S*:|-b\s*\S*:|-p\s+|--listen\s+\S*:)(\d{2,5})\b")


def _kind(command: str) -> str:
    """web, worker or '' for a command line, by the program it runs."""
    words = command.split()
    program = words[0].rsplit("/", 1)[-1] if words else ""
    if program == "python" and words[1:2] == ["-m"] and len(words) > 2:
        program = words[2]
    if program in _WORKER_TOOLS:
        return "worker"
    if program in _WEB_TOOLS or " runserver" in command or "flask run" in command:
        return "web"
    return ""


_MODULE_ARG = re.compile(r"^([A-Za-z_]\w*)((?:\.\w+)*)(:[\w.]+(?:\(\))?)?$")


def _stale_modules(
    repo: Repo, folder: Path, files: list[PyFile], process: platform.Process
) -> None:
    """A module a declared command names that the repository does not have, mended.

    `gunicorn dtb.asgi:application` in a project whose only asgi.py is config/asgi.py (a
    Procfile copied from another project) cannot start: the one module of that name the
    code has is used, with a warning. Several candidates, or none: the command stays.
    """
    try:
        words = shlex.split(process.command)
    except ValueError:
        return
    base = folder / process.working_dir if process.working_dir else folder
    program = words[0].rsplit("/", 1)[-1] if words else ""
    for index, word in enumerate(words):
        after_app = index > 0 and words[index - 1] in ("-A", "--app")
        value = word.split("=", 1)[1] if word.startswith("--app=") else word
        celery = program == "celery" and (after_app or word.startswith("--app="))
        served = program in ("gunicorn", "uvicorn") and ":" in word and not word.startswith("-")
        if not (celery or served) or not (m := _MODULE_ARG.match(value)):
            continue
        top, rest = m.group(1), m.group(2)
        if any(
            repo.exists(place) or (base / top).is_dir()
            for place in (base / f"{top}.py", base / top / "__init__.py", base / "src" / top)
        ):
            continue
        if celery:
            found = {module_of(repo, f.path, base)[0] for f in files if f.celery}
            found = {m.rsplit(".celery", 1)[0] if m.endswith(".celery") else m for m in found}
        else:
            leaf = rest.rsplit(".", 1)[-1] + ".py" if rest else ""
            found = {
                module_of(repo, f.path, base)[0].rsplit(".", 1)[0]
                for f in files
                if leaf and f.path.name == leaf
            }
        if len(found) != 1:
            continue
        package = found.pop()
        mended = value.replace(top + rest, package + (rest if not celery else ""), 1)
        if not served:
            mended = value.replace(top + rest, package, 1) if rest else package
        # The word replaced in the line as written: quoting and $PORT stay as they are.
        fresh = word.replace(value, mended)
        process.command = re.sub(
            rf"(?<!\S){re.escape(word)}(?!\S)",
            fresh.replace("\\", "\\\\"),
            process.command,
            count=1,
        )
        process.warnings.append(
            f"{process.why.file} names the module `{top}`, which this repository does not "
            f"have: `{mended}` is used instead"
        )


def _placeholder(command: str) -> str:
    """$PORT (no shell expands it) as the placeholder the port replaces once it is known."""
    return platform._PORT_VAR.sub("{port}", command)


def detect_python(repo: Repo, folder: Path, name: str, skip: set[Path]) -> list[Service]:
    """The services of one Python project folder: the web app and its workers."""
    pyproject = repo.toml(folder / "pyproject.toml")
    deps = dependencies(repo, folder, pyproject)
    base = Service(name=name, runtime="python", path=repo.rel(folder))
    package_manager(repo, folder, pyproject, base)
    evidence = platform.read(repo, folder)
    if version := python_version(repo, folder, pyproject, evidence.version):
        base.version, base.why["version"] = version
    files = [f for f in (parse(repo, p) for p in repo.files(folder, (".py",), skip)) if f]
    manifest = next(
        (
            folder / n
            for n in ("pyproject.toml", "requirements.txt", "Pipfile")
            if repo.exists(folder / n)
        ),
        folder / "pyproject.toml",
    )
    _datastores(repo, folder, deps, files, evidence, base, manifest)
    base.warnings.extend(evidence.notes)

    for process in evidence.processes:
        _stale_modules(repo, folder, files, process)

    services: list[Service] = []
    web = base.copy()
    declared = evidence.process("web")
    if declared and _kind(declared.command) == "worker":
        declared = None
    if declared is None:
        declared = next(
            (
                p
                for p in evidence.processes
                if p.name.startswith("compose:") and _kind(p.command) == "web"
            ),
            None,
        )
    if declared:
        program = declared.command.split()[0].rsplit("/", 1)[-1] if declared.command else ""
        tools = _WEB_TOOLS | _WORKER_TOOLS | {"uwsgi"}
        if program in tools and canonicalize_name(program) not in deps:
            web.warnings.append(
                f"the command runs {program}, which is not in the dependencies the image "
                "installs: add it"
            )
        web.command, web.web, web.why["command"] = (
            _placeholder(declared.command),
            True,
            declared.why,
        )
        web.warnings.extend(declared.warnings)
        web.env.update(declared.env)
        folder_ok = ".." not in declared.working_dir.split("/")
        if declared.working_dir and folder_ok and not declared.working_dir.startswith("/"):
            web.working_dir, web.why["working_dir"] = declared.working_dir, declared.why
        if declared.port:
            web.port, web.why["port"] = declared.port, declared.port_why or declared.why
        if declared.health and declared.health_why:
            web.health, web.why["health"] = declared.health, declared.health_why
    else:
        _framework_command(repo, folder, deps, files, web)

    if web.web:
        _port(repo, web, evidence, files, declared is not None)
        if web.health is None and (found := _health(repo, folder, files)):
            web.health, web.why["health"] = found
        services.append(web)

    services.extend(_workers(repo, folder, deps, files, evidence, base))
    release = _release(repo, folder, deps, files, evidence, declared, web)
    if not services:
        fallback = base.copy()
        main = next((f for f in files if f.path.name == "__main__.py"), None)
        if main is not None:
            module, _ = module_of(repo, main.path.parent / "__init__.py", folder)
            fallback.command = f"python -m {module}"
            fallback.why["command"] = Why(f"{repo.rel(main.path)}", repo.rel(main.path))
        services.append(fallback)
    if release:
        owner = next((s for s in services if s.web), services[0])
        owner.release, owner.why["release"] = release
    if lock := _uv_workspace(repo, folder):
        # A uv workspace member: the lock (and so the build context) is the workspace root;
        # the member's code runs from its own folder.
        for service in services:
            inner = service.working_dir
            service.path, service.package_manager = ".", "uv"
            service.working_dir = repo.rel(folder) + (f"/{inner}" if inner else "")
            service.why["package_manager"] = lock
            service.why["working_dir"] = lock
            service.warnings = [w for w in service.warnings if "requirements.txt" not in w]
    return services


def _uv_workspace(repo: Repo, folder: Path) -> Why | None:
    """The root uv.lock when `folder` is a member of the root's uv workspace."""
    if folder == repo.root or not repo.exists(repo.root / "uv.lock"):
        return None
    root = repo.toml(repo.root / "pyproject.toml")
    members = strings(get(root, "tool", "uv", "workspace", "members"))
    relative = repo.rel(folder)
    for pattern in members:
        if fnmatch.fnmatchcase(relative, pattern.removeprefix("./").rstrip("/")):
            return Why(f"member of the uv workspace in pyproject.toml ({pattern})", "uv.lock")
    return None


def _datastores(
    repo: Repo,
    folder: Path,
    deps: dict[str, set[str]],
    files: list[PyFile],
    evidence: platform.Evidence,
    service: Service,
    manifest: Path,
) -> None:
    constants = "\n".join(c for f in files for c in f.constants)
    config = "\n".join(
        repo.text(folder / n)
        for n in (".env.example", ".env.sample", "alembic.ini", *platform.COMPOSE_FILES)
    )
    uses: list[str] = []
    why: list[str] = []
    drivers = sorted(PYTHON_POSTGRES & set(deps))
    orm = sorted(PYTHON_ORMS & set(deps))
    if drivers:
        uses.append("postgres")
        why.append(", ".join(drivers))
    elif orm and (
        _POSTGRES_URL.search(constants + config) or "django.db.backends.postgresql" in constants
    ):
        uses.append("postgres")
        why.append(f"{orm[0]} with a PostgreSQL URL")
    elif "postgres" in evidence.datastores and orm:
        uses.append("postgres")
        why.append(evidence.datastores["postgres"].text)
    redis = sorted(
        {d for d in deps if d in PYTHON_REDIS}
        | {f"{d}[redis]" for d, extras in deps.items() if "redis" in extras}
    )
    if redis:
        uses.append("redis")
        why.append(", ".join(redis))
    elif "celery" in deps and (
        _REDIS_URL.search(constants + config) or "redis" in evidence.datastores
    ):
        uses.append("redis")
        why.append("celery with a redis broker")
    service.uses = uses
    if uses:
        first = why[0].split(",")[0].split()[0]
        service.why["uses"] = repo.why("; ".join(why), manifest, first)


def _framework_command(
    repo: Repo, folder: Path, deps: dict[str, set[str]], files: list[PyFile], web: Service
) -> None:
    """The conventional production command of the framework the code uses."""
    factories = {name: (f, fw, line) for f in files for name, fw, line in f.factories}
    apps = [(f, var, line) for f in files for var, _, line in f.apps]
    # `app = create_app()` at module level: the module holds an app, no --factory needed.
    apps += [(f, var, line) for f in files for var, called, line in f.calls if called in factories]
    frameworks = {fw for f in files for _, fw, _ in f.apps} | {
        fw for _, fw, _ in factories.values()
    }
    asgi = {"fastapi", "starlette"} & set(deps) or {"FastAPI", "Starlette"} & frameworks
    found = _best(apps, folder)
    factory = (
        None if found else _best([(f, n, line) for n, (f, _, line) in factories.items()], folder)
    )
    chosen = found or factory
    base = folder
    if chosen and (workdir := _code_folder(repo, folder, chosen[0])):
        # The app lives in a folder that is not a package (`backend/main.py` importing its
        # siblings as top-level modules): it only imports when run from that folder.
        base = folder / workdir
        web.working_dir = workdir
        web.why["working_dir"] = Why(
            f"{workdir}/ is not a package: the app's imports work from inside it",
            repo.rel(chosen[0].path),
        )
    if asgi:
        label = "FastAPI" if "fastapi" in deps or "FastAPI" in frameworks else "Starlette"
        web.web = True
        web.default_command = "uvicorn main:app --host 0.0.0.0 --port {port}"
        if found or factory:
            file, variable, line = found or factory  # type: ignore[misc]
            module, app_dir = module_of(repo, file.path, base)
            flags = (" --factory" if factory else "") + (f" --app-dir {app_dir}" if app_dir else "")
            web.command = f"uvicorn {module}:{variable}{flags} --host 0.0.0.0 --port {{port}}"
            kind = "app" if found else "app factory"
            web.why["command"] = Why(
                f"{label} {kind} `{variable}` in {repo.rel(file.path)}", repo.rel(file.path), line
            )
            if "uvicorn" not in deps:
                web.warnings.append("the command runs uvicorn: add it to your dependencies")
    elif {"flask", "quart"} & set(deps):
        web.web = True
        web.default_command = "gunicorn app:app --bind 0.0.0.0:{port}"
        if found or factory:
            file, variable, line = found or factory  # type: ignore[misc]
            module, app_dir = module_of(repo, file.path, base)
            target = f"{module}:{variable}()" if factory else f"{module}:{variable}"
            chdir = f" --chdir {app_dir}" if app_dir else ""
            web.command = f"gunicorn {target}{chdir} --bind 0.0.0.0:{{port}}"
            web.why["command"] = Why(
                f"Flask app `{variable}` in {repo.rel(file.path)}", repo.rel(file.path), line
            )
            if "gunicorn" not in deps:
                web.warnings.append("the command runs gunicorn: add it to your dependencies")
    elif "django" in deps:
        web.web = True
        web.default_command = "gunicorn config.wsgi:application --bind 0.0.0.0:{port}"
        wsgi = [f for f in files if f.path.name == "wsgi.py" and f.wsgi]
        if wsgi:
            file = min(wsgi, key=lambda f: len(f.path.parts))
            module, app_dir = module_of(repo, file.path, folder)
            manage = _find_manage(repo, folder, files)
            if not app_dir and manage and manage.parent != folder:
                app_dir = repo.rel(manage.parent).removeprefix(repo.rel(folder) + "/")
                module = ".".join(file.path.relative_to(manage.parent).with_suffix("").parts)
            chdir = f" --chdir {app_dir}" if app_dir else ""
            web.command = f"gunicorn {module}:application{chdir} --bind 0.0.0.0:{{port}}"
            web.why["command"] = Why(
                f"Django WSGI application in {repo.rel(file.path)}", repo.rel(file.path)
            )
            if "gunicorn" not in deps:
                web.warnings.append("the command runs gunicorn: add it to your dependencies")


def _code_folder(repo: Repo, folder: Path, file: PyFile) -> str:
    """The first-level folder the app must run from, or "" when it imports as a package."""
    parts = file.path.relative_to(folder).parts
    if len(parts) < 2 or repo.exists(folder / parts[0] / "__init__.py"):
        return ""
    if parts[0] == "src" and len(parts) > 2:
        return ""  # the src layout: --app-dir src
    if parts[0] in file.imports:
        return ""  # `from backend.x import y`: a namespace package, imported from the root
    # Only when the file imports a sibling as a top-level module (`import models` next to
    # it) must it run from its folder; otherwise `api.index:app` imports from the root.
    here = folder / parts[0]
    siblings = {
        name
        for name in file.imports
        if repo.exists(here / f"{name}.py") or repo.exists(here / name / "__init__.py")
    }
    return parts[0] if siblings else ""


def _port(
    repo: Repo, web: Service, evidence: platform.Evidence, files: list[PyFile], declared: bool
) -> None:
    command = web.command or ""
    if web.port is None and (m := _PORT_FLAG.search(command)):
        web.port, web.why["port"] = int(m.group(1)), web.why.get("command", Why("the command"))
    if web.port is None and evidence.port:
        web.port, web.why["port"] = evidence.port
    if web.port is None:
        for file in files:
            for port, line in file.ports:
                if port not in (5432, 6379):
                    web.port = port
                    web.why["port"] = Why(
                        f"port {port} in {repo.rel(file.path)}", repo.rel(file.path), line
                    )
                    break
            if web.port:
                break
    words = command.split()
    binds = any(w.startswith(("-b", "--bind")) for w in words)
    source = web.why.get("command", Why(""))
    if words[:1] == ["gunicorn"] and not binds:
        # gunicorn binds 0.0.0.0:$PORT when PORT is set: setting it makes the port true.
        if web.port is None:
            web.port = 8000
            web.why["port"] = Why(
                "gunicorn binds $PORT, set to it in env", source.file, source.line
            )
        web.env.setdefault("PORT", str(web.port))
    elif web.port is None and words[:2] == ["fastapi", "run"]:
        web.port = 8000
        web.why["port"] = Why("`fastapi run` listens on 0.0.0.0:8000", source.file, source.line)
    elif words[:1] and words[0] in ("uvicorn", "hypercorn", "daphne") and "--host" not in words:
        web.warnings.append(
            f"{words[0]} listens on 127.0.0.1 unless told otherwise: add `--host 0.0.0.0` "
            "(`-b 0.0.0.0` for daphne) so the container's port answers"
        )
        if web.port is None and "--port" not in words:
            web.port = 8000
            web.why["port"] = Why(f"{words[0]}'s default port 8000", source.file, source.line)
    if web.port is None and not declared and "{port}" in command:
        # The command shipforge writes binds this port itself: nothing is guessed.
        program = command.split()[0]
        web.port = 8000
        web.why["port"] = Why(f"{program}'s usual port 8000, set in the command")
    if web.port is not None and web.command:
        web.command = web.command.replace("{port}", str(web.port))
    if web.port is not None and "port" in web.why and not web.why["port"].text.startswith("port"):
        text = web.why["port"]
        web.why["port"] = Why(f"port {web.port}: {text.text}", text.file, text.line)


def _health(repo: Repo, folder: Path, files: list[PyFile]) -> tuple[str, Why] | None:
    """A health route whose full path the code shows; a mounted one with a prefix is not."""
    apps = {var for f in files for var, _, _ in f.apps} | {v for f in files for v in f.apps_here}
    prefixed_routers = any(f.router_prefix for f in files)
    mounts = [m for f in files for m in f.mounts]
    included = {target for f in files for _, target in f.includes}
    routes = []
    for f in files:
        module = module_of(repo, f.path, folder)[0]
        owners = dict((line, owner) for owner, line in f.mounted)
        for route, line in f.routes:
            owner = owners.get(line)
            if owner is not None and owner not in apps:
                # include_router(ping.router): mounted as is when no call that names this
                # router adds a prefix; unknown when none names it and some call has one.
                # A router included into another router takes that router's mount too.
                named = [
                    p or r not in apps
                    for m, a, p, r in mounts
                    if a == owner and m in ("", f.path.stem)
                ]
                if any(named) or (not named and prefixed_routers):
                    continue
            local_lists = any("." not in target for _, target in f.includes)
            if owner is None and (local_lists or module in included):
                continue  # a Django urls module (or list) mounted under a prefix
            routes.append((route, Why(f"route in {repo.rel(f.path)}", repo.rel(f.path), line)))
    return health_route(routes)


def _workers(
    repo: Repo,
    folder: Path,
    deps: dict[str, set[str]],
    files: list[PyFile],
    evidence: platform.Evidence,
    base: Service,
) -> list[Service]:
    workers: list[Service] = []
    declared = [
        p
        for p in evidence.processes
        if p.name not in ("web",)
        and not (p.name.startswith("compose:") and _kind(p.command) != "worker")
    ]
    declared += [p for p in evidence.processes if p.name == "web" and _kind(p.command) == "worker"]
    for process in declared:
        worker = base.copy(web=False, command=process.command)
        label = process.name.removeprefix("compose:")
        worker.name = dns_label(label) or "worker"
        worker.why["command"] = process.why
        worker.env.update(process.env)
        worker.warnings.extend(process.warnings)
        workers.append(worker)
    running = " ".join(w.command or "" for w in workers)
    if (
        "celery" in deps
        and " worker" not in running
        and (found := _best([(f, v, line) for f in files for v, line in f.celery], folder))
    ):
        module, _ = module_of(repo, found[0].path, folder)
        worker = base.copy(name="worker", web=False)
        worker.command = f"celery -A {module}:{found[1]} worker --loglevel INFO"
        worker.why["command"] = Why(
            f"Celery app `{found[1]}` in {repo.rel(found[0].path)}",
            repo.rel(found[0].path),
            found[2],
        )
        workers.append(worker)
        beat = next((f for f in files if f.beat), None)
        if beat and " beat" not in running:
            scheduler = base.copy(name="beat", web=False)
            scheduler.command = f"celery -A {module}:{found[1]} beat --loglevel INFO"
            scheduler.why["command"] = Why(
                f"a Celery beat schedule in {repo.rel(beat.path)}", repo.rel(beat.path), beat.beat
            )
            workers.append(scheduler)
    if "arq" in deps and "arq " not in running:
        settings = [(f, cls, line) for f in files for cls, line in f.arq]
        if found_arq := _best(settings, folder):
            module, _ = module_of(repo, found_arq[0].path, folder)
            worker = base.copy(name="arq-worker" if workers else "worker", web=False)
            worker.command = f"arq {module}.{found_arq[1]}"
            worker.why["command"] = Why(
                f"ARQ worker settings `{found_arq[1]}` in {repo.rel(found_arq[0].path)}",
                repo.rel(found_arq[0].path),
                found_arq[2],
            )
            workers.append(worker)
    return workers


def _find_manage(repo: Repo, folder: Path, files: list[PyFile]) -> Path | None:
    candidates = [
        f.path
        for f in files
        if f.path.name == "manage.py" and len(f.path.relative_to(folder).parts) <= 3
    ]
    return min(candidates, key=lambda p: len(p.parts)) if candidates else None


def _release(
    repo: Repo,
    folder: Path,
    deps: dict[str, set[str]],
    files: list[PyFile],
    evidence: platform.Evidence,
    declared: platform.Process | None,
    web: Service,
) -> tuple[str, Why] | None:
    """The migration step: declared by a platform file, else the migration tool's convention."""
    if evidence.release:
        return evidence.release
    if declared and declared.release and declared.release_why:
        return declared.release, declared.release_why
    if "flask-migrate" in deps:
        why = Why("Flask-Migrate dependency", repo.rel(folder / "requirements.txt"))
        target = (web.command or "").split()[1:2]
        app = target[0] if target and ":" in target[0] else ""
        discoverable = app.split(":")[0] in ("app", "wsgi") or not app
        return ("flask db upgrade" if discoverable else f"flask --app {app} db upgrade"), why
    if "alembic" in deps:
        inis = sorted(
            (p for p in repo.files(folder, ("alembic.ini",), set())), key=lambda p: len(p.parts)
        )
        if inis:
            ini = inis[0]
            where = ini.relative_to(folder).as_posix()
            why = Why(f"alembic dependency and {repo.rel(ini)}", repo.rel(ini))
            if where == "alembic.ini":
                return "alembic upgrade head", why
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read_string(repo.text(ini))
                location = parser.get("alembic", "script_location", fallback="")
            except configparser.Error:
                location = ""
            sub = ini.parent.relative_to(folder).as_posix()
            if "%(here)s" in location or location.startswith("/"):
                return f"alembic -c {where} upgrade head", why
            if web.working_dir == sub:
                return "alembic upgrade head", why
            web.warnings.append(
                f"alembic's script_location in {repo.rel(ini)} is relative to {sub}/: "
                f"the release runs `alembic -c {where}` from the service root, which needs "
                "`script_location = %(here)s/...`"
            )
            return f"alembic -c {where} upgrade head", why
    aerich = get(repo.toml(folder / "pyproject.toml"), "tool", "aerich")
    if "aerich" in deps and isinstance(aerich, dict):
        return "aerich upgrade", repo.why(
            "[tool.aerich] in pyproject.toml", folder / "pyproject.toml", "[tool.aerich]"
        )
    if "django" in deps and (manage := _find_manage(repo, folder, files)):
        where = manage.relative_to(folder).as_posix()
        return f"python {where} migrate", Why(f"Django {repo.rel(manage)}", repo.rel(manage))
    return None
