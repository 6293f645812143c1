"""pm2: ecosystem.config.js, one PM2 app per service, with `pm2 deploy` settings per environment.

The decisions live here, in the view: how a descriptor command becomes PM2's script, args and
exec mode, how replicas run (Node: cluster instances; a Python web service: workers inside one
server process; a Python worker: independent processes), and what `pm2 deploy` installs on the
host. The template only writes these values out as JavaScript.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from generator import naming
from generator.errors import Issue
from generator.formats import js_str
from generator.model import Image, Project, Service
from generator.render import Rendered

TEMPLATES = ("*ecosystem.config.js*",)

# PM2 stops a process with one signal, then SIGKILL after the app's kill_timeout (the
# descriptor's stop_grace). PM2 7 has no per-app signal: its daemon reads PM2_KILL_SIGNAL when
# it starts (default SIGINT), so `rollout` starts (or restarts) the daemon with SIGTERM, as
# docker and Kubernetes send: gunicorn treats SIGINT as a quick shutdown that drops in-flight
# requests, SIGTERM as a graceful one (gunicorn docs, "Signal Handling"); uvicorn, hypercorn
# and Node servers written for containers stop gracefully on SIGTERM.
KILL_SIGNAL = "SIGTERM"
# How long `pm2 reload` waits for a new cluster instance to listen before it stops the old one.
LISTEN_TIMEOUT_MS = 30_000
# A process that exits sooner than min_uptime is an unstable restart; after max_restarts of
# them PM2 stops it as "errored", which the post-deploy verification reports.
MIN_UPTIME_MS = 5_000
MAX_RESTARTS = 10

# Python servers whose own worker processes carry the replicas of a web service, by the name
# of their program (or of the module run by `python -m`). All of them take `--workers N`.
PYTHON_SERVERS = ("uvicorn", "gunicorn", "hypercorn", "granian")
_PYTHON = re.compile(r"^python[0-9.]*$")

# Node options that take their value as the next word; any other option stands alone.
_NODE_VALUE_OPTIONS = frozenset(
    {
        "-r",
        "--require",
        "--import",
        "--loader",
        "--experimental-loader",
        "--env-file",
        "--title",
        "--inspect-port",
        "--conditions",
        "-C",
        "--input-type",
    }
)
# Options after which node runs no script file (code given inline, a REPL, the test runner).
_NODE_NO_FILE = frozenset(
    {"-e", "--eval", "-p", "--print", "-i", "--interactive", "--test", "--run", "-"}
)

# The fixed post-deploy hook: pm2-deploy passes it unquoted through two shells and cuts it at
# the first quote, so it holds no descriptor value and no quote; the work happens in
# `node ecosystem.config.js install|release|rollout`, which reads the values from the file
# itself. `rollout` tries the new release beside the old one, reloads, verifies and only then
# runs `pm2 save`.
POST_DEPLOY = (
    "node ecosystem.config.js install && node ecosystem.config.js release"
    " && node ecosystem.config.js rollout"
)

# pm2-logrotate, installed once per host by `rollout` (PM2 runs it as a module): rotated at
# 10 MB or daily, 14 files kept, compressed.
LOGROTATE_VERSION = "3.0.0"
LOGROTATE_SETTINGS = (
    ("max_size", "10M"),
    ("retain", "14"),
    ("compress", "true"),
    ("rotateInterval", "0 0 * * *"),
)

# The variables `pm2 deploy` reads, in this order; PM2_DEPLOY_<KEY>_<ENVIRONMENT> wins.
DEPLOY_VARIABLES = ("HOST", "USER", "REPO", "PATH")


def _node_script(argv: tuple[str, ...]) -> tuple[str, list[str], list[str]] | None:
    """`node [options] file [args]` as (file, node options, args); None for anything else."""
    if PurePosixPath(argv[0]).name not in ("node", "nodejs"):
        return None
    options: list[str] = []
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        option = argv[index]
        if option == "--":
            index += 1
            break
        if option in _NODE_NO_FILE:
            return None
        options.append(option)
        index += 1
        if option in _NODE_VALUE_OPTIONS and index < len(argv):
            options.append(argv[index])
            index += 1
    if index >= len(argv):
        return None
    return argv[index], options, list(argv[index + 1 :])


def python_server(argv: tuple[str, ...]) -> str:
    """The known Python server a command runs (uvicorn, gunicorn, ...), or ""."""
    program = PurePosixPath(argv[0]).name
    if _PYTHON.match(program) and len(argv) > 2 and argv[1] == "-m":
        program, rest = argv[2], argv[3:]
    else:
        rest = argv[1:]
    if program in PYTHON_SERVERS:
        return program
    if program == "fastapi" and rest[:1] == ("run",):
        return "fastapi run"
    return ""


def _sets_workers(args: list[str]) -> bool:
    return any(
        a == "--workers" or a.startswith("--workers=") or (a.startswith("-w") and a[:2] != "--")
        for a in args
    )


def _settings(service: Service, node_env: str) -> list[dict[str, str]]:
    """A service's configuration as PM2 env entries, sorted; the descriptor's values win."""
    values: dict[str, str] = {}
    if service.runtime == "node":
        values["NODE_ENV"] = node_env
    else:
        # Without it Python buffers stdout and PM2's log files lag behind.
        values["PYTHONUNBUFFERED"] = "1"
    if service.web:
        values["PORT"] = str(service.port)
    python_web = service.web and service.runtime == "python"
    if python_web and service.replicas > 1 and not _sets_workers(list(service.argv[1:])):
        # uvicorn and gunicorn read it as their default worker count; so can any server.
        values["WEB_CONCURRENCY"] = str(service.replicas)
    values.update({s.name: s.value for s in service.env})
    return [{"name": k, "value": values[k]} for k in sorted(values)]


def _spaced(text: str) -> bool:
    return any(char.isspace() for char in text)


def _fork_note(service: Service, why: str) -> str:
    replicas = service.replicas
    if service.web and replicas > 1:
        return (
            f"fork mode: {why}; replicas {replicas} would need {replicas} listeners on port "
            f"{service.port}, so one process runs"
        )
    return f"fork mode: {why}; {replicas} process(es)"


def _app(project: Project, service: Service) -> dict[str, Any]:
    """One PM2 app: how it is launched, how many processes, with which settings."""
    replicas, argv = service.replicas, service.argv
    notes: list[str] = []
    node_args: list[str] = []
    # PM2 runs a `script` that contains a space through `bash -c`, dropping the args: such a
    # program is started by `env` (or node itself), which runs it without a shell.
    venv = False
    if service.runtime == "node":
        launch = _node_script(argv)
        if launch and not _spaced(launch[0]):
            script, node_args, args = launch
            interpreter, exec_mode, instances = "", "cluster", replicas
            notes.append(
                f"cluster mode: {replicas} instance(s)"
                + (f" sharing port {service.port}" if service.web else "")
                + ", reloaded one at a time by `pm2 reload`"
            )
        else:
            if launch:
                script, args = "node", [*launch[1], launch[0], *launch[2]]
                why = "PM2 cannot cluster a file whose name has a space"
            else:
                script, args = argv[0], list(argv[1:])
                why = f"`{argv[0]}` is not `node <file>`, so PM2 cannot cluster it"
            if _spaced(script):
                script, args = "env", list(argv)
            interpreter, exec_mode = "none", "fork"
            instances = 1 if service.web else replicas
            notes.append(_fork_note(service, why))
    else:
        script, args, interpreter, exec_mode = argv[0], list(argv[1:]), "none", "fork"
        venv = not _spaced(script)
        if not venv:
            script, args = "env", list(argv)
        if service.web:
            instances = 1
            server = python_server(argv)
            if replicas > 1 and server and not _sets_workers(args):
                args += ["--workers", str(replicas)]
                notes.append(
                    f"replicas {replicas}: {replicas} {server} workers inside one process "
                    f"(--workers {replicas}, added to the command)"
                )
            elif replicas > 1 and server:
                notes.append(f"replicas {replicas}: the command sets its own {server} worker count")
            elif replicas > 1:
                notes.append(
                    f"replicas {replicas}: `{argv[0]}` is not a server shipforge knows "
                    f"({', '.join(PYTHON_SERVERS)}, fastapi run), so one process runs with "
                    f"WEB_CONCURRENCY={replicas}: make it start that many workers"
                )
        else:
            instances = replicas
            notes.append(f"{replicas} independent process(es)")
    if service.autoscale:
        # `pm2 scale` only works where instances share the port (cluster mode) or bind none:
        # a second fork-mode server on the same port crash-loops on EADDRINUSE.
        if exec_mode == "cluster" or not service.web:
            how = f"`pm2 scale {naming.pm2_app(project.name, service.name)} <n>`, up to {service.autoscale.max}"
        else:
            how = "raise replicas (server workers) and redeploy; `pm2 scale` would crash-loop on the port"
        notes.append(f"autoscale is not done by PM2: {how}")
    if service.web and service.runtime == "python" and replicas == 1:
        notes.append("one process")
    health = service.health or "a connection to the port"
    kind = f"web, port {service.port}, health {health}" if service.web else "worker"
    secrets = list(dict.fromkeys((*service.datastore_secrets, *service.secrets)))
    return {
        "service": service.name,
        "name": naming.pm2_app(project.name, service.name),
        "runtime": service.runtime,
        "cwd": service.path,
        "script": script,
        "args": args,
        "node_args": node_args,
        "interpreter": interpreter,
        "venv": venv,
        "exec_mode": exec_mode,
        "instances": instances,
        "max_memory_restart": f"{service.memory_mib}M",
        "kill_timeout": service.stop_grace * 1000,
        "listen_timeout": LISTEN_TIMEOUT_MS,
        "min_uptime": MIN_UPTIME_MS,
        "max_restarts": MAX_RESTARTS,
        # A canary instance can run beside the live ones only where several instances are
        # normal: cluster apps (one shared port) and multi-process workers (no port).
        "canary": exec_mode == "cluster" or (not service.web and instances > 1),
        "web": service.web,
        "port": service.port,
        "health": service.health,
        "env": _settings(service, "development"),
        "env_production": _settings(service, "production"),
        "secrets": secrets,
        "comment": f"{service.name} ({kind}): {'; '.join(notes)}.",
    }


def _install(image: Image) -> dict[str, Any]:
    """What `node ecosystem.config.js install` runs in one build context, as the Dockerfile does."""
    manager, version = image.package_manager, image.version
    env: dict[str, str] = {}
    steps: list[list[str]]
    if manager == "pip":
        # As the Dockerfile: requirements.txt when there is one, else the pyproject.toml project.
        steps = [
            [f"python{version}", "-m", "venv", ".venv"],
            [
                "sh",
                "-c",
                "if [ -f requirements.txt ]; then .venv/bin/pip install -r requirements.txt; "
                "else .venv/bin/pip install .; fi",
            ],
        ]
    elif manager == "poetry":
        # The project itself too (src layouts, console scripts); a package-mode = false project
        # has none and Poetry skips it.
        env = {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "POETRY_NO_INTERACTION": "1"}
        steps = [
            ["poetry", "env", "use", f"python{version}"],
            ["poetry", "install", "--only", "main"],
        ]
    elif manager == "uv":
        # --locked: a uv.lock that no longer matches pyproject.toml fails the install.
        steps = [["uv", "sync", "--locked", "--no-dev", "--python", version]]
    elif manager == "npm":
        steps = [["npm", "ci", *([] if image.build else ["--omit=dev"])]]
    elif manager == "pnpm":
        steps = [["pnpm", "install", "--frozen-lockfile", *([] if image.build else ["--prod"])]]
    else:
        # As the Dockerfile: Yarn 2+ has no --frozen-lockfile/--production, and installs only
        # the production dependencies through `workspaces focus` (built into Yarn 4).
        classic = "yarn install --frozen-lockfile --non-interactive"
        berry = "yarn install --immutable"
        if not image.build:
            classic += " --production"
            berry += " && yarn workspaces focus --all --production"
        steps = [["sh", "-c", f'case "$(yarn --version)" in 1.*) {classic} ;; *) {berry} ;; esac']]
    if image.build:
        # The build is a shell command line, as in the Dockerfile's RUN.
        steps.append(["sh", "-c", image.build])
    return {
        "cwd": image.path,
        "runtime": image.runtime,
        "services": list(image.services),
        "env": [{"name": k, "value": env[k]} for k in sorted(env)],
        "steps": steps,
    }


def view(project: Project) -> dict[str, Any]:
    """Everything the ecosystem template writes, decided once."""
    return {
        "apps": [_app(project, service) for service in project.services],
        "installs": [_install(image) for image in project.images],
        "releases": [
            {
                "service": s.name,
                "app": naming.pm2_app(project.name, s.name),
                "dir": s.path,
                "python": s.runtime == "python",
                "argv": list(s.release_argv),
            }
            for s in project.services
            if s.release
        ],
        "environments": [
            {
                "name": e.name,
                "suffix": e.name.upper().replace("-", "_"),
                "ref": f"origin/{e.branch}",
            }
            for e in project.environments
        ],
        "deploy_variables": [f"PM2_DEPLOY_{key}" for key in DEPLOY_VARIABLES],
        "secrets": list(project.secrets),
        "post_deploy": POST_DEPLOY,
        "kill_signal": KILL_SIGNAL,
        "logrotate": {
            "module": f"pm2-logrotate@{LOGROTATE_VERSION}",
            "settings": [{"name": k, "value": v} for k, v in LOGROTATE_SETTINGS],
        },
    }


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """The file says it is generated, has an app per service and a deploy entry per environment."""
    issues = []
    for file in files:
        if not file.content.startswith("// Generated by shipforge"):
            issues.append(Issue("the generated-file marker is missing", file.path, 1))
        for service in project.services:
            name = naming.pm2_app(project.name, service.name)
            if f"name: {js_str(name)}," not in file.content:
                issues.append(Issue(f"no PM2 app for service {service.name}", file.path))
        for environment in project.environments:
            if f"{js_str(environment.name)}: deployTo(" not in file.content:
                issues.append(
                    Issue(f"no deploy entry for environment {environment.name}", file.path)
                )
    return issues
