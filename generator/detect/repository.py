"""The repository as a whole: which folders are services, their names, their secret names.

Monorepos hold folders that are not deployable: an empty root `package.json` stub, a phone
app (Expo, React Native), an evaluation or docs folder, a library without a start script.
None of them becomes a service; each is listed as a note in the written file. The code of a
nested project never counts for the project around it (its routes and env names are its own).
"""

from __future__ import annotations

import re
from pathlib import Path

from generator.detect import evidence as platform
from generator.detect import node, python
from generator.detect.base import (
    MAX_DEPTH,
    SKIPPED_DIRS,
    Detection,
    Repo,
    Service,
    Why,
    dns_label,
    get,
    is_secret_name,
)
from generator.detect.descriptor import guess_port_placeholders

PYTHON_MANIFESTS = {"pyproject.toml", "requirements.txt", "Pipfile", "setup.py"}
ENV_EXAMPLES = (".env.example", ".env.sample", ".env.template", ".env.dist", "env.example")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=")
_JS_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def project_folders(repo: Repo) -> list[tuple[Path, str]]:
    """Folders holding a Python or Node project, at most MAX_DEPTH deep, outermost first."""
    found: set[tuple[Path, str]] = set()
    for path in repo.reader.walk(repo.root, prune=SKIPPED_DIRS):
        relative = path.relative_to(repo.root).parts
        if len(relative) > MAX_DEPTH + 1 or any(p.startswith(".") for p in relative[:-1]):
            continue
        if path.name in PYTHON_MANIFESTS:
            found.add((path.parent, "python"))
        elif path.name == "package.json":
            found.add((path.parent, "node"))
    return sorted(found, key=lambda f: (len(f[0].parts), str(f[0]), f[1]))


def detect(root: Path) -> Detection:
    """Everything `shipforge init` can tell about the repository at root."""
    repo = Repo(root)
    detection = Detection(root=repo.root)
    pyproject = repo.toml(repo.root / "pyproject.toml")
    package = repo.json(repo.root / "package.json")
    for candidate, source, file in (
        (get(pyproject, "project", "name"), "pyproject.toml [project] name", "pyproject.toml"),
        (get(pyproject, "tool", "poetry", "name"), "[tool.poetry] name", "pyproject.toml"),
        (get(package, "name"), "package.json name", "package.json"),
        (repo.root.name, "folder name", ""),
    ):
        if isinstance(candidate, str) and (label := dns_label(candidate)):
            detection.name = label
            detection.name_why = Why(
                source, file, repo.line_of(repo.root / file, candidate) if file else 0
            )
            break

    folders = project_folders(repo)
    services: list[Service] = []
    owners: list[tuple[Path, str]] = []

    def nested(folder: Path) -> set[Path]:
        return {f for f, _ in folders if f != folder and folder in f.parents}

    members = node.workspace_members(repo, detection.notes)
    if members is not None:
        owners.append((repo.root, "node"))
        for member in members:
            data = repo.json(member / "package.json")
            if node.is_mobile(data):
                detection.notes.append(
                    f"{repo.rel(member)}: a mobile app (Expo/React Native): not a service"
                )
                continue
            scripts = get(data, "scripts")
            if not (isinstance(scripts, dict) and isinstance(scripts.get("start"), str)):
                detection.notes.append(
                    f"{repo.rel(member)}: no start script (a library?): not a service"
                )
                continue
            services.extend(
                node.node_services(
                    repo, member, dns_label(member.name) or "app", nested(member), repo.root
                )
            )
    for folder, kind in folders:
        if any(kind == k and (folder == f or f in folder.parents) for f, k in owners):
            continue
        is_nested = folder != repo.root
        name = (dns_label(folder.name) if is_nested else "") or "app"
        where = repo.rel(folder)
        if kind == "node":
            data = repo.json(folder / "package.json")
            if node.is_mobile(data):
                detection.notes.append(f"{where}: a mobile app (Expo/React Native): not a service")
                continue
            if node.is_stub(data) and (is_nested or len(folders) > 1):
                detection.notes.append(
                    f"{where}: package.json declares nothing to run: not a service"
                )
                continue
            found = node.node_services(repo, folder, name, nested(folder))
        else:
            found = python.detect_python(repo, folder, name, nested(folder))
        runnable = [s for s in found if s.command or s.web]
        if is_nested and not runnable:
            detection.notes.append(f"{where}: no start command found: skipped")
            continue
        if not runnable and len(folders) > 1:
            detection.notes.append(f"{kind} project at the root: no start command found: skipped")
            continue
        owners.append((folder, kind))
        services.extend(found)
    if not services:
        # Nothing runnable anywhere: the outermost project is the service, its command asked.
        for folder, kind in folders[:1]:
            name = (dns_label(folder.name) if folder != repo.root else "") or "app"
            services.extend(
                python.detect_python(repo, folder, name, nested(folder))
                if kind == "python"
                else node.node_services(repo, folder, name, nested(folder))
            )
    for service in services:
        _unprivileged(service)
    guess_port_placeholders(services)
    _name_services(services)
    shared = len({s.path for s in services}) > 1
    for service in services:
        folder = repo.root / service.path if service.path != "." else repo.root
        _secrets(repo, service, nested(folder), shared)
    detection.services = services
    for issue in repo.reader.notes:
        detection.notes.append(f"{issue.file}: {issue.message}")
    return detection


