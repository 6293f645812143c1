"""The resolved project: every default and derived value computed once, known to no target.

Templates read `model` (this module's `Project.context()`), never the raw descriptor, so
`shipforge generate` and `copier copy` render exactly the same data.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

DEFAULT_VERSIONS = {"python": "3.12", "node": "22"}
DEFAULT_MANAGERS = {"python": "pip", "node": "npm"}
DATASTORE_DEFAULTS = {"postgres": "16", "redis": "7"}
DATASTORE_URL = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}
DATASTORE_PORT = {"postgres": 5432, "redis": 6379}
DEFAULT_ENVIRONMENTS = {
    "staging": {"branch": "develop"},
    "production": {"branch": "main", "approval": True},
}
# One non-root identity for every image, numeric so Kubernetes can verify runAsNonRoot.
APP_UID = 10001


@dataclass(frozen=True)
class Setting:
    """One non-secret configuration variable of a service."""

    name: str
    value: str


@dataclass(frozen=True)
class Volume:
    """Persistent storage mounted into a single-instance service."""

    name: str
    mount: str
    size: str


@dataclass(frozen=True)
class Autoscale:
    """Horizontal autoscaling bounds on CPU utilisation."""

    min: int
    max: int
    cpu: int


@dataclass(frozen=True)
class Image:
    """One container image, shared by services with the same runtime, path, manager and build."""

    name: str
    repository: str
    runtime: str
    version: str
    base: str
    path: str
    dockerfile: str
    dockerfile_name: str
    package_manager: str
    build: str
    lockfiles: tuple[str, ...]
    command: tuple[str, ...]
    health_port: int
    health_path: str
    healthcheck: tuple[str, ...]
    services: tuple[str, ...]
    mounts: tuple[str, ...]
    working_dir: str
    workdir: str
    workspace: bool
    tool: str
    system_build: tuple[str, ...]
    system_runtime: tuple[str, ...]
    build_args: tuple[Setting, ...]
    next_cache: str
    writable_paths: tuple[str, ...]
    runtime_tools: bool
    signal_group: bool
    listen_env: tuple[Setting, ...]


@dataclass(frozen=True)
class Service:
    """One process of the application, with every default resolved."""

    name: str
    runtime: str
    version: str
    path: str
    package_manager: str
    build: str
    command: str
    argv: tuple[str, ...]
    port: int
    web: bool
    health: str
    replicas: int
    cpu: str
    cpu_cores: str
    cpu_millis: int
    memory: str
    memory_mib: int
    autoscale: Autoscale | None
    max_instances: int
    env: tuple[Setting, ...]
    secrets: tuple[str, ...]
    datastore_secrets: tuple[str, ...]
    release: str
    release_argv: tuple[str, ...]
    public: bool
    uses: tuple[str, ...]
    volumes: tuple[Volume, ...]
    image: str
    image_repository: str
    dockerfile_name: str
    image_health: bool
    healthcheck: tuple[str, ...]
    working_dir: str
    workdir: str
    writable_paths: tuple[str, ...]
    datastore_env: tuple[DatastoreEnv, ...]

    # Seconds a stopping process gets between SIGTERM and SIGKILL (PM2 kill_timeout,
    # Kubernetes terminationGracePeriodSeconds).
    stop_grace: int = 30


@dataclass(frozen=True)
class DatastoreEnv:
    """The variable through which one service reads one datastore's URL."""

    store: str
    variable: str
    dev_url: str


@dataclass(frozen=True)
class Datastore:
    """A backing datastore: a container in development, a managed service in production."""

    name: str
    version: str
    url_variable: str
    port: int
    image: str
    database: str
    dev_url: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class Environment:
    """A deployment environment."""

    name: str
    domain: str
    branch: str
    approval: bool
    ingress_class: str
    # environments.<env>.tls: at most one of them is set.
    tls_cluster_issuer: str = ""
    tls_issuer: str = ""
    tls_secret: str = ""


@dataclass(frozen=True)
class Targets:
    """Which artifact families to emit."""

    docker: bool
    compose: bool
    pm2: bool
    kubernetes: bool
    terraform: str
    ci: str
    env: bool
    runbook: bool


@dataclass(frozen=True)
class Monitoring:
    """Prometheus and Grafana settings."""

    prometheus: bool
    grafana: bool
    metrics_path: str


@dataclass(frozen=True)
class EnvEntry:
    """A line of an .env template: a configuration value or an empty secret."""

    name: str
    value: str
    secret: bool
    comment: str


