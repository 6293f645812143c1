"""The strongest evidence: what the repository already tells a platform how to run.

An existing Dockerfile (CMD/ENTRYPOINT/EXPOSE/WORKDIR), compose file (`command:`, ports,
`working_dir:`, literal secrets), Procfile, fly.toml, app.json or render.yaml states the
production command, port and release step; code conventions come only after them.

The descriptor's command runs without a shell, so a shell line (`a; b && c`, `ENV=x cmd`,
`sh -c "..."`, `cd src && cmd`) is split into what can run without one: the last step is the
process, migrations before it are the release, `cd` becomes the working directory and
`NAME=value` prefixes become `env`.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.detect.base import Repo, Why, get, is_secret_name, strings

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
_ASSIGN = re.compile(r"""^([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|[^\s"']*)\s+""")
_MIGRATION = re.compile(
    r"\b(?:alembic\b.*\bupgrade|flask\s+db\s+upgrade|manage\.py\s+migrate|django-admin\s+migrate"
    r"|prisma\s+migrate\s+deploy|prisma\s+db\s+push|knex\s+migrate|sequelize\s+db:migrate"
    r"|typeorm\s+migration:run|npm\s+run\s+migrate|yarn\s+migrate|aerich\s+upgrade)"
)
_DEV = re.compile(
    r"^(?:(?:npm|pnpm|yarn|bun)\s+(?:run\s+)?(?:dev|start:dev|develop|serve)\b"
    r"|(?:npx\s+)?(?:next|vite|nuxt)\s+dev\b|(?:npx\s+)?nodemon\b|ts-node-dev\b"
    r"|(?:python3?(?:\.\d+)?\s+)?\S*manage\.py\s+runserver\b|flask\s+run\b)"
)
_RUNNER = re.compile(r"^(?:poetry\s+run|pipenv\s+run|uv\s+run(?:\s+--\S+)*)\s+")
_REDIRECT = re.compile(r"\s+(?:\d?>&\d|\d?>>?\s*/dev/null)(?=\s|$)")
_SHELL_VAR = re.compile(r"\$\{?(?!PORT\b)[A-Za-z_][A-Za-z0-9_]*")
_SHELL_ONLY = re.compile(r"[|<>`]|\$\(")
_PORT_VAR = re.compile(r"\$\{?PORT(?::-(\d{2,5}))?\}?")
# A compose healthcheck probing the service itself: `curl -f http://localhost:8000/health`.
_PROBE = re.compile(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0):(\d{2,5})(/[^\s\"'|;&]*)?")
_DATASTORE_IMAGES = {"postgres": "postgres", "postgis": "postgres", "redis": "redis"}


@dataclass
class Process:
    """One process a platform file declares, already made runnable without a shell."""

    name: str
    command: str
    why: Why
    web: bool | None = None
    port: int | None = None
    port_why: Why | None = None
    health: str | None = None
    health_why: Why | None = None
    release: str = ""
    release_why: Why | None = None
    working_dir: str = ""
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # A Dockerfile CMD that runs files its own build stage laid out (see _Image.assembled).
    assembled: bool = False


@dataclass
class Evidence:
    """Everything the platform files of one folder say."""

    processes: list[Process] = field(default_factory=list)
    release: tuple[str, Why] | None = None
    port: tuple[int, Why] | None = None
    version: tuple[str, str, Why] | None = None  # runtime, version, where
    datastores: dict[str, Why] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    secrets_why: Why | None = None
    notes: list[str] = field(default_factory=list)
    # Dockerfiles a compose file builds this folder with, and their contexts.
    dockerfiles: list[tuple[Path, Path]] = field(default_factory=list)

    def process(self, name: str) -> Process | None:
        return next((p for p in self.processes if p.name == name), None)


def _split_chain(text: str) -> list[str]:
    """A shell line split at unquoted `;` and `&&` (quotes and escapes respected)."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and i + 1 < len(text):
                current.append(char)
                i += 1
                char = text[i]
        elif char in "'\"":
            quote = char
        elif char == "\\" and i + 1 < len(text):
            current.append(char)
            i += 1
            char = text[i]
        elif char == ";" or text.startswith("&&", i):
            parts.append("".join(current).strip())
            current = []
            i += 2 if char == "&" else 1
            continue
        current.append(char)
        i += 1
    parts.append("".join(current).strip())
    return [p for p in parts if p]


@dataclass
class Runnable:
    command: str
    release: str = ""
    working_dir: str = ""
    env: dict[str, str] = field(default_factory=dict)
    before: list[str] = field(default_factory=list)
    port: int | None = None
    shell: bool = False


def runnable(text: str, depth: int = 0) -> Runnable:
    """What of a shell line can run without a shell (see the module docstring)."""
    text = text.strip()
    try:
        argv = shlex.split(text)
    except ValueError:
        argv = []
    shells = {"sh", "bash", "ash"}
    if (
        depth < 3
        and len(argv) == 3
        and argv[0].rsplit("/", 1)[-1] in shells
        and argv[1]
        in (
            "-c",
            "-ec",
            "-lc",
        )
    ):
        return runnable(argv[2], depth + 1)
    result = Runnable(command="")
    steps = _split_chain(text)
    for step in steps[:-1]:
        words = step.split()
        if words[:1] == ["cd"] and len(words) == 2:
            result.working_dir = words[1].strip("\"'").removeprefix("./").rstrip("/")
        elif words[:1] in (["set"], ["echo"], ["export"]):
            continue
        elif _MIGRATION.search(step) and not result.release:
            result.release = _strip_prefix(step, {})
        else:
            result.before.append(step)
    last = steps[-1] if steps else ""
    last = _strip_prefix(last, result.env)
    if last.startswith("exec "):
        last = last[5:].strip()
    if (match := _PORT_VAR.search(last)) and match.group(1):
        result.port = int(match.group(1))
    # `2>&1` and `> /dev/null` only steer output, which the platform collects anyway.
    last = _REDIRECT.sub("", last).strip()
    unquoted = re.sub(r"'[^']*'", "", last)
    # $VAR or ${VAR:-x} other than $PORT needs a shell to expand: it stays, with a warning.
    result.shell = bool(_SHELL_ONLY.search(unquoted) or _SHELL_VAR.search(unquoted))
    result.command = last
    return result


def _strip_prefix(step: str, env: dict[str, str]) -> str:
    """`A=1 B=2 poetry run cmd` -> `cmd`, with A and B in env (their values as written).

    `poetry run`, `pipenv run` and `uv run` only find the project's virtualenv, which the
    image puts on PATH; the image has no poetry or pipenv to run them.
    """
    while match := _ASSIGN.match(step):
        value = match.group(2)
        env[match.group(1)] = value[1:-1] if value[:1] in ("'", '"') else value
        step = step[match.end() :]
    return _RUNNER.sub("", step.strip())


def with_port(command: str, port: int | None) -> str:
    """$PORT (which no shell expands) replaced by the service's port."""
    return _PORT_VAR.sub(str(port), command) if port else command


# --- Dockerfile ----------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    found: list[tuple[int, str, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        word, _, rest = buffer.partition(" ")
        found.append((start, word.upper(), rest.strip()))
        buffer = ""
    return found


def _exec_form(value: str) -> list[str] | None:
    if not value.startswith("["):
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return [str(v) for v in data] if isinstance(data, list) else None


class _Image:
    """Where the files of the build context land in the image (COPY/ADD), to map paths back."""

    def __init__(self, repo: Repo, folder: Path) -> None:
        self.repo = repo
        self.folder = folder
        self.workdir = "/"
        self.copies: list[tuple[str, str]] = []  # (image path, repository-relative path)
        # Set when the stage holds files a build stage made (`.next/standalone`), which an
        # image built from the repository alone does not have: its CMD relies on them.
        self.assembled = False

    def _context(self, sources: list[str]) -> Path:
        # The build context is the Dockerfile's folder or, for `COPY ./backend/app ...` in
        # backend/Dockerfile (compose `context: .`), the repository root.
        for base in (self.folder, self.repo.root):
            if all((base / s.removeprefix("./")).exists() for s in sources if "*" not in s):
                return base
        return self.folder

    def copy(self, rest: str, stages: dict[str, _Image] | None = None) -> None:
        try:
            every = shlex.split(rest)
        except ValueError:
            return
        words = [w for w in every if not w.startswith("--")]
        if rest.lstrip().startswith("[") and (form := _exec_form(rest.strip())) is not None:
            words = form
        if len(words) < 2:
            return
        sources, dest = words[:-1], words[-1]
        dest = posixpath.normpath(posixpath.join(self.workdir, dest))
        origin = next((w.split("=", 1)[1] for w in every if w.startswith("--from=")), None)
        if origin is not None:
            # `COPY --from=builder /app/x ./x`: where the builder got /app/x from, if it did.
            stage = (stages or {}).get(origin.lower())
            for source in sources:
                found = stage.local(posixpath.join(stage.workdir, source)) if stage else None
                if found is None or not (self.repo.root / found).exists():
                    self.assembled = True
                if found is not None:
                    self.copies.append((dest, found))
            return
        context = self._context(sources)
        for source in sources:
            local = context / source.removeprefix("./")
            # A source missing from the repository is a build output (`COPY dist/api api`):
            # it is there in the image the build stage makes, so it maps all the same.
            if "*" in source or ".." in source.split("/"):
                continue
            relative = posixpath.normpath(self.repo.rel(local))
            target = dest
            if local.is_file() and (words[-1].endswith("/") or len(sources) > 1):
                target = posixpath.join(dest, local.name)
            self.copies.append((target, relative))

    def local(self, image_path: str) -> str | None:
        """The repository path an absolute image path came from, or None."""
        image_path = posixpath.normpath(image_path)
        for target, relative in reversed(self.copies):
            if image_path == target or image_path.startswith(target.rstrip("/") + "/"):
                rest = image_path[len(target) :].lstrip("/")
                joined = posixpath.normpath(posixpath.join(relative, rest)) if rest else relative
                return joined
        # `COPY ./backend/app /app/backend/app`: /app/backend is backend, by the names.
        for target, relative in reversed(self.copies):
            if target.startswith(image_path.rstrip("/") + "/"):
                suffix = target[len(image_path.rstrip("/")) + 1 :]
                if relative == suffix:
                    return "."
                prefix = relative[: -len(suffix) - 1]
                same_name = posixpath.basename(prefix) == posixpath.basename(image_path)
                if relative.endswith("/" + suffix) and same_name:
                    return prefix
        return None

    def rewrite(self, argv: list[str], base: str) -> tuple[list[str], str]:
        """argv with image paths made relative to the service; the working dir it needs."""
        here = self.local(self.workdir)
        working_dir = ""
        if here is not None:
            working_dir = posixpath.relpath(here, base) if here != base else ""
        out = []
        for index, word in enumerate(argv):
            pathlike = "/" in word or re.search(r"\.(?:js|mjs|cjs|py|ini|conf|toml)$", word)
            after_node = index > 0 and argv[index - 1] == "node"
            absolute = word if word.startswith("/") else posixpath.join(self.workdir, word)
            mapped = self.local(absolute) if (pathlike or after_node) and index > 0 else None
            if mapped is not None and (word.startswith("/") or here is None):
                start = posixpath.join(base, working_dir) if working_dir else base
                out.append(posixpath.relpath(mapped, start))
            else:
                out.append(word)
        return out, "" if working_dir in (".", "") or working_dir.startswith("..") else working_dir


def dockerfile(repo: Repo, folder: Path, evidence: Evidence) -> None:
    # A production variant, where the repository has one, says how production runs.
    names = ("Dockerfile.prod", "Dockerfile.production", "prod.Dockerfile", "Dockerfile")
    path = next((folder / n for n in names if repo.exists(folder / n)), folder / "Dockerfile")
    context = folder
    if not repo.exists(path) and evidence.dockerfiles:
        # `build: {context: .., dockerfile: docker/Dockerfile}` in a compose file.
        path, context = evidence.dockerfiles[0]
    text = repo.text(path)
    if not text:
        return
    base = repo.rel(folder)
    cmd: tuple[int, list[str] | str] | None = None
    probe: tuple[str, int, int] | None = None  # HEALTHCHECK's path, port and line
    entrypoint: list[str] = []
    port: tuple[int, int] | None = None
    env_port: tuple[int, int] | None = None
    image = _Image(repo, context)
    stages: dict[str, _Image] = {}
    for line, word, rest in _instructions(text):
        if word == "FROM":
            name = rest.split()[0] if rest.split() else ""
            m = re.match(r"^(?:docker\.io/)?(?:library/)?(python|node):(\d+(?:\.\d+)?)", name)
            if m:
                version = m.group(2) if m.group(1) == "python" else m.group(2).split(".")[0]
                evidence.version = (m.group(1), version, Why(f"FROM {name}", repo.rel(path), line))
            cmd, entrypoint, port, env_port, probe = None, [], None, None, None
            image = _Image(repo, context)
            alias = re.search(r"\s[Aa][Ss]\s+(\S+)", rest)
            stages[alias.group(1).lower() if alias else str(len(stages))] = image
        elif word == "WORKDIR":
            image.workdir = posixpath.normpath(posixpath.join(image.workdir, rest.strip("\"'")))
        elif word in ("COPY", "ADD"):
            image.copy(rest, stages)
        elif word == "CMD":
            form = _exec_form(rest)
            cmd = (line, form if form is not None else rest)
        elif word == "ENTRYPOINT":
            form = _exec_form(rest)
            try:
                entrypoint = form if form is not None else shlex.split(rest)
            except ValueError:
                entrypoint = []
        elif word == "HEALTHCHECK" and (m := _PROBE.search(rest)):
            probe = (m.group(2) or "/", int(m.group(1)), line)
        elif word == "EXPOSE" and (m := re.match(r"^(\d{2,5})", rest)):
            port = (int(m.group(1)), line)
        elif word == "ENV" and (m := re.search(r"(?:^|\s)PORT[= ]\"?(\d{2,5})\b", rest)):
            env_port = (int(m.group(1)), line)
    if env_port:
        evidence.port = (env_port[0], Why(f"ENV PORT={env_port[0]}", repo.rel(path), env_port[1]))
    elif port:
        evidence.port = (port[0], Why(f"EXPOSE {port[0]}", repo.rel(path), port[1]))
    # An entrypoint script (docker-entrypoint.sh, tini) only wraps CMD: CMD is the process.
    wrapper = not entrypoint or entrypoint[0].endswith((".sh", "tini", "dumb-init", "entrypoint"))
    process: Process | None = None
    if cmd or (entrypoint and not wrapper):
        line = cmd[0] if cmd else 0
        argv: list[str] = []
        if entrypoint and not wrapper:
            argv = list(entrypoint)
        shell: Runnable | None = None
        if cmd and isinstance(cmd[1], list):
            argv += cmd[1]
        elif cmd:
            shell = runnable(str(cmd[1]))
            try:
                argv += shlex.split(shell.command)
            except ValueError:
                argv = []
        why = Why(f"CMD of {path.name}", repo.rel(path), line)
        script = _script_of(argv)
        if script:
            # `CMD ["./boot.sh"]`: the script's `exec` line is the process, its migrations
            # the release, as for an entrypoint script.
            process = _entrypoint_script(repo, image, script, evidence, why)
        argv, working_dir = image.rewrite(argv, base)
        if argv and process is None:
            process = _add(evidence, "web", shlex.join(argv), why)
        if process and shell:
            # `CMD alembic upgrade head && uvicorn ...`: the chain's parts, kept apart.
            process.working_dir = process.working_dir or shell.working_dir
            process.env = {**shell.env, **process.env}
            if shell.release and not process.release:
                process.release, process.release_why = shell.release, why
        if process and working_dir and not process.working_dir:
            process.working_dir = working_dir
        if process and image.assembled:
            process.assembled = True
    elif entrypoint and wrapper:
        process = _entrypoint_script(repo, image, entrypoint[0], evidence, Why("", repo.rel(path)))
    if process and probe and process.health is None:
        # `HEALTHCHECK CMD curl -f http://localhost:8000/health`: the route the image probes.
        why = Why(f"HEALTHCHECK of {path.name}", repo.rel(path), probe[2])
        process.health, process.health_why = probe[0], why
        if process.port is None:
            process.port, process.port_why = probe[1], why
    if process and env_port:
        # The image set PORT for a command that reads it (uwsgi `$(PORT)`, gunicorn): keep it.
        process.env.setdefault("PORT", str(env_port[0]))


def _script_of(argv: list[str]) -> str:
    """The shell script a command only runs (`./boot.sh`, `sh start.sh`), or ''."""
    if argv and argv[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash"):
        argv = argv[1:]
    return argv[0] if len(argv) == 1 and argv[0].endswith(".sh") else ""


def _entrypoint_script(
    repo: Repo, image: _Image, script: str, evidence: Evidence, why: Why
) -> Process | None:
    """An entrypoint script without CMD: its `exec` line is the process, migrations the release."""
    local = image.local(script if script.startswith("/") else posixpath.join(image.workdir, script))
    if local is None:
        return None
    path = repo.root / local
    process: Process | None = None
    release, release_line = "", 0
    for number, raw in enumerate(repo.text(path).splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if _MIGRATION.search(line) and not release:
            release = runnable(line).command
            release_line = number
        if line.startswith("exec ") and '"$@"' not in line and "$*" not in line:
            process = _add(evidence, "web", line[5:], Why(f"exec line of {local}", local, number))
    if process and release:
        process.release, process.release_why = release, Why(f"{local}", local, release_line)
    return process


def _add(evidence: Evidence, name: str, text: str, why: Why) -> Process | None:
    """A process from a command line of a platform file, split into what runs without a shell."""
    split = runnable(text)
    # A dev server's reload flag (compose files are often the dev set-up) is not production.
    split.command = re.sub(
        r"\s--reload-(?:dir|include|exclude|delay)(?:=\S+|\s+\S+)", "", split.command
    )
    split.command = re.sub(r"\s--reload\b(?!-)(?:=\S+)?", "", split.command)
    if not split.command:
        return None
    if _DEV.search(split.command):
        # `npm run dev`, `next dev`, `nodemon`, `manage.py runserver`: a dev set-up's
        # command says nothing of production (the framework's own start command is used).
        evidence.notes.append(f"{why.file}: `{split.command}` is a development server: not used")
        return None
    process = Process(name=name, command=split.command, why=why, env=split.env)
    process.working_dir = split.working_dir
    if split.port:
        process.port, process.port_why = split.port, why
    if split.release:
        process.release, process.release_why = split.release, why
    for step in split.before:
        process.warnings.append(
            f"`{step}` ran before the command in {why.file}: run it in the build or the release"
        )
    if split.shell:
        process.warnings.append(
            f"the command from {why.file} uses shell syntax, but no shell runs it: "
            "wrap it in a script"
        )
    evidence.processes = [p for p in evidence.processes if p.name != name] + [process]
    return process


# --- compose -------------------------------------------------------------------------------


def compose(repo: Repo, folder: Path, evidence: Evidence) -> None:
    """Services of an existing compose file (here or at the root) that build this folder."""
    # Compose files live beside the code, at the root, or in a docker/ or deploy/ folder.
    places = list(
        dict.fromkeys(
            (folder, repo.root, folder / "docker", repo.root / "docker", repo.root / "deploy")
        )
    )
    for place in places:
        for name in COMPOSE_FILES:
            path = place / name
            text = repo.text(path)
            if not text:
                continue
            try:
                data = yaml.safe_load(text)
            except (yaml.YAMLError, RecursionError):
                evidence.notes.append(f"{repo.rel(path)}: not valid YAML: not read")
                break
            services = get(data, "services")
            if not isinstance(services, dict):
                break
            for key, spec in services.items():
                if not isinstance(spec, dict):
                    continue
                image = str(spec.get("image") or "")
                base = image.rsplit("/", 1)[-1].split(":")[0]
                if base in _DATASTORE_IMAGES and "build" not in spec:
                    store = _DATASTORE_IMAGES[base]
                    evidence.datastores.setdefault(
                        store, repo.why(f"{image} in {name}", path, f"image: {image}")
                    )
                elif "build" in spec and _builds(repo, place, spec.get("build"), folder):
                    spec = _with_script(repo, place, spec)
                    _compose_service(repo, path, str(key), spec, evidence)
                    build = spec.get("build")
                    dockerfile = get(build, "dockerfile")
                    if isinstance(dockerfile, str) and isinstance(build, dict):
                        root = _resolve(place, str(build.get("context") or "."))
                        evidence.dockerfiles.append((_resolve(root, dockerfile), root))
            break


def _with_script(repo: Repo, place: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """`command: /start-celeryworker`, a script the Dockerfile copied there: its command.

    The script's `exec` line, else its last top-level command, is the process; migrations
    before it are the release (a `;` chain of both, as `_add` splits it).
    """
    command = spec.get("command")
    if isinstance(command, list) and len(command) == 1:
        command = command[0]
    if not isinstance(command, str) or len(command.split()) != 1:
        return spec
    build = spec.get("build")
    context = _resolve(
        place, str(get(build, "context") or build if isinstance(build, str) else ".")
    )
    if isinstance(build, dict):
        context = _resolve(place, str(build.get("context") or "."))
    dockerfile = get(build, "dockerfile") if isinstance(build, dict) else None
    script: Path | None = None
    if isinstance(dockerfile, str) or repo.exists(context / "Dockerfile"):
        image = _Image(repo, context)
        for _, word, rest in _instructions(
            repo.text(_resolve(context, dockerfile or "Dockerfile"))
        ):
            if word == "WORKDIR":
                image.workdir = posixpath.normpath(posixpath.join(image.workdir, rest.strip("\"'")))
            elif word in ("COPY", "ADD"):
                image.copy(rest)
        target = command if command.startswith("/") else posixpath.join(image.workdir, command)
        found = image.local(target)
        script = repo.root / found if found else None
    if script is None or not repo.exists(script):
        return spec
    steps = _script_steps(repo.text(script))
    if not steps:
        return spec
    return {**spec, "command": " && ".join(steps)}


def _script_steps(text: str) -> list[str]:
    """The top-level commands of a shell script: migrations and the last command (or exec)."""
    depth, last, release = 0, "", ""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1].rstrip() + " " + line
        else:
            lines.append(line)
    for line in lines:
        if not line or line.startswith("#"):
            continue
        words = line.split()
        opens = words[0] in ("if", "for", "while", "until", "case") or line.endswith("{")
        if opens:
            depth += 1
        if words[0] in ("fi", "done", "esac", "}") or line.startswith("}"):
            depth = max(0, depth - 1)
            continue
        if depth or opens or words[0] in ("set", "echo", "rm", "sleep", "export", "cd", ">&2"):
            continue
        if _MIGRATION.search(line) and not release:
            release = line
            continue
        last = line
        if line.startswith("exec "):
            break
    return [step for step in (release, last) if step]


def _resolve(base: Path, relative: str) -> Path:
    return Path(posixpath.normpath(str(base / relative)))


def _builds(repo: Repo, place: Path, build: Any, folder: Path) -> bool:
    """Whether a compose `build:` builds the project in `folder` (its context or Dockerfile)."""
    context = build if isinstance(build, str) else get(build, "context")
    context = context if isinstance(context, str) else "."
    dockerfile = get(build, "dockerfile") if isinstance(build, dict) else None
    root = Path(posixpath.normpath(str(place / context)))
    if isinstance(dockerfile, str):
        path = Path(posixpath.normpath(str(root / dockerfile)))
        where = path.parent
        if where == folder:
            return True
        # docker/backend.Dockerfile with `context: .` that copies apps/backend/ builds
        # apps/backend: the folders its COPY lines take the project from say which.
        copied = _copied_projects(repo, path, root)
        if folder != root and folder in copied:
            return True
        if root == folder and copied and folder not in copied:
            return False
        # docker/Dockerfile with `context: ..` builds the project at the context, unless the
        # Dockerfile's folder is a project of its own (backend/Dockerfile, `context: .`).
        return root == folder and not any(repo.exists(where / m) for m in MANIFESTS)
    return root == folder


MANIFESTS = ("pyproject.toml", "requirements.txt", "Pipfile", "package.json")


def _copied_projects(repo: Repo, dockerfile: Path, context: Path) -> set[Path]:
    """The project folders (with a manifest) a Dockerfile's COPY/ADD lines copy from."""
    found: set[Path] = set()
    for _, word, rest in _instructions(repo.text(dockerfile)):
        if word not in ("COPY", "ADD") or "--from" in rest:
            continue
        try:
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
        except ValueError:
            continue
        for source in words[:-1]:
            if "*" in source or ".." in source.split("/"):
                continue
            place = _resolve(context, source.removeprefix("./"))
            if repo.exists(place) and not place.is_dir():
                place = place.parent
            # The nearest folder at or above the source that has a manifest of its own.
            while place != context and place.is_relative_to(context):
                if any(repo.exists(place / m) for m in MANIFESTS):
                    found.add(place)
                    break
                place = place.parent
            else:
                found.add(context)
    return found


def _compose_service(
    repo: Repo, path: Path, key: str, spec: dict[str, Any], evidence: Evidence
) -> None:
    command = spec.get("command")
    if isinstance(command, list):
        command = shlex.join(str(c) for c in command)
    ports = spec.get("ports")
    port = None
    for entry in ports if isinstance(ports, list) else []:
        target = get(entry, "target") if isinstance(entry, dict) else None
        text = str(target if target is not None else entry).split("/")[0]
        if (m := re.search(r"(\d{2,5})$", text)) and not isinstance(entry, bool):
            port = int(m.group(1))
            break
    process: Process | None = None
    if isinstance(command, str) and command.strip():
        needle = command.split()[0]
        why = repo.why(f"`command:` of {key} in {path.name}", path, f"command: {needle}")
        if why.line == 0:
            why = repo.why(f"`command:` of {key} in {path.name}", path, needle)
        process = _add(evidence, f"compose:{key}", command, why)
    if port and evidence.port is None:
        evidence.port = (port, repo.why(f"ports of {key} in {path.name}", path, str(port)))
    test = get(spec, "healthcheck", "test")
    probe = " ".join(str(t) for t in test) if isinstance(test, list) else str(test or "")
    if process is None and (m := _PROBE.search(probe)):
        process = Process(name=f"compose:{key}", command="", why=Why(""))
        evidence.processes.append(process)
    if process is not None and (m := _PROBE.search(probe)):
        why = repo.why(f"healthcheck of {key} in {path.name}", path, m.group(0))
        process.health, process.health_why = m.group(2) or "/", why
        if process.port is None:
            process.port, process.port_why = int(m.group(1)), why
    workdir = spec.get("working_dir")
    if process and isinstance(workdir, str) and not process.working_dir:
        process.working_dir = workdir
    environment = spec.get("environment")
    pairs: list[tuple[str, str | None]] = []
    if isinstance(environment, dict):
        pairs = [(str(k), None if v is None else str(v)) for k, v in environment.items()]
    elif isinstance(environment, list):
        for item in strings(environment):
            k, sep, v = item.partition("=")
            pairs.append((k, v if sep else None))
    literal = sorted(k for k, v in pairs if is_secret_name(k) and v and "${" not in v)
    if literal:
        evidence.secrets = sorted(set(evidence.secrets) | set(literal))
        evidence.secrets_why = repo.why(
            f"literal values in {path.name} (kept out of shipforge.yaml: move them to a "
            "secret store)",
            path,
            literal[0],
        )


# --- Procfile, fly.toml, app.json, render.yaml ---------------------------------------------


def procfile(repo: Repo, folder: Path, evidence: Evidence) -> None:
    path = folder / "Procfile"
    for number, line in enumerate(repo.text(path).splitlines(), 1):
        if not (m := re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())):
            continue
        kind, command = m.group(1), m.group(2).strip()
        why = Why(f"Procfile {kind}:", repo.rel(path), number)
        if kind == "release":
            # `yes | cmd` answers prompts a release must not ask anyway: the command is cmd.
            command = re.sub(r"^yes(?:\s+(?:\"[^\"]*\"|'[^']*'|\S+))?\s*\|\s*", "", command)
            split = runnable(command)
            evidence.release = (split.command, why)
            continue
        process = _add(evidence, kind, command, why)
        if process and kind == "web":
            process.web = True


def fly(repo: Repo, folder: Path, evidence: Evidence) -> None:
    path = folder / "fly.toml"
    data = repo.toml(path)
    if not data:
        return
    release = get(data, "deploy", "release_command")
    if isinstance(release, str) and release.strip():
        evidence.release = (
            runnable(release).command,
            repo.why("fly.toml", path, "release_command"),
        )
    port = get(data, "http_service", "internal_port")
    services = get(data, "services")
    if port is None and isinstance(services, list) and services:
        port = get(services[0], "internal_port")
    if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
        evidence.port = (port, repo.why("internal_port in fly.toml", path, "internal_port"))
    processes = get(data, "processes")
    for key, command in (processes or {}).items() if isinstance(processes, dict) else []:
        if isinstance(command, str):
            name = "web" if key == "app" else str(key)
            _add(evidence, name, command, repo.why(f"fly.toml process {key}", path, command[:30]))
    checks = get(data, "http_service", "checks")
    for check in checks if isinstance(checks, list) else []:
        if isinstance(route := get(check, "path"), str) and route.startswith("/"):
            web = evidence.process("web")
            if web:
                web.health, web.health_why = route, repo.why("fly.toml check", path, route)


def app_json(repo: Repo, folder: Path, evidence: Evidence) -> None:
    """Heroku's app.json: the names of the config it asks for (never the values)."""
    path = folder / "app.json"
    env = get(repo.json(path), "env")
    if not isinstance(env, dict):
        return
    names = []
    for key, spec in env.items():
        generated = get(spec, "generator") == "secret"
        if generated or is_secret_name(str(key)):
            names.append(str(key))
    if names:
        evidence.secrets = sorted(set(evidence.secrets) | set(names))
        evidence.secrets_why = repo.why("env of app.json", path, names[0])


def render(repo: Repo, folder: Path, evidence: Evidence) -> None:
    """render.yaml: start, pre-deploy and health of the service whose rootDir is this folder."""
    path = repo.root / "render.yaml"
    text = repo.text(path)
    if not text:
        return
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        evidence.notes.append("render.yaml: not valid YAML: not read")
        return
    here = repo.rel(folder)
    for spec in get(data, "services") or [] if isinstance(get(data, "services"), list) else []:
        if not isinstance(spec, dict):
            continue
        kind = spec.get("type")
        if kind in ("redis", "keyvalue"):
            evidence.datastores.setdefault("redis", repo.why("render.yaml", path, str(kind)))
            continue
        root_dir = str(spec.get("rootDir") or ".").strip("/") or "."
        if root_dir != here or not isinstance(spec.get("startCommand"), str):
            continue
        name = "web" if kind == "web" else dns(str(spec.get("name") or "worker"))
        start = str(spec["startCommand"])
        process = _add(evidence, name, start, repo.why("startCommand in render.yaml", path, start))
        if process is None:
            continue
        process.web = kind == "web"
        if isinstance(pre := spec.get("preDeployCommand"), str):
            process.release = runnable(pre).command
            process.release_why = repo.why("preDeployCommand in render.yaml", path, pre)
        if isinstance(route := spec.get("healthCheckPath"), str) and route.startswith("/"):
            process.health = route
            process.health_why = repo.why("healthCheckPath in render.yaml", path, route)
    if get(data, "databases"):
        evidence.datastores.setdefault("postgres", repo.why("render.yaml", path, "databases"))


def dns(text: str) -> str:
    from generator.detect.base import dns_label

    return dns_label(text) or "worker"


def read(repo: Repo, folder: Path) -> Evidence:
    """All the platform evidence of one project folder, strongest last-wins per process name."""
    evidence = Evidence()
    for reader in (app_json, render, fly, procfile, compose, dockerfile):
        reader(repo, folder, evidence)
    # A compose service without a command (it runs the image's CMD) still says how the web
    # process is probed and published: its healthcheck and port belong to that process.
    web = evidence.process("web")
    for process in [p for p in evidence.processes if not p.command]:
        evidence.processes.remove(process)
        if web is not None and web.health is None and process.health:
            web.health, web.health_why = process.health, process.health_why
        if web is not None and web.port is None and process.port:
            web.port, web.port_why = process.port, process.port_why
    # A compose service running what a Procfile (or another file) already declares
    # (`celery -A config.celery worker -l INFO` beside Procfile's `... worker -l info -Q x`)
    # is the same process in a local set-up, not one more.
    declared = [_signature(p.command) for p in evidence.processes if not _composed(p)]
    for process in [p for p in evidence.processes if _composed(p)]:
        if _signature(process.command) in declared:
            evidence.processes.remove(process)
            evidence.notes.append(
                f"{process.why.file}: `{process.command}` repeats a process declared elsewhere"
            )
    return evidence


def _composed(process: Process) -> bool:
    return process.name.startswith("compose:")


def _signature(command: str) -> tuple[str, ...]:
    """What a command runs, without its tuning flags: its first four words, lowercased."""
    try:
        words = shlex.split(command.lower())
    except ValueError:
        words = command.lower().split()
    if words[:2] in (["python", "-m"], ["python3", "-m"]):
        words = words[2:]
    return tuple(words[:4])