UNPRIVILEGED_PORT = 8080


def _unprivileged(service: Service) -> None:
    """A port below 1024 (`--port 80`) moved to 8080 where the command states it.

    The image runs as a non-root user without capabilities, which cannot bind below 1024;
    the platforms publish the service on 80/443 all the same. A port the command does not
    state (the code's own) cannot be moved from here: it is left out, to be answered.
    """
    port = service.port
    if port is None or port >= 1024 or not service.command:
        return
    pattern = re.compile(rf"(--port[= ]|-p |--bind[= ]\S*:|-b \S*:|:)({port})(?=\s|$|['\"])")
    moved, count = pattern.subn(rf"\g<1>{UNPRIVILEGED_PORT}", service.command)
    why = service.why.get("port")
    if count:
        service.command, service.port = moved, UNPRIVILEGED_PORT
        service.why["port"] = Why(
            f"{why.text if why else f'port {port}'}, moved to "
            f"{UNPRIVILEGED_PORT}: the image runs unprivileged",
            why.file if why else "",
            why.line if why else 0,
        )
    elif service.env.get("PORT") == str(port):
        service.env["PORT"], service.port = str(UNPRIVILEGED_PORT), UNPRIVILEGED_PORT
    else:
        service.port = None
        service.warnings.append(
            f"it listens on port {port}, which an unprivileged container cannot bind: "
            "make it listen on a port from 1024 up"
        )
        service.why.pop("port", None)


def _name_services(services: list[Service]) -> None:
    """Give anonymous services a name that says what they are, and make names unique."""
    for service in services:
        if service.name == "app":
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


def _referenced(repo: Repo, folder: Path, skip: set[Path], runtime: str) -> set[str]:
    """Every identifier and string the service's own code holds, upper-cased."""
    words: set[str] = set()
    if runtime == "python":
        for path in repo.files(folder, (".py",), skip):
            if parsed := python.parse(repo, path):
                words |= parsed.words
    else:
        for path in repo.files(
            folder, (".js", ".mjs", ".cjs", ".ts", ".mts", ".tsx", ".jsx"), skip
        ):
            words |= {w.upper() for w in _JS_WORD.findall(repo.text(path))}
    return words


def _secrets(repo: Repo, service: Service, skip: set[Path], shared: bool) -> None:
    """Secret NAMES (never values) from the service's env example, never a value.

    An example file of the service's own project is its configuration (libraries read names
    such as OPENAI_API_KEY without the code naming them). A root example shared by several
    projects gives each only the names its own code references.
    """
    folder = repo.root / service.path if service.path != "." else repo.root
    evidence = platform.Evidence()
    platform.compose(repo, folder, evidence)
    platform.app_json(repo, folder, evidence)
    reserved = {"DATABASE_URL"} if "postgres" in service.uses else set()
    reserved |= {"REDIS_URL"} if "redis" in service.uses else set()
    names: set[str] = set(evidence.secrets)
    why = evidence.secrets_why
    words: set[str] | None = None
    for place in dict.fromkeys((folder, repo.root)):
        for example in ENV_EXAMPLES:
            text = repo.text(place / example)
            if not text:
                continue
            filtered = shared and place == repo.root
            if words is None and filtered:
                words = _referenced(repo, folder, skip, service.runtime)
            found = [
                m.group(1)
                for line in text.splitlines()
                if (m := _ENV_LINE.match(line))
                and is_secret_name(m.group(1))
                and (not filtered or m.group(1) in (words or set()))
            ]
            if found:
                names |= set(found)
                why = why or Why(
                    f"secret names in {repo.rel(place / example)}"
                    + (" that the code reads" if filtered else ""),
                    repo.rel(place / example),
                    repo.line_of(place / example, found[0]),
                )
            break
    service.secrets = sorted(names - reserved)
    if service.secrets and why:
        service.why["secrets"] = why