@dataclass(frozen=True)
class Project:
    """The whole resolved descriptor."""

    name: str
    description: str
    registry: str
    services: tuple[Service, ...]
    images: tuple[Image, ...]
    dockerfiles: tuple[Image, ...]
    dockerignores: tuple[str, ...]
    volume_names: tuple[str, ...]
    service_volume_names: tuple[str, ...]
    datastores: tuple[Datastore, ...]
    environments: tuple[Environment, ...]
    targets: Targets
    deploy: str
    monitoring: Monitoring
    env_development: tuple[EnvEntry, ...]
    env_production: tuple[EnvEntry, ...]
    secrets: tuple[str, ...]
    app_uid: int

    def context(self) -> dict[str, Any]:
        """The template context: plain data, identical for the CLI and for copier."""
        return asdict(self)


def _cpu(quantity: str) -> tuple[str, int]:
    """A Kubernetes CPU quantity as decimal cores text and millicores."""
    millis = int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)
    cores = f"{millis / 1000:.3f}".rstrip("0").rstrip(".")
    return cores, millis


def _mebibytes(quantity: str) -> int:
    return int(quantity[:-2]) * (1024 if quantity.endswith("Gi") else 1)


def _text(value: Any) -> str:
    """A YAML scalar as the text the user meant (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _base_image(runtime: str, version: str) -> str:
    # Debian bookworm variants: glibc wheels install as published and tini comes from apt.
    if runtime == "python":
        return f"python:{version}-slim-bookworm"
    return f"node:{version}-bookworm-slim"


def _health_path(raw: dict[str, Any]) -> str:
    """The health path of a web service: /healthz by default, '' for `health: null`.

    A service without a health route (`health: null`) is checked by connecting to its port:
    no HTTP path is probed, so none that the app does not serve answers 404.
    """
    if "health" in raw and raw["health"] is None:
        return ""
    return str(raw.get("health", "/healthz"))


def _health_argv(runtime: str, port: int, path: str) -> tuple[str, ...]:
    """A health probe that needs nothing beyond the runtime (slim images have no curl).

    HTTP on the health path; a TCP connection to the port when the service has none.
    """
    if not port:
        return ()
    if not path:
        if runtime == "python":
            return (
                "python",
                "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=4)",
            )
        return (
            "node",
            "-e",
            f"require('net').connect({port}, '127.0.0.1')"
            ".on('connect', () => process.exit(0)).on('error', () => process.exit(1))",
        )
    url = f"http://127.0.0.1:{port}{path}"
    if runtime == "python":
        # urlopen raises on 4xx/5xx and on connection errors: any failure exits non-zero.
        return (
            "python",
            "-c",
            f"import urllib.request; urllib.request.urlopen('{url}', timeout=4)",
        )
    return (
        "node",
        "-e",
        f"fetch('{url}').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))",
    )


# The installers the build stage gets from PyPI. Poetry's newest releases need Python 3.10;
# the pin is the newest one that installs on the service's Python.
UV_PIN = "uv==0.13.9"
POETRY_PINS = (((3, 10), "poetry==2.5.1"), ((3, 9), "poetry==2.2.1"), ((0, 0), "poetry==1.8.5"))
# Commands that start the app through a package manager, whose child gets no signal from a
# plain init.
PACKAGE_RUNNERS = ("npm", "npx", "pnpm", "yarn")


def _tool_pin(manager: str, version: str) -> str:
    if manager == "uv":
        return UV_PIN
    if manager != "poetry":
        return ""
    parts = [int(part) for part in version.split(".")]
    wanted = (parts[0], parts[1]) if len(parts) > 1 else (parts[0], 99)
    return next(pin for least, pin in POETRY_PINS if wanted >= least)


def _listen_env(argv: list[str], port: int) -> tuple[Setting, ...]:
    """Defaults that make gunicorn and uvicorn listen where the descriptor's port says.

    Both listen on 127.0.0.1 unless told otherwise, which no one outside the container can
    reach (while a health check from inside passes). Each server's own environment variable
    is a default its command-line flags and config file still override.
    """
    if not port or not argv:
        return ()
    flags = {word.split("=", 1)[0] for word in argv}
    if argv[0] == "gunicorn" and not flags & {"-b", "--bind", "-c", "--config"}:
        return (Setting("GUNICORN_CMD_ARGS", f"--bind=0.0.0.0:{port}"),)
    if argv[0] == "uvicorn":
        defaults = [] if "--host" in flags else [Setting("UVICORN_HOST", "0.0.0.0")]
        if "--port" not in flags and port != 8000:
            defaults.append(Setting("UVICORN_PORT", str(port)))
        return tuple(defaults)
    return ()


def _dev_url(store: str, project: str) -> str:
    # Development only: the dev database trusts connections on the compose network, so no
    # password exists to leak.
    if store == "postgres":
        return f"postgresql://postgres@postgres:5432/{project.replace('-', '_')}"
    return "redis://redis:6379/0"


def _datastore_env(raw: dict[str, Any], project: str) -> tuple[DatastoreEnv, ...]:
    """Each datastore a service uses, with the variable it reads (list form: the defaults)."""
    uses = raw.get("uses", [])
    named = uses if isinstance(uses, dict) else {store: DATASTORE_URL[store] for store in uses}
    return tuple(
        DatastoreEnv(store, named[store], _dev_url(store, project))
        for store in ("postgres", "redis")
        if store in named
    )


LOCKFILES = {
    "pip": ("requirements.txt",),
    "poetry": ("pyproject.toml", "poetry.lock"),
    "uv": ("pyproject.toml", "uv.lock"),
    "npm": ("package.json", "package-lock.json"),
    "pnpm": ("package.json", "pnpm-lock.yaml"),
    "yarn": ("package.json", "yarn.lock"),
}


def build_project(data: dict[str, Any]) -> Project:
    """Resolve a valid descriptor into the Project every target renders from."""
    project = data["project"]
    name = project["name"]
    registry = project.get("registry", "")
    targets_raw = data.get("targets", {})
    targets = Targets(
        docker=targets_raw.get("docker", True),
        compose=targets_raw.get("compose", True),
        pm2=targets_raw.get("pm2", False),
        kubernetes=targets_raw.get("kubernetes", False),
        terraform=targets_raw.get("terraform", "none"),
        ci=targets_raw.get("ci", "none"),
        env=targets_raw.get("env", True),
        runbook=targets_raw.get("runbook", True),
    )

    # Maps are read in name order, so the output never depends on the order of keys (copier
    # replays its answers file with sorted keys). Services sharing runtime, version, path,
    # manager and build share one image.
    services_raw = dict(sorted(data["services"].items()))
    groups: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = {}
    for service_name, raw in services_raw.items():
        runtime = raw["runtime"]
        key = (
            runtime,
            str(raw.get("version", DEFAULT_VERSIONS[runtime])),
            str(PurePosixPath(raw.get("path", "."))),
            raw.get("package_manager") or DEFAULT_MANAGERS[runtime],
            raw.get("build") or "",
            raw.get("working_dir", ""),
        )
        groups.setdefault(key, []).append((service_name, raw))

    per_path: dict[str, int] = {}
    for group in groups:
        per_path[group[2]] = per_path.get(group[2], 0) + 1

    images: list[Image] = []
    image_of: dict[str, Image] = {}
    for (runtime, version, path, manager, build, working_dir), members in groups.items():
        # A shared image is named after its web service (the one it health-checks and
        # whose command is its default), else after its first member.
        web = [(n, r) for n, r in members if "port" in r]
        main_name, main = web[0] if web else members[0]
        first_web = main if web else {}
        image_name = main_name
        dockerfile_name = "Dockerfile" if per_path[path] == 1 else f"Dockerfile.{image_name}"
        workdir = str(PurePosixPath("/app") / working_dir)
        words = {
            word
            for _, r in members
            for key in ("command", "release", "build")
            for word in shlex.split(r.get(key) or "")
        }
        env = main.get("env", {})
        next_cache = (
            f"{workdir}/.next/cache"
            if runtime == "node"
            and ("next" in words or any(k.startswith("NEXT_PUBLIC_") for k in env))
            else ""
        )
        first_words = {
            shlex.split(r[key])[0]
            for _, r in members
            for key in ("command", "release")
            if r.get(key)
        }
        system = [r.get("system_packages", {}) for _, r in members]
        image = Image(
            name=image_name,
            repository="/".join(filter(None, [registry, f"{name}-{image_name}"])),
            runtime=runtime,
            version=version,
            base=_base_image(runtime, version),
            path=path,
            dockerfile=str(PurePosixPath(path) / dockerfile_name),
            dockerfile_name=dockerfile_name,
            package_manager=manager,
            build=build,
            lockfiles=LOCKFILES[manager],
            command=tuple(shlex.split(main["command"])),
            health_port=first_web.get("port", 0),
            health_path=_health_path(first_web) if first_web else "",
            healthcheck=_health_argv(runtime, first_web.get("port", 0), _health_path(first_web)),
            services=tuple(n for n, _ in members),
            mounts=tuple(
                dict.fromkeys(v["mount"] for _, r in members for v in r.get("volumes", []))
            ),
            working_dir=working_dir,
            workdir=workdir,
            workspace=bool(working_dir),
            tool=_tool_pin(manager, version),
            system_build=tuple(sorted({p for s in system for p in s.get("build", [])})),
            system_runtime=tuple(sorted({p for s in system for p in s.get("runtime", [])})),
            # Next.js inlines NEXT_PUBLIC_* into the client bundle at build time.
            build_args=tuple(
                Setting(k, _text(v)) for k, v in sorted(env.items()) if k.startswith("NEXT_PUBLIC_")
            )
            if build
            else (),
            next_cache=next_cache,
            writable_paths=("/tmp", next_cache) if next_cache else ("/tmp",),
            runtime_tools=manager in ("pnpm", "yarn") and manager in first_words,
            signal_group=bool(first_words & set(PACKAGE_RUNNERS)),
            listen_env=_listen_env(shlex.split(main["command"]), first_web.get("port", 0))
            if runtime == "python" and "GUNICORN_CMD_ARGS" not in env
            else (),
        )
        images.append(image)
        for member_name, _ in members:
            image_of[member_name] = image

    datastores_raw = data.get("datastores", {})
    services: list[Service] = []
    for service_name, raw in services_raw.items():
        runtime = raw["runtime"]
        image = image_of[service_name]
        cpu = str(raw.get("cpu", "250m"))
        cores, millis = _cpu(cpu)
        memory = raw.get("memory", "256Mi")
        scale_raw = raw.get("autoscale")
        autoscale = (
            Autoscale(scale_raw["min"], scale_raw["max"], scale_raw.get("cpu", 70))
            if scale_raw
            else None
        )
        replicas = raw.get("replicas", autoscale.min if autoscale else 1)
        port = raw.get("port", 0)
        datastore_env = _datastore_env(raw, name)
        uses = tuple(link.store for link in datastore_env)
        health = _health_path(raw) if port else ""
        services.append(
            Service(
                name=service_name,
                runtime=runtime,
                version=image.version,
                path=image.path,
                package_manager=image.package_manager,
                build=image.build,
                command=raw["command"],
                argv=tuple(shlex.split(raw["command"])),
                port=port,
                web=bool(port),
                health=health,
                replicas=replicas,
                cpu=cpu,
                cpu_cores=cores,
                cpu_millis=millis,
                memory=memory,
                memory_mib=_mebibytes(memory),
                autoscale=autoscale,
                max_instances=max(replicas, autoscale.max if autoscale else 1),
                env=tuple(Setting(k, _text(v)) for k, v in sorted(raw.get("env", {}).items())),
                secrets=tuple(sorted(raw.get("secrets", []))),
                datastore_secrets=tuple(link.variable for link in datastore_env),
                release=raw.get("release") or "",
                release_argv=tuple(shlex.split(raw.get("release") or "")),
                public=raw.get("public", False),
                uses=uses,
                volumes=tuple(
                    Volume(v["name"], v["mount"], v.get("size", "1Gi"))
                    for v in raw.get("volumes", [])
                ),
                image=image.name,
                image_repository=image.repository,
                dockerfile_name=image.dockerfile_name,
                image_health=bool(port)
                and (port, health) == (image.health_port, image.health_path),
                healthcheck=_health_argv(runtime, port, health),
                working_dir=image.working_dir,
                workdir=image.workdir,
                writable_paths=image.writable_paths,
                datastore_env=datastore_env,
                stop_grace=raw.get("stop_grace", 30),
            )
        )

    datastores = tuple(
        Datastore(
            name=store,
            version=str(datastores_raw[store].get("version", DATASTORE_DEFAULTS[store])),
            url_variable=DATASTORE_URL[store],
            port=DATASTORE_PORT[store],
            image=f"{store}:{datastores_raw[store].get('version', DATASTORE_DEFAULTS[store])}-bookworm",
            database=name.replace("-", "_"),
            dev_url=_dev_url(store, name),
            users=tuple(s.name for s in services if store in s.uses),
        )
        for store in ("postgres", "redis")
        if store in datastores_raw
    )

    environments_raw = data.get("environments") or DEFAULT_ENVIRONMENTS
    environments = tuple(
        Environment(
            name=env_name,
            domain=raw.get("domain", ""),
            branch=raw.get(
                "branch", {"staging": "develop", "production": "main"}.get(env_name, env_name)
            ),
            approval=raw.get("approval", env_name == "production"),
            # Traefik: a maintained controller (ingress-nginx was retired in March 2026).
            ingress_class=raw.get("ingress_class", "traefik"),
            # Without a tls setting, cert-manager's ClusterIssuer "letsencrypt" issues the
            # certificates (docs/kubernetes.md shows one).
            tls_cluster_issuer=(raw.get("tls") or {"cluster_issuer": "letsencrypt"}).get(
                "cluster_issuer", ""
            ),
            tls_issuer=(raw.get("tls") or {}).get("issuer", ""),
            tls_secret=(raw.get("tls") or {}).get("secret", ""),
        )
        for env_name, raw in sorted(environments_raw.items())
    )

    monitoring_raw = data.get("monitoring", {})
    monitoring = Monitoring(
        prometheus=monitoring_raw.get("prometheus", False),
        grafana=monitoring_raw.get("grafana", False),
        metrics_path=monitoring_raw.get("metrics_path", "/metrics"),
    )

    all_secrets = tuple(
        dict.fromkeys(name for s in services for name in (*s.datastore_secrets, *s.secrets))
    )
    return Project(
        name=name,
        description=project.get("description", ""),
        registry=registry,
        services=tuple(services),
        images=tuple(images),
        dockerfiles=tuple(images) if targets.docker else (),
        dockerignores=tuple(
            dict.fromkeys(str(PurePosixPath(i.path) / ".dockerignore") for i in images)
        )
        if targets.docker
        else (),
        datastores=datastores,
        volume_names=(
            *(f"{s.name}-{v.name}" for s in services for v in s.volumes),
            *(f"{store.name}-data" for store in datastores),
        ),
        service_volume_names=tuple(f"{s.name}-{v.name}" for s in services for v in s.volumes),
        environments=environments,
        targets=targets,
        deploy=data.get("deploy", "none"),
        monitoring=monitoring,
        env_development=_env_entries(services, datastores, monitoring, production=False),
        env_production=_env_entries(services, datastores, monitoring, production=True),
        secrets=all_secrets,
        app_uid=APP_UID,
    )


def _env_entries(
    services: list[Service],
    datastores: tuple[Datastore, ...],
    monitoring: Monitoring,
    production: bool,
) -> tuple[EnvEntry, ...]:
    """The lines of an .env template: configuration once per name, then every secret, empty."""
    entries: list[EnvEntry] = []
    values: dict[str, dict[str, str]] = {}
    for service in services:
        for setting in service.env:
            values.setdefault(setting.name, {})[service.name] = setting.value
    for name, by_service in values.items():
        distinct = set(by_service.values())
        users = ", ".join(by_service)
        if len(distinct) == 1:
            entries.append(EnvEntry(name, next(iter(distinct)), False, f"used by {users}"))
        else:
            detail = "; ".join(f"{s}={v!r}" for s, v in by_service.items())
            entries.append(
                EnvEntry(
                    name, "", False, f"differs per service ({detail}): set in each service's env"
                )
            )
    if not production:
        for store in datastores:
            local = store.dev_url.replace(f"@{store.name}:", "@127.0.0.1:").replace(
                "redis://redis:", "redis://127.0.0.1:"
            )
            # Each name the services read this datastore by (the default when none uses it).
            variables = dict.fromkeys(
                link.variable
                for service in services
                for link in service.datastore_env
                if link.store == store.name
            ) or {store.url_variable: None}
            entries.extend(
                EnvEntry(
                    variable,
                    local,
                    False,
                    f"{store.name} from compose.yaml, for running outside compose",
                )
                for variable in variables
            )
    where = (
        "the platform's secret store (see DEPLOYMENT.md), never in git"
        if production
        else "your local .env only, never in git"
    )
    seen = {e.name for e in entries}
    for service in services:
        names = (*service.datastore_secrets, *service.secrets) if production else service.secrets
        for secret in names:
            if secret in seen:
                continue
            seen.add(secret)
            users = ", ".join(
                s.name for s in services if secret in s.secrets or secret in s.datastore_secrets
            )
            entries.append(
                EnvEntry(secret, "", True, f"secret for {users}: its value lives in {where}")
            )
    if monitoring.grafana:
        # The compose monitoring profile's Grafana refuses to start without it.
        entries.append(
            EnvEntry(
                "GRAFANA_ADMIN_PASSWORD",
                "",
                True,
                f"secret for Grafana's admin user: its value lives in {where}",
            )
        )
    return tuple(entries)
