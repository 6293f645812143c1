"""PM2: ecosystem.config.js loads in node, runs under real PM2, and deploys with `pm2 deploy`.

The fast tests read the target's view and `require()` the generated file with node. The slow
tier starts every PM2 example (and the hostile fixture) with real pm2 under a temporary
PM2_HOME against stand-in apps (tests/fixtures/pm2/standin.*) that honour the descriptor's
commands and ports, kills a process of every app to see PM2 restart it, and runs a real
`pm2 deploy` (setup, deploy, redeploy, revert) to localhost.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from generator import naming, render
from generator.formats import dotenv
from generator.lint import detect_secrets
from generator.loader import load, validate
from generator.model import Project, Service, build_project
from generator.targets import context
from generator.targets import pm2 as pm2_target
from tests.conftest import EXAMPLES, ROOT, generate_tree
from tests.toolcheck import require

FIXTURES = ROOT / "tests" / "fixtures" / "pm2"
NODE_BIN = ROOT / ".tools" / "npm" / "node_modules" / ".bin"
PM2_BIN = NODE_BIN / "pm2"
HOSTILE = FIXTURES / "hostile" / "shipforge.yaml"


def _pm2_enabled(descriptor: Path) -> bool:
    data = yaml.safe_load(descriptor.read_text())
    return bool((data.get("targets") or {}).get("pm2"))


# Every example with PM2 (new ones join automatically) and the hostile fixture.
PM2_DESCRIPTORS = [e / "shipforge.yaml" for e in EXAMPLES if _pm2_enabled(e / "shipforge.yaml")]
RUNNABLE = [*PM2_DESCRIPTORS, HOSTILE]


def _id(descriptor: Path) -> str:
    return descriptor.parent.name


def need(tool: str, path: Path | str | None) -> str:
    """The tool's path; a missing tool skips locally and fails under CI."""
    found = str(path) if path and Path(path).exists() else None
    if found is None:
        reason = f"{tool} is not installed (run tests/install-tools.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def node() -> str:
    return need("node", shutil.which("node"))


def project_of(data: dict[str, Any]) -> Project:
    return build_project(validate(data, "test"))


def descriptor(**services: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "project": {"name": "demo"},
        "services": services,
        "targets": {"docker": False, "compose": False, "env": False, "pm2": True},
    }


def app_view(service: dict[str, Any]) -> dict[str, Any]:
    view = pm2_target.view(project_of(descriptor(svc=service)))
    app: dict[str, Any] = view["apps"][0]
    return app


def env_of(app: dict[str, Any], block: str = "env_production") -> dict[str, str]:
    return {s["name"]: s["value"] for s in app[block]}


# --- the view: how commands and replicas become PM2 apps ---------------------------------


def test_node_file_runs_in_cluster_mode_with_one_instance_per_replica() -> None:
    app = app_view(
        {
            "runtime": "node",
            "command": "node --enable-source-maps -r dotenv/config dist/main.js --port 3000",
            "port": 3000,
            "replicas": 3,
            "memory": "1Gi",
        }
    )
    assert (app["exec_mode"], app["instances"]) == ("cluster", 3)
    assert app["script"] == "dist/main.js"
    assert app["node_args"] == ["--enable-source-maps", "-r", "dotenv/config"]
    assert app["args"] == ["--port", "3000"]
    assert app["max_memory_restart"] == "1024M"
    assert env_of(app)["NODE_ENV"] == "production"
    assert env_of(app, "env")["NODE_ENV"] == "development"
    assert env_of(app)["PORT"] == "3000"


@pytest.mark.parametrize(
    ("command", "web", "instances"),
    [
        ("pnpm --filter web start", True, 1),  # N listeners on one port need cluster mode
        ("pnpm --filter jobs start", False, 3),
        ("node -e require('./x')", False, 3),
    ],
)
def test_node_commands_that_are_not_a_file_run_in_fork_mode(
    command: str, web: bool, instances: int
) -> None:
    service: dict[str, Any] = {"runtime": "node", "command": command, "replicas": 3}
    if command.startswith("pnpm"):
        service["package_manager"] = "pnpm"  # a pnpm command needs pnpm (and its lockfile)
    if web:
        service["port"] = 3000
    app = app_view(service)
    assert (app["exec_mode"], app["interpreter"], app["instances"]) == ("fork", "none", instances)
    assert [app["script"], *app["args"]] == command.replace("'", "").split()
    assert "not `node <file>`" in app["comment"]


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (
            "uvicorn app:app --host 0.0.0.0 --port 8000",
            ["app:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"],
        ),
        ("gunicorn app:app -b :8000", ["app:app", "-b", ":8000", "--workers", "4"]),
        ("python -m hypercorn app:app", ["-m", "hypercorn", "app:app", "--workers", "4"]),
        ("fastapi run app/main.py", ["run", "app/main.py", "--workers", "4"]),
        ("gunicorn app:app -w 2", ["app:app", "-w", "2"]),  # the command's own count stays
        ("uvicorn app:app --workers=8", ["app:app", "--workers=8"]),
    ],
)
def test_python_web_replicas_are_server_workers_in_one_process(
    command: str, args: list[str]
) -> None:
    app = app_view({"runtime": "python", "command": command, "port": 8000, "replicas": 4})
    assert (app["exec_mode"], app["instances"], app["interpreter"]) == ("fork", 1, "none")
    assert app["args"] == args
    own_count = "-w" in args or "--workers=8" in args
    assert ("WEB_CONCURRENCY" in env_of(app)) is not own_count


def test_python_web_server_shipforge_does_not_know_gets_web_concurrency_and_a_note() -> None:
    app = app_view({"runtime": "python", "command": "python serve.py", "port": 8000, "replicas": 3})
    assert app["instances"] == 1 and app["args"] == ["serve.py"]
    assert env_of(app)["WEB_CONCURRENCY"] == "3"
    assert "WEB_CONCURRENCY=3" in app["comment"]


def test_python_workers_are_separate_processes_of_the_virtualenv() -> None:
    app = app_view({"runtime": "python", "command": "python -m src.worker", "replicas": 2})
    assert (app["exec_mode"], app["instances"], app["script"]) == ("fork", 2, "python")
    assert app["args"] == ["-m", "src.worker"]
    assert app["kill_timeout"] == 30_000
    assert app["canary"]  # several worker processes: one more beside them is safe
    assert env_of(app)["PYTHONUNBUFFERED"] == "1"


def test_stop_grace_sets_kill_timeout_and_scale_advice_fits_the_exec_mode() -> None:
    view = pm2_target.view(project_of(descriptor(w={"runtime": "python", "command": "w"})))
    assert view["kill_signal"] == "SIGTERM"  # PM2 7: the daemon's PM2_KILL_SIGNAL, for every app
    worker = app_view({"runtime": "python", "command": "python -m w", "stop_grace": 600})
    assert worker["kill_timeout"] == 600_000 and not worker["canary"]
    python_web = app_view(
        {
            "runtime": "python",
            "command": "uvicorn app:api",
            "port": 8000,
            "autoscale": {"min": 1, "max": 4},
        }
    )
    assert "pm2 scale" not in python_web["comment"].replace("`pm2 scale` would", "")
    assert "raise replicas" in python_web["comment"] and not python_web["canary"]
    node_web = app_view(
        {
            "runtime": "node",
            "command": "node server.js",
            "port": 3000,
            "autoscale": {"min": 2, "max": 4},
        }
    )
    assert "`pm2 scale " in node_web["comment"] and node_web["canary"]


def test_descriptor_env_wins_over_the_defaults_and_secrets_are_names_only() -> None:
    project = project_of(
        {
            **descriptor(
                api={
                    "runtime": "node",
                    "command": "node a.js",
                    "port": 3000,
                    "env": {"NODE_ENV": "staging", "PORT": "3001"},
                    "secrets": ["TOKEN"],
                    "uses": ["postgres"],
                }
            ),
            "datastores": {"postgres": {}},
        }
    )
    app = pm2_target.view(project)["apps"][0]
    assert env_of(app)["NODE_ENV"] == "staging" and env_of(app)["PORT"] == "3001"
    assert app["secrets"] == ["DATABASE_URL", "TOKEN"]
    assert "DATABASE_URL" not in env_of(app) and "TOKEN" not in env_of(app)


def test_install_steps_follow_the_package_manager_and_keep_the_build_a_shell_line() -> None:
    project = project_of(
        descriptor(
            web={
                "runtime": "node",
                "package_manager": "pnpm",
                "build": "pnpm -r run build && echo done",
                "command": "node a.js",
            },
            api={"runtime": "python", "path": "api", "version": "3.11", "command": "python -m a"},
        )
    )
    installs = {i["cwd"]: i for i in pm2_target.view(project)["installs"]}
    assert installs["."]["steps"] == [
        ["pnpm", "install", "--frozen-lockfile"],
        ["sh", "-c", "pnpm -r run build && echo done"],
    ]
    assert installs["api"]["steps"][0] == ["python3.11", "-m", "venv", ".venv"]
    assert "else .venv/bin/pip install .; fi" in installs["api"]["steps"][1][2]
    for manager, step in (
        ("poetry", ["poetry", "install", "--only", "main"]),
        ("uv", ["uv", "sync", "--locked", "--no-dev", "--python", "3.12"]),
    ):
        service = {"runtime": "python", "package_manager": manager, "command": "python -m a"}
        (install,) = pm2_target.view(project_of(descriptor(api=service)))["installs"]
        assert install["steps"][-1] == step, "the project itself must be installed too"
    # Yarn 2+ has neither --frozen-lockfile nor --production: the step asks yarn its major.
    yarn = {"runtime": "node", "package_manager": "yarn", "command": "node a.js"}
    (install,) = pm2_target.view(project_of(descriptor(web=yarn)))["installs"]
    (step,) = install["steps"]
    assert step[:2] == ["sh", "-c"]
    assert "1.*) yarn install --frozen-lockfile --non-interactive --production ;;" in step[2]
    assert "*) yarn install --immutable && yarn workspaces focus --all --production ;;" in step[2]


def test_check_reports_a_missing_app_or_deploy_entry() -> None:
    project = load(HOSTILE)
    env = render.environment()
    variables = context(project)
    rendered = render.render(env, render.plan(env, variables), variables)
    files = [f for f in rendered if f.path == "ecosystem.config.js"]
    assert pm2_target.check(project, files) == []
    broken = (
        files[0]
        .content.replace('name: "odd-values-api",', "")
        .replace('"production": deployTo(', "")
    )
    messages = [i.message for i in pm2_target.check(project, [replace(files[0], content=broken)])]
    assert messages == ["no PM2 app for service api", "no deploy entry for environment production"]


def test_post_deploy_survives_pm2_deploy_shell_handling() -> None:
    # pm2-deploy embeds the config as JSON in `echo '...'`, cuts values at the first double
    # quote and word-splits the hook unquoted: no quote, backslash, glob or `$` may appear.
    assert not re.search(r"""['"\\*?\[\]$`]""", pm2_target.POST_DEPLOY)
    assert pm2_target.POST_DEPLOY.endswith("&& node ecosystem.config.js rollout")


# --- the generated file, loaded by node ----------------------------------------------------


@pytest.fixture(scope="module")
def ecosystems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pm2-generated")
    return {
        _id(d): generate_tree(d, root / _id(d)) / "ecosystem.config.js"
        for d in [*PM2_DESCRIPTORS, HOSTILE]
    }


def node_eval(
    ecosystem: Path, body: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `body` in node with `c` = require(ecosystem), in a clean environment plus env."""
    script = f"const c = require({json.dumps(str(ecosystem))});\n{body}"
    clean = {"PATH": os.environ["PATH"], "HOME": str(ecosystem.parent), **(env or {})}
    return subprocess.run(
        [node(), "-e", script],
        capture_output=True,
        text=True,
        env=clean,
        cwd=ecosystem.parent,
        timeout=30,
        check=False,
    )


def apps_of(ecosystem: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    done = node_eval(ecosystem, "process.stdout.write(JSON.stringify(c.apps));", env)
    assert done.returncode == 0, done.stderr
    apps: list[dict[str, Any]] = json.loads(done.stdout)
    return apps


def deploy_of(ecosystem: Path, environment: str, env: dict[str, str]) -> dict[str, Any]:
    body = (
        f"const d = c.deploy[{json.dumps(environment)}];\n"
        "let out;\n"
        "try { out = JSON.parse(JSON.stringify(d)); } catch (e) { out = { error: e.message }; }\n"
        "process.stdout.write(JSON.stringify(out));"
    )
    done = node_eval(ecosystem, body, env)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("source", [*PM2_DESCRIPTORS, HOSTILE], ids=_id)
def test_ecosystem_is_valid_javascript_with_one_app_per_service(
    source: Path, ecosystems: dict[str, Path]
) -> None:
    ecosystem = ecosystems[_id(source)]
    assert subprocess.run([node(), "--check", str(ecosystem)], check=False).returncode == 0
    assert ecosystem.read_text().startswith("// Generated by shipforge")
    project = load(source)
    apps = apps_of(ecosystem)
    assert [a["name"] for a in apps] == [
        naming.pm2_app(project.name, s.name) for s in project.services
    ]
    for app, service in zip(apps, project.services, strict=True):
        assert app["namespace"] == project.name
        assert Path(app["cwd"]) == ecosystem.parent / service.path
        assert app["max_memory_restart"] == f"{service.memory_mib}M"
        assert app["kill_timeout"] >= 10_000 and app["autorestart"] is True
        assert app["out_file"].endswith(f"/logs/{app['name']}.out.log")
        for block in ("env", "env_production"):
            for setting in service.env:
                assert app[block][setting.name] == setting.value
        if service.runtime == "python":
            venv = ecosystem.parent / service.path / ".venv"
            assert app["env_production"]["VIRTUAL_ENV"] == str(venv)
            if service.argv[0].startswith("python"):
                # Relative: PM2 would run a script path with a space through `bash -c`.
                assert app["script"] == ".venv/bin/python"


def test_hostile_values_land_as_the_same_strings(ecosystems: dict[str, Path]) -> None:
    ecosystem = ecosystems["hostile"]
    project = load(HOSTILE)
    apps = {a["name"]: a for a in apps_of(ecosystem)}
    for service in project.services:
        app = apps[naming.pm2_app(project.name, service.name)]
        assert {s.name: s.value for s in service.env}.items() <= app["env_production"].items()
    web = apps["odd-values-web"]
    # PM2 would hand a script name with a space to `bash -c`: node runs it, in fork mode.
    assert (web["script"], web["exec_mode"], web["instances"]) == ("node", "fork", 1)
    assert web["args"] == [
        "--enable-source-maps",
        "dist/main app.js",
        "--greeting",
        "$(touch pwned)",
        "--flag",
        "on",
    ]
    relay = apps["odd-values-relay"]
    assert (relay["script"], relay["exec_mode"], relay["instances"]) == ("worker.js", "cluster", 2)
    assert web["env"]["SEPARATORS"] == "a\u2028b\u2029c"
    text = ecosystem.read_text()
    assert "\u2028" not in text and "\u2029" not in text
    assert "it's" in text  # the service folder, inside a JSON string literal
    assert not list(ecosystem.parent.rglob("pwned"))


def test_ecosystem_has_no_secret(ecosystems: dict[str, Path]) -> None:
    require(detect_secrets(list(ecosystems.values())))


def test_secrets_come_from_the_env_file_and_the_environment_wins(tmp_path: Path) -> None:
    out = generate_tree(HOSTILE, tmp_path / "project")
    ecosystem = out / "ecosystem.config.js"
    tricky = 'p@ss "w\'rd" $(x) #1 \\n\nline2'
    env_file = tmp_path / "secrets.env"
    env_file.write_text(
        f"# comment\nexport WEB_TOKEN={dotenv(tricky)}  # trailing\nAPI_TOKEN='raw $x'\n"
        "UNRELATED=1\n"
    )
    env_file.chmod(0o600)
    done = node_eval(
        ecosystem,
        "process.stdout.write(JSON.stringify(c.apps));",
        {"SHIPFORGE_ENV_FILE": str(env_file)},
    )
    assert done.returncode == 0 and "secrets not set" not in done.stderr, done.stderr
    apps = {a["name"]: a for a in json.loads(done.stdout)}
    assert apps["odd-values-web"]["env_production"]["WEB_TOKEN"] == tricky
    assert apps["odd-values-api"]["env"]["API_TOKEN"] == "raw $x"
    # Each app gets its own secrets only, and nothing else of the file.
    assert "API_TOKEN" not in apps["odd-values-web"]["env_production"]
    assert "UNRELATED" not in apps["odd-values-api"]["env_production"]
    # A value already in the environment of the pm2 command wins over the file.
    env = {"SHIPFORGE_ENV_FILE": str(env_file), "API_TOKEN": "from-env"}
    assert apps_of(ecosystem, env)[1]["env_production"]["API_TOKEN"] == "from-env"


def test_missing_secrets_warn_but_never_stop_pm2_start(tmp_path: Path) -> None:
    ecosystem = generate_tree(HOSTILE, tmp_path / "project") / "ecosystem.config.js"
    done = node_eval(ecosystem, "process.stdout.write(String(c.apps.length));")
    assert done.returncode == 0 and done.stdout == "4"
    assert "secrets not set, left out of the apps: API_TOKEN, WEB_TOKEN" in done.stderr
    # A .env beside the file is found without any variable; a readable one is flagged.
    (ecosystem.parent / ".env").write_text("API_TOKEN=a\nWEB_TOKEN=b\n")
    (ecosystem.parent / ".env").chmod(0o644)
    done = node_eval(ecosystem, "process.stdout.write(c.apps[0].env.API_TOKEN);")
    assert done.stdout == "a" and "chmod 600" in done.stderr
    # A named env file that does not exist, or a malformed one, fails loudly.
    done = node_eval(ecosystem, "c.apps;", {"SHIPFORGE_ENV_FILE": str(tmp_path / "nope")})
    assert done.returncode != 0 and "does not exist" in done.stderr
    (ecosystem.parent / ".env").write_text('API_TOKEN="unterminated\n')
    done = node_eval(ecosystem, "c.apps;")
    assert done.returncode != 0 and ".env:1: the value of API_TOKEN has no closing" in done.stderr


def test_secrets_are_read_from_the_shared_folder_of_a_pm2_deploy_checkout(
    tmp_path: Path,
) -> None:
    source = generate_tree(HOSTILE, tmp_path / "srv" / "source")
    (tmp_path / "srv" / "shared").mkdir()
    (tmp_path / "srv" / "shared" / ".env").write_text("API_TOKEN=shared\n")
    (tmp_path / "srv" / "shared" / ".env").chmod(0o600)
    assert apps_of(source / "ecosystem.config.js")[1]["env"]["API_TOKEN"] == "shared"


DEPLOY_ENV = {
    "PM2_DEPLOY_HOST": "app1.internal,app2.internal",
    "PM2_DEPLOY_USER": "deploy",
    "PM2_DEPLOY_REPO": "git@github.com:acme/ledger.git",
    "PM2_DEPLOY_PATH": "/srv/ledger",
}


def test_deploy_reads_its_variables_only_when_deploying(ecosystems: dict[str, Path]) -> None:
    ecosystem = ecosystems["17-pm2-python-poetry"]
    project = load(ROOT / "examples" / "17-pm2-python-poetry" / "shipforge.yaml")
    for environment in project.environments:
        deploy = deploy_of(ecosystem, environment.name, DEPLOY_ENV)
        assert deploy == {
            "host": ["app1.internal", "app2.internal"],
            "user": "deploy",
            "repo": "git@github.com:acme/ledger.git",
            "path": "/srv/ledger",
            "ref": f"origin/{environment.branch}",
            "ssh_options": "BatchMode=yes",
            "post-deploy": pm2_target.POST_DEPLOY,
        }
    # Missing: every absent name is listed, and loading the apps still works.
    error = deploy_of(ecosystem, "production", {"PM2_DEPLOY_HOST": "h"})["error"]
    assert "pm2 deploy production: set PM2_DEPLOY_USER, PM2_DEPLOY_REPO, PM2_DEPLOY_PATH" in error
    assert "_PRODUCTION" in error
    assert len(apps_of(ecosystem)) == len(project.services)
    # Per-environment names win over the shared ones.
    env = {**DEPLOY_ENV, "PM2_DEPLOY_HOST_STAGING": "staging.internal"}
    assert deploy_of(ecosystem, "staging", env)["host"] == "staging.internal"
    assert deploy_of(ecosystem, "production", env)["host"] == ["app1.internal", "app2.internal"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PM2_DEPLOY_PATH", "srv/relative"),
        ("PM2_DEPLOY_PATH", "/srv/$(id)"),
        ("PM2_DEPLOY_REPO", "git@x:a/b.git'; rm -rf /"),
        ("PM2_DEPLOY_HOST", "host name"),
        ("PM2_DEPLOY_USER", 'dep"loy'),
    ],
)
def test_deploy_refuses_values_pm2_deploy_would_pass_through_a_shell(
    ecosystems: dict[str, Path], name: str, value: str
) -> None:
    deploy = deploy_of(ecosystems["hostile"], "production", {**DEPLOY_ENV, name: value})
    assert f"{name} must match" in deploy["error"]


def test_pm2_deploy_without_its_variables_fails_loudly(
    ecosystems: dict[str, Path], tmp_path: Path
) -> None:
    pm2 = need("pm2", PM2_BIN)
    ecosystem = ecosystems["16-pm2-node-monorepo"]
    env = {
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PM2_HOME": str(tmp_path / "pm2"),
    }
    try:
        done = subprocess.run(
            [pm2, "deploy", str(ecosystem), "production"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ecosystem.parent,
            timeout=60,
            check=False,
        )
    finally:
        subprocess.run([pm2, "kill"], env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "pm2 deploy production: set PM2_DEPLOY_HOST, PM2_DEPLOY_USER" in done.stderr


def test_install_and_release_steps_report_usage_errors(ecosystems: dict[str, Path]) -> None:
    done = subprocess.run(
        [node(), str(ecosystems["hostile"]), "deploy"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "usage: node ecosystem.config.js install|release" in done.stderr


# --- real PM2 ---------------------------------------------------------------------------------


class Pm2:
    """The pm2 CLI under one temporary PM2_HOME; `close()` kills its daemon."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.exe = need("pm2", PM2_BIN)
        self.env = {**env, "PM2_HOME": str(home)}
        self.home = home

    def __call__(self, *args: str, cwd: Path, timeout: float = 120) -> str:
        done = subprocess.run(
            [self.exe, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"pm2 {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def processes(self) -> list[dict[str, Any]]:
        out = self("jlist", cwd=self.home)
        processes, _ = json.JSONDecoder().raw_decode(out[out.index("[") :])
        return list(processes)

    def wait(self, what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
        """wait_for, showing the apps' PM2 logs on failure."""
        return wait_for(what, probe, timeout, self.home / "logs")

    def close(self) -> None:
        for args in (["delete", "all"], ["kill"]):
            subprocess.run(
                [self.exe, *args], env=self.env, capture_output=True, timeout=60, check=False
            )
        pid_file = self.home / "pm2.pid"
        if pid_file.is_file():  # the daemon outlived `pm2 kill`: end it by its own pid
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def pm2_factory(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Pm2]]:
    """Makes Pm2 handles; every daemon is killed at teardown, whether the test passed or not."""
    made: list[Pm2] = []

    def make(env: dict[str, str]) -> Pm2:
        home = tmp_path / f"pm2-{len(made)}"
        home.mkdir()
        handle = Pm2(home, env)
        made.append(handle)
        return handle

    yield make
    for handle in made:
        handle.close()


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 30, logs: Path | None = None
) -> Any:
    """Poll probe until it returns something truthy; fail with its last result (and PM2's logs)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, AssertionError, ValueError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(0.2)
    tails = [
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        for log in sorted(logs.glob("*.log") if logs else [])
    ]
    pytest.fail(
        f"timed out after {timeout} s waiting for {what}; last: {last!r}\n" + "\n".join(tails),
        pytrace=False,
    )


def assert_port_free(port: int) -> None:
    """A stand-in must not be mistaken for another process already on its port."""
    with socket.socket() as probe:
        busy = probe.connect_ex(("127.0.0.1", port)) == 0
    assert not busy, f"port {port} is already in use on 127.0.0.1: stop what listens there"


def health(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        assert response.status == 200
        report: dict[str, Any] = json.loads(response.read())
        return report


# Stand-ins: each program the descriptor names becomes a shim that runs standin.py/standin.js.


def _node_script_at(argv: tuple[str, ...]) -> int:
    """Where the file of `node [options] file` is in argv (options taking a value skip it), or 0."""
    if PurePosixPath(argv[0]).name not in ("node", "nodejs"):
        return 0
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        if argv[index] in ("-e", "--eval", "-p", "--print"):
            return 0
        index += 2 if argv[index] in ("-r", "--require", "--import", "--loader") else 1
    return index if index < len(argv) else 0


def _node_script(argv: tuple[str, ...]) -> str | None:
    at = _node_script_at(argv)
    return argv[at] if at else None


def expected_args(service: Service) -> list[str]:
    """The arguments the service's own program must receive, after its name."""
    argv = service.argv
    if service.runtime == "node":
        return list(argv[(_node_script_at(argv) or 0) + 1 :])
    if re.fullmatch(r"python[0-9.]*", argv[0]):
        return list(argv[3:] if argv[1] == "-m" else argv[2:])
    return list(argv[1:])


def _write(path: Path, text: str, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if executable:
        path.chmod(0o755)


def build_standins(project: Project, root: Path, bin_dir: Path, venvs: bool = True) -> None:
    """Shims at the paths the descriptor's commands name, in a real venv for Python."""
    run_py = (
        f"import runpy\nrunpy.run_path({str(FIXTURES / 'standin.py')!r}, run_name='__main__')\n"
    )
    run_js = f"require({json.dumps(str(FIXTURES / 'standin.js'))});\n"
    python3 = need("python3", shutil.which("python3"))
    for service in project.services:
        cwd = root / service.path
        argv = service.argv
        if service.runtime == "python":
            venv = cwd / ".venv"
            if venvs and not venv.exists():
                subprocess.run([python3, "-m", "venv", "--without-pip", str(venv)], check=True)
            program = PurePosixPath(argv[0]).name
            if re.fullmatch(r"python[0-9.]*", program) and "/" not in argv[0]:
                if argv[1] == "-m":
                    parts = argv[2].split(".")
                    for depth in range(1, len(parts)):
                        _write(cwd.joinpath(*parts[:depth], "__init__.py"), "")
                    _write(cwd.joinpath(*parts[:-1], parts[-1] + ".py"), run_py)
                else:
                    _write(cwd / argv[1], run_py)
            else:
                where = cwd / argv[0] if "/" in argv[0] else venv / "bin" / argv[0]
                _write(where, f"#!{venv / 'bin' / 'python'}\n{run_py}", executable=True)
        else:
            script = _node_script(argv)
            if script:
                _write(cwd / script, run_js)
            else:
                _write(
                    bin_dir / argv[0],
                    f'#!/bin/sh\nexec node {FIXTURES / "standin.js"} "$@"\n',
                    executable=True,
                )


def expected_instances(service: Service) -> int:
    script = _node_script(service.argv) if service.runtime == "node" else None
    clustered = bool(script) and not re.search(r"\s", script or "")
    return service.replicas if clustered or not service.web else 1


def fake_secret(name: str) -> str:
    return f"{name.lower()}-value \"q\" 'x' $(touch pwned) #h\nline2"


def check_report(
    report: dict[str, Any], service: Service, project: Project, root: Path, deployed: bool = False
) -> None:
    """What a stand-in saw: the descriptor's configuration, its own secrets, the venv.

    `deployed`: started by a `pm2 deploy` to localhost, whose variables it then inherits.
    """
    env = report["env"]
    for setting in service.env:
        assert env[setting.name] == setting.value, setting.name
    mine = {*service.secrets, *service.datastore_secrets}
    for name in project.secrets:
        assert env.get(name) == (fake_secret(name) if name in mine else None), name
    assert deployed or not any(k.startswith("PM2_DEPLOY_") for k in env)
    if service.runtime == "node":
        assert env["NODE_ENV"] == "production"
    else:
        venv = root / service.path / ".venv"
        assert report["prefix"] == str(venv) and env["VIRTUAL_ENV"] == str(venv)
    if service.web:
        assert env["PORT"] == str(service.port)
    argv, args = report["argv"], expected_args(service)
    server = pm2_target.python_server(service.argv) if service.runtime == "python" else ""
    if service.web and server and service.replicas > 1:
        assert "--workers" in argv or any(a.startswith(("-w", "--workers=")) for a in argv)
        if argv[-2:] == ["--workers", str(service.replicas)] and "--workers" not in args:
            argv = argv[:-2]
    assert argv[len(argv) - len(args) :] == args, (argv, args)


@pytest.mark.slow
@pytest.mark.parametrize("source", RUNNABLE, ids=_id)
def test_pm2_runs_every_service_and_restarts_a_killed_process(
    source: Path, tmp_path: Path, pm2_factory: Callable[[dict[str, str]], Pm2]
) -> None:
    project = load(source)
    root = generate_tree(source, tmp_path / "project")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    build_standins(project, root, bin_dir)
    spec = tmp_path / "standins" / "spec.json"
    apps = {naming.pm2_app(project.name, s.name): s for s in project.services}
    _write(
        spec,
        json.dumps({"apps": {n: {"port": s.port, "health": s.health} for n, s in apps.items()}}),
    )
    env_file = root / ".env"
    env_file.write_text("".join(f"{n}={dotenv(fake_secret(n))}\n" for n in project.secrets))
    env_file.chmod(0o600)
    pm2 = pm2_factory(
        {
            "PATH": os.pathsep.join([str(bin_dir), str(NODE_BIN), os.environ["PATH"]]),
            "HOME": str(tmp_path),
            "SHIPFORGE_STANDIN_SPEC": str(spec),
        }
    )

    for service in apps.values():
        if service.web:
            assert_port_free(service.port)
    started = time.monotonic()
    out = pm2("start", "ecosystem.config.js", "--env", "production", cwd=root)
    assert "secrets not set" not in out

    def all_online() -> dict[str, list[dict[str, Any]]]:
        by_app: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}
        for process in pm2.processes():
            by_app[process["name"]].append(process)
        ok = all(
            len(by_app[name]) == expected_instances(service)
            and all(p["pm2_env"]["status"] == "online" and p["pid"] for p in by_app[name])
            for name, service in apps.items()
        )
        return by_app if ok else {}

    by_app = pm2.wait("every app online", all_online)
    for name, service in apps.items():
        if service.web:
            report = pm2.wait(f"{name} health", lambda s=service: health(s.port, s.health))
            check_report(report, service, project, root)
        reports = spec.parent / "reports"
        for process in by_app[name]:
            report_file = reports / f"{name}.{process['pid']}.json"
            pm2.wait(f"{name} report", report_file.is_file)
            check_report(json.loads(report_file.read_text()), service, project, root)
    online_after = time.monotonic() - started

    # kill -9 one process of every app: PM2 starts a new one in its place.
    killed = {name: processes[0] for name, processes in by_app.items()}
    for process in killed.values():
        os.kill(process["pid"], signal.SIGKILL)

    def restarted() -> bool:
        current = all_online()
        if not current:
            return False
        for name, old in killed.items():
            new = next(p for p in current[name] if p["pm_id"] == old["pm_id"])
            if new["pid"] == old["pid"] or new["pm2_env"]["restart_time"] < 1:
                return False
        return True

    pm2.wait("killed processes restarted", restarted)
    for service in apps.values():
        if service.web:
            pm2.wait(
                f"{service.name} health after restart", lambda s=service: health(s.port, s.health)
            )
    assert not list(root.rglob("pwned")), "a value was run as a shell command"
    print(f"{_id(source)}: online in {online_after:.1f} s, {len(by_app)} apps")


DEPLOY_FIXTURE = FIXTURES / "deploy" / "shipforge.yaml"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def npm_network() -> dict[str, str]:
    """What npm needs to reach the registry from a test's own HOME (`pm2 install` calls npm)."""
    names = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "HTTPS_PROXY", "https_proxy", "NO_PROXY")
    env = {name: os.environ[name] for name in names if name in os.environ}
    for key in ("cafile", "registry"):
        value = subprocess.run(
            ["npm", "config", "get", key], capture_output=True, text=True, check=False
        ).stdout.strip()
        if value and value not in ("null", "undefined"):
            env[f"npm_config_{key}"] = value
    return env


def _commit(repo: Path, version: str) -> str:
    """Commit VERSION=version (the stand-ins serve it; "crash" makes them die on start)."""
    _write(repo / "VERSION", f"{version}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"v{version}")
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


class Load:
    """GETs a URL in a loop from a thread, counting answers that are not a 200."""

    def __init__(self, url: str) -> None:
        import threading

        self.url, self.ok, self.failed = url, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    self.ok += response.status == 200
                    self.failed += response.status != 200
            except OSError:
                self.failed += 1
            time.sleep(0.05)

    def close(self) -> tuple[int, int]:
        self.stop.set()
        self.thread.join()
        return self.ok, self.failed


@pytest.mark.slow
def test_deploy_script_verifies_rolls_back_a_crashing_release_and_never_to_it(
    tmp_path: Path, pm2_factory: Callable[[dict[str, str]], Pm2]
) -> None:
    """deploy/pm2.sh with real pm2 and pm2-deploy to localhost: v1, v2, a crashing v3 (canary
    refuses it, no request fails, the host stays on v2), then a manual rollback (to v1, not v3)."""
    project = load(DEPLOY_FIXTURE)
    repo = tmp_path / "repo"
    generate_tree(DEPLOY_FIXTURE, repo)
    bin_dir = tmp_path / "bin"
    build_standins(project, repo, bin_dir, venvs=False)
    # Host stand-ins: no systemd here, and a sudo that records what it was asked to run (the
    # real one must never install a boot unit on this machine).
    sudo_log = tmp_path / "sudo.log"
    _write(bin_dir / "systemctl", "#!/bin/sh\nexit 1\n", executable=True)
    _write(
        bin_dir / "sudo",
        f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> {sudo_log}\nexit 0\n",
        executable=True,
    )
    _write(
        repo / "app" / "migrate.py",
        "import json, os, sys\nfrom pathlib import Path\n"
        "out = Path(os.environ['SHIPFORGE_STANDIN_SPEC']).parent / 'release.json'\n"
        "out.write_text(json.dumps({'argv': sys.argv, 'prefix': sys.prefix, "
        "'env': dict(os.environ), 'cwd': os.getcwd()}))\n",
    )
    _write(repo / "requirements.txt", "# the stand-ins need nothing from PyPI\n")
    _write(repo / "package.json", '{"name": "pinger", "version": "1.0.0", "private": true}\n')
    _write(
        repo / "package-lock.json",
        json.dumps(
            {
                "name": "pinger",
                "version": "1.0.0",
                "lockfileVersion": 3,
                "requires": True,
                "packages": {"": {"name": "pinger", "version": "1.0.0"}},
            }
        )
        + "\n",
    )
    _write(repo / ".gitignore", ".env\n.venv/\nnode_modules/\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    v1 = _commit(repo, "1")

    spec = tmp_path / "standins" / "spec.json"
    _write(
        spec,
        json.dumps(
            {
                "apps": {
                    naming.pm2_app(project.name, s.name): {"port": s.port, "health": s.health}
                    for s in project.services
                }
            }
        ),
    )
    srv = tmp_path / "srv"
    pm2 = pm2_factory(
        {
            "PATH": os.pathsep.join([str(bin_dir), str(NODE_BIN), os.environ["PATH"]]),
            "HOME": str(tmp_path),
            "SHIPFORGE_STANDIN_SPEC": str(spec),
            "SHIPFORGE_STABLE_MS": "3000",
            "PM2_DEPLOY_HOST": "localhost",  # pm2-deploy runs the steps here, without ssh
            "PM2_DEPLOY_USER": getpass.getuser(),
            "PM2_DEPLOY_REPO": str(repo),
            "PM2_DEPLOY_PATH": str(srv),
            "npm_config_audit": "false",
            "npm_config_fund": "false",
            "npm_config_update_notifier": "false",
            **npm_network(),
        }
    )
    web = next(s for s in project.services if s.name == "web")
    api = next(s for s in project.services if s.name == "api")
    for service in (web, api):
        assert_port_free(service.port)

    def deploy(*args: str, sha: str = "") -> subprocess.CompletedProcess[str]:
        env = {**pm2.env, "GIT_SHA": sha} if sha else pm2.env
        print(f"{time.monotonic() - started:.1f} s: pm2.sh {' '.join(args)} {sha[:7]}")
        return subprocess.run(
            ["bash", str(repo / "deploy" / "pm2.sh"), *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def verified() -> list[str]:
        file = srv / ".shipforge-verified"
        return file.read_text().split()[1:] if file.is_file() else []

    def served(service: Service) -> str:
        return str(health(service.port, service.health)["version"])

    started = time.monotonic()
    # The first deploy sets the host up; without the secrets in shared/.env it must fail.
    first = deploy("deploy", "production", sha=v1)
    assert first.returncode != 0
    assert "secrets not set: DATABASE_URL, SESSION_KEY" in first.stdout + first.stderr
    (srv / "shared" / ".env").write_text(
        "".join(f"{n}={dotenv(fake_secret(n))}\n" for n in project.secrets)
    )
    (srv / "shared" / ".env").chmod(0o600)
    done = deploy("deploy", "production", sha=v1)
    assert done.returncode == 0, done.stdout + done.stderr
    first_deploy = time.monotonic() - started
    assert served(web) == served(api) == "1"
    check_report(health(web.port, web.health), web, project, srv / "source", deployed=True)
    release = json.loads((spec.parent / "release.json").read_text())
    assert release["argv"][1:] == list(web.release_argv[3:])
    assert release["prefix"] == str(srv / "source" / ".venv")
    assert release["env"]["DATABASE_URL"] == fake_secret("DATABASE_URL")
    assert verified() == [v1]

    # The saved process list holds the secrets: only its owner may read it, or the logs.
    dump = pm2.home / "dump.pm2"
    assert json.dumps(fake_secret("SESSION_KEY"))[1:-1] in dump.read_text()
    assert dump.stat().st_mode & 0o077 == 0, oct(dump.stat().st_mode)
    assert pm2.home.stat().st_mode & 0o777 == 0o700
    assert all(log.stat().st_mode & 0o077 == 0 for log in (pm2.home / "logs").glob("*.log"))
    # Log rotation runs as a PM2 module with the generated settings.
    modules = {p["name"]: p for p in pm2.processes()}
    assert modules["pm2-logrotate"]["pm2_env"]["status"] == "online"
    conf = json.loads((pm2.home / "module_conf.json").read_text())["pm2-logrotate"]
    assert (conf["max_size"], conf["retain"]) == ("10M", "14")
    # pm2 startup: no systemd unit was enabled, so it was asked for through sudo -n.
    startup = sudo_log.read_text().splitlines()
    assert startup[:2] == ["-n", "env"] and startup[4:] == [
        "startup",
        "systemd",
        "-u",
        getpass.getuser(),
        "--hp",
        str(tmp_path),
    ], startup

    # PM2 7 has one stop signal per daemon: the deploy started it with SIGTERM.
    daemon = (pm2.home / "pm2.pid").read_text().strip()
    assert "PM2_KILL_SIGNAL=SIGTERM" in Path(f"/proc/{daemon}/environ").read_text().split("\0")

    v2 = _commit(repo, "2")
    done = deploy("deploy", "production", sha=v2)
    assert done.returncode == 0, done.stdout + done.stderr
    assert served(web) == served(api) == "2"
    assert verified() == [v1, v2]
    # The reload stopped the v1 processes with SIGTERM (the stand-ins log the signal they got).
    signals = (spec.parent / "reports" / "signals.log").read_text().split()[1::2]
    assert signals and set(signals) == {"SIGTERM"}, signals

    # A release that dies on start: the canary catches it before a live process is replaced,
    # so the cluster app answers every request, and the host goes back to v2.
    v3 = _commit(repo, "crash")
    traffic = Load(f"http://127.0.0.1:{api.port}{api.health}")
    failed = deploy("deploy", "production", sha=v3)
    ok, errors = traffic.close()
    assert failed.returncode != 0
    assert "the new release does not stay up" in failed.stdout + failed.stderr
    assert f"rolled back to {v2}" in failed.stderr
    assert errors == 0 and ok > 20, (ok, errors)
    assert served(web) == served(api) == "2"
    assert verified() == [v1, v2]
    saved = {p["name"] for p in json.loads(dump.read_text())}
    assert saved >= {naming.pm2_app(project.name, s.name) for s in project.services}

    # The manual rollback after the automatic one goes to v1, never to the failed v3.
    back = deploy("rollback", "production")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"rolled production back to {v1}" in back.stderr
    assert served(web) == served(api) == "1"
    assert verified() == [v1]
    again = deploy("rollback", "production")
    assert again.returncode != 0 and "no earlier verified commit" in again.stderr
    assert served(web) == "1"
    assert not list(srv.rglob("pwned"))
    print(
        f"pm2.sh: first deploy {first_deploy:.1f} s, all {time.monotonic() - started:.1f} s; "
        f"during the crashing deploy {ok} requests answered 200, {errors} failed"
    )


# The real fixture apps whose code is only importable once the project itself is installed
# (src layout; Poetry's console script): what `install` must do for Poetry and uv.
INSTALLED_PROJECTS = {
    "uv": ("flask-uv", "gunicorn inventory.web:create_app()", '"package": "inventory"'),
    "poetry": ("poetry-app", "catalog", '"served_by": "catalog"'),
}


@pytest.mark.slow
@pytest.mark.parametrize("manager", list(INSTALLED_PROJECTS))
def test_pm2_install_installs_the_poetry_or_uv_project_itself(
    manager: str, tmp_path: Path, pm2_factory: Callable[[dict[str, str]], Pm2]
) -> None:
    """`node ecosystem.config.js install` with the real tool and the real lockfile, then real pm2:
    the service answers, which it cannot if only the dependencies were installed."""
    folder, command, body = INSTALLED_PROJECTS[manager]
    root = tmp_path / folder
    shutil.copytree(ROOT / "tests" / "fixtures" / "apps" / folder, root)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    descriptor = root / "shipforge.yaml"
    descriptor.write_text(
        f"version: 1\nproject: {{name: fx-{manager}}}\ntargets: {{pm2: true, compose: false}}\n"
        f"services:\n  web:\n    runtime: python\n    version: '3.11'\n"
        f"    package_manager: {manager}\n    command: {command}\n    port: {port}\n"
        "    health: /healthz\n"
    )
    generate_tree(descriptor, root)
    project = load(descriptor)
    # The tool itself, at the version the Dockerfile pins, from the host's package index.
    tools = tmp_path / "tools"
    python3 = need("python3.11", shutil.which("python3.11"))
    subprocess.run([python3, "-m", "venv", str(tools)], check=True)
    done = subprocess.run(
        [str(tools / "bin" / "pip"), "install", "-q", project.images[0].tool],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot install {project.images[0].tool}: {done.stderr[-300:]}")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(tools / "bin"), str(NODE_BIN), os.environ["PATH"]]),
        "UV_NATIVE_TLS": "1",  # the host trusts its proxy through the system bundle
    }
    env.pop("VIRTUAL_ENV", None)
    install = subprocess.run(
        [node(), "ecosystem.config.js", "install"],
        cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    pm2 = pm2_factory(env)
    pm2("start", "ecosystem.config.js", "--env", "production", cwd=root)
    report = pm2.wait("health", lambda: health(port, "/healthz"), timeout=60)
    assert body.replace(" ", "") in json.dumps(report).replace(" ", "")
