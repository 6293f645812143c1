"""Node projects: package.json, lockfiles, versions, workspaces, and what the code shows.

package.json comes from strangers: every field may have any type, so each is read with
`get`/`strings` and a wrong type is treated as absent. JavaScript is matched with regular
expressions (there is no JS parser in the standard library); only string-level facts are
taken from it (a route path, a listen port, an env name).

Node ranges (`engines.node`, `.nvmrc` such as `lts/*` aside) are evaluated with `node-semver`,
the Python port of npm's own semver implementation: the same range grammar npm uses
(`^20.11 || >=22`, `20.x`, hyphen ranges), which a hand-written parser got wrong.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import nodesemver  # type: ignore[import-untyped]
import yaml

from generator.detect import evidence as platform
from generator.detect.base import (
    SKIPPED_DIRS,
    SUPPORTED,
    Repo,
    Service,
    Why,
    dns_label,
    get,
    health_route,
    strings,
)

NODE_POSTGRES = {"pg", "postgres", "pg-promise", "@vercel/postgres", "@neondatabase/serverless"}
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
# A package with these is an app for phones or desktops, not a server: never a service.
MOBILE = {"expo", "react-native", "@capacitor/core", "electron"}
_ROUTE = re.compile(
    r"""\b(?:app|router|server|fastify|api)\.(?:get|all|head|route)\(\s*["'`](/[^"'`]*)["'`]"""
    # `app.use("/healthcheck", (req, res) => ...)`: a handler of its own answers every method
    # (`app.use("/api", router)` mounts a router: not a route).
    r"""|\b(?:app|router|server)\.use\(\s*["'`](/[^"'`]*)["'`]\s*,\s*"""
    r"""(?:async\s+)?(?:function\b|\([^()]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)"""
)
_PORTS = (
    re.compile(r"""(?:-p|--port)[= ]+(\d{2,5})\b"""),
    re.compile(r"""\.listen\(\s*(\d{2,5})\b"""),
    re.compile(r"""PORT\s*(?:\|\||\?\?)\s*["']?(\d{2,5})\b"""),
    re.compile(r"""\bport\s*[:=]\s*["']?(\d{2,5})\b"""),
)
_NOT_WEB_PORTS = {5432, 6379, 3306, 27017, 5672, 11211}
_FILE_ROUTE = re.compile(
    r"^(?:src/)?(?:app|pages)(/api/[\w/-]+?)(?:/route|/index)?\.(?:ts|js|mjs)$"
)


def node_version(
    repo: Repo, folder: Path, package: dict[str, Any], dockerfile: tuple[str, str, Why] | None
) -> tuple[str, Why] | None:
    for place in dict.fromkeys((folder, repo.root)):
        for name in (".nvmrc", ".node-version"):
            text = repo.text(place / name).strip()
            if m := re.match(r"^v?(\d+)", text):
                return m.group(1), repo.why(name, place / name, 1)
    if dockerfile and dockerfile[0] == "node":
        return dockerfile[1], dockerfile[2]
    spec = get(package, "engines", "node")
    if isinstance(spec, str) and spec.strip():
        candidates = [f"{major}.99.0" for major in SUPPORTED["node"]]
        try:
            allowed = {
                c.split(".")[0] for c in candidates if nodesemver.satisfies(c, spec, loose=True)
            }
        except (ValueError, TypeError, RecursionError):
            allowed = set()
        # The default (22) when the range allows it, else the newest supported one it allows.
        for major in SUPPORTED["node"][:1] + tuple(sorted(SUPPORTED["node"][1:], reverse=True)):
            if major in allowed:
                file = folder / "package.json"
                return major, repo.why(f"engines.node {spec}", file, '"node"')
    return None


def _manager(repo: Repo, folder: Path, package: dict[str, Any]) -> tuple[str, Why]:
    for place in dict.fromkeys((folder, repo.root)):
        for lockfile, manager in (
            ("pnpm-lock.yaml", "pnpm"),
            ("yarn.lock", "yarn"),
            ("package-lock.json", "npm"),
            ("npm-shrinkwrap.json", "npm"),
        ):
            if repo.exists(place / lockfile):
                return manager, Why(repo.rel(place / lockfile), repo.rel(place / lockfile))
    for place in dict.fromkeys((folder, repo.root)):
        declared = get(repo.json(place / "package.json"), "packageManager")
        for manager in ("pnpm", "yarn", "npm"):
            if isinstance(declared, str) and declared.startswith(manager + "@"):
                file = place / "package.json"
                return manager, repo.why(f'packageManager "{declared}"', file, "packageManager")
    return "npm", Why("no lockfile")


def dependencies(package: dict[str, Any]) -> tuple[set[str], set[str]]:
    runtime = get(package, "dependencies")
    dev = get(package, "devDependencies")
    return (
        {str(k) for k in runtime} if isinstance(runtime, dict) else set(),
        {str(k) for k in dev} if isinstance(dev, dict) else set(),
    )


def is_mobile(package: dict[str, Any]) -> bool:
    runtime, dev = dependencies(package)
    return bool(MOBILE & (runtime | dev))


def is_stub(package: dict[str, Any]) -> bool:
    """A package.json that declares nothing to run or depend on (a monorepo's root stub)."""
    runtime, _ = dependencies(package)
    scripts = get(package, "scripts")
    runnable = isinstance(scripts, dict) and any(
        k in scripts for k in ("start", "serve", "start:prod")
    )
    return not runtime and not runnable and not isinstance(get(package, "main"), str)


def detect_node(
    repo: Repo, folder: Path, name: str, skip: set[Path], build_root: Path | None = None
) -> Service:
    """One Node service from a package folder; build_root is a workspace root when it has one."""
    package = repo.json(folder / "package.json")
    scripts = get(package, "scripts")
    scripts = (
        {str(k): v for k, v in scripts.items() if isinstance(v, str)}
        if isinstance(scripts, dict)
        else {}
    )
    runtime_deps, dev_deps = dependencies(package)
    deps = runtime_deps | dev_deps
    context = build_root or folder
    service = Service(name=name, runtime="node", path=repo.rel(context))
    manager, manager_why = _manager(repo, context, repo.json(context / "package.json"))
    service.package_manager, service.why["package_manager"] = manager, manager_why
    if manager_why.text == "no lockfile" or manager_why.text.startswith("packageManager"):
        lockfile = {"npm": "package-lock.json", "pnpm": "pnpm-lock.yaml", "yarn": "yarn.lock"}
        service.warnings.append(f"the image installs from a lockfile: commit {lockfile[manager]}")
    evidence = platform.read(repo, folder)
    if version := node_version(repo, folder, package, evidence.version):
        service.version, service.why["version"] = version
    manifest = folder / "package.json"

    prefix = (
        repo.rel(folder).removeprefix(repo.rel(context)).strip("/") if folder != context else ""
    )
    start = scripts.get("start", "")
    declared = evidence.process("web")
    # Its probe stays true of the start script too: the same server answers it.
    probed = declared
    if declared and declared.assembled and start:
        # The Dockerfile's final stage is assembled from its build stage's outputs (Next.js
        # standalone, a copied dist folder): its CMD needs that layout, which an image built
        # from the repository with shipforge's steps does not have. The start script runs.
        service.warnings.append(
            f"the CMD of {declared.why.file} (`{declared.command}`) runs files its own build "
            "stage lays out: using the start script instead"
        )
        declared = None
    if declared:
        service.command, service.why["command"] = declared.command, declared.why
        service.warnings.extend(declared.warnings)
        service.env.update(declared.env)
        if declared.port:
            service.port, service.why["port"] = declared.port, declared.port_why or declared.why
    elif start:
        simple = re.match(r"^node\s+(?!-)(\S+)(.*)$", start)
        if simple and not re.search(r"[;&|<>$`]", start):
            script = simple.group(1)
            service.command = f"node {prefix + '/' if prefix else ''}{script}{simple.group(2)}"
        else:
            service.command = f"npm --prefix {prefix} run start" if prefix else "npm run start"
        service.why["command"] = repo.why(
            f"start script of {repo.rel(manifest)}", manifest, '"start"'
        )
    elif isinstance(main := get(package, "main"), str) and repo.exists(folder / main):
        service.command = f"node {prefix + '/' if prefix else ''}{main}"
        service.why["command"] = repo.why(f"main of {repo.rel(manifest)}", manifest, '"main"')
    elif repo.exists(folder / "server.js"):
        service.command = f"node {prefix + '/' if prefix else ''}server.js"
        service.why["command"] = Why(repo.rel(folder / "server.js"), repo.rel(folder / "server.js"))

    _build(repo, folder, context, package, scripts, manager, service)
    sources = {
        f: repo.text(f) for f in repo.files(folder, (".js", ".mjs", ".cjs", ".ts", ".mts"), skip)
    }
    framework = sorted(NODE_WEB & deps)
    listens = any(".listen(" in t for t in sources.values())
    if framework or listens or "next start" in start or (declared and declared.web):
        service.web = True
        _port(repo, service, evidence, start, sources, deps)
        routes: list[tuple[str, Why]] = []
        for file, text in sources.items():
            for m in _ROUTE.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                route = m.group(1) or m.group(2)
                routes.append((route, Why(f"route in {repo.rel(file)}", repo.rel(file), line)))
            relative = file.relative_to(folder).as_posix()
            if named := _FILE_ROUTE.match(relative):
                routes.append(
                    (named.group(1), Why(f"route in {repo.rel(file)}", repo.rel(file), 1))
                )
        health = health_route(routes)
        if probed and probed.health and probed.health_why:
            service.health, service.why["health"] = probed.health, probed.health_why
        elif health:
            service.health, service.why["health"] = health
    elif {"bullmq", "bull", "bee-queue"} & deps:
        service.web = False

    _datastores(repo, folder, context, deps, runtime_deps, evidence, service, manifest, package)
    if evidence.release:
        service.release, service.why["release"] = evidence.release
    elif declared and declared.release and declared.release_why:
        service.release, service.why["release"] = declared.release, declared.release_why
    return service


def node_services(
    repo: Repo, folder: Path, name: str, skip: set[Path], build_root: Path | None = None
) -> list[Service]:
    """The package's service and the other processes its platform files declare (workers)."""
    service = detect_node(repo, folder, name, skip, build_root)
    found = [service]
    for process in platform.read(repo, folder).processes:
        if process.name == "web" or process.name.startswith("compose:") or not process.command:
            continue
        worker = service.copy(
            web=False, port=None, health=None, release="", command=process.command
        )
        worker.name = dns_label(process.name) or "worker"
        worker.why = {
            k: v for k, v in service.why.items() if k not in ("port", "health", "release")
        }
        worker.why["command"] = process.why
        worker.env = dict(process.env)
        found.append(worker)
    return found


def _build(
    repo: Repo,
    folder: Path,
    context: Path,
    package: dict[str, Any],
    scripts: dict[str, str],
    manager: str,
    service: Service,
) -> None:
    prefix = repo.rel(folder).removeprefix(repo.rel(context)).strip("/")
    workspace_scripts = get(repo.json(context / "package.json"), "scripts")
    if context != folder and isinstance(workspace_scripts, dict) and workspace_scripts.get("build"):
        # The workspace builds as a whole: every member shares one image.
        service.build = f"{manager} run build"
        service.why["build"] = repo.why(
            "build script of the workspace package.json", context / "package.json", '"build"'
        )
    elif scripts.get("build") and context == folder:
        service.build = f"{manager} run build"
        service.why["build"] = repo.why("build script", folder / "package.json", '"build"')
    elif scripts.get("build"):
        name = get(package, "name")
        service.build = {
            "pnpm": f"pnpm --filter {name if isinstance(name, str) else prefix} run build",
            "npm": f"npm --prefix {prefix} run build",
            "yarn": f"yarn --cwd {prefix} run build",
        }[manager]
        service.why["build"] = repo.why(
            f"build script of {repo.rel(folder / 'package.json')}",
            folder / "package.json",
            '"build"',
        )


def _port(
    repo: Repo,
    service: Service,
    evidence: platform.Evidence,
    start: str,
    sources: dict[Path, str],
    deps: set[str],
) -> None:
    if service.port is not None:
        return
    texts = [(start, Why("the start script", repo.rel(repo.root / "package.json")))]
    for pattern in _PORTS:
        for text, why in texts:
            if (m := pattern.search(text)) and int(m.group(1)) not in _NOT_WEB_PORTS:
                service.port, service.why["port"] = (
                    int(m.group(1)),
                    Why(f"port {m.group(1)} in {why.text}", why.file),
                )
                return
    if evidence.port:
        service.port, service.why["port"] = evidence.port
        return
    for pattern in _PORTS:
        for file, text in sources.items():
            for m in pattern.finditer(text):
                value = int(m.group(1))
                if 0 < value < 65536 and value not in _NOT_WEB_PORTS:
                    line = text.count("\n", 0, m.start()) + 1
                    service.port = value
                    service.why["port"] = Why(
                        f"port {value} in {repo.rel(file)}", repo.rel(file), line
                    )
                    return
    if "next" in deps and "next start" in start:
        service.port, service.why["port"] = 3000, Why("Next.js's default port for `next start`")
        return
    if "fastify-cli" in deps and re.search(r"\bfastify\s+start\b", start):
        # fastify-cli listens on PORT (default 3000) and on localhost unless FASTIFY_ADDRESS
        # says otherwise: both set, the container answers on its port.
        service.port, service.env["PORT"] = 3000, "3000"
        service.env.setdefault("FASTIFY_ADDRESS", "0.0.0.0")
        service.why["port"] = Why(
            "port 3000: fastify-cli's default for `fastify start`, set in env"
        )
        return
    reads = next((f for f, t in sources.items() if "process.env.PORT" in t), None)
    if reads is not None:
        # The code listens on whatever PORT says: setting it makes the port true, not a guess.
        service.port, service.env["PORT"] = 3000, "3000"
        service.why["port"] = repo.why(
            f"port 3000: {repo.rel(reads)} reads process.env.PORT, set to it in env",
            reads,
            "process.env.PORT",
        )


def _prisma_schema(repo: Repo, folder: Path, context: Path, package: dict[str, Any]) -> Path | None:
    """The Prisma schema: package.json `prisma.schema`, prisma/, or a workspace prisma package."""
    declared = get(package, "prisma", "schema")
    candidates = []
    if isinstance(declared, str) and ".." not in declared.split("/"):
        candidates.append(folder / declared)
    candidates += [folder / "prisma" / "schema.prisma", folder / "schema.prisma"]
    for place in ("packages/prisma", "packages/db", "packages/database"):
        candidates += [
            context / place / "prisma" / "schema.prisma",
            context / place / "schema.prisma",
        ]
    for candidate in candidates:
        if candidate.is_dir():
            schema = next(iter(sorted(candidate.glob("*.prisma"))), None)
            if schema is not None and repo.exists(schema):
                return schema
        elif repo.exists(candidate):
            return candidate
    return None


def _datastores(
    repo: Repo,
    folder: Path,
    context: Path,
    deps: set[str],
    runtime_deps: set[str],
    evidence: platform.Evidence,
    service: Service,
    manifest: Path,
    package: dict[str, Any],
) -> None:
    uses, why_uses = [], []
    postgres = sorted(NODE_POSTGRES & deps)
    prisma = {"prisma", "@prisma/client"} & deps
    schema = _prisma_schema(repo, folder, context, package) if prisma or context != folder else None
    if schema and re.search(r'provider\s*=\s*"postgres(?:ql)?"', repo.text(schema)):
        postgres.append(f"prisma (postgresql, {repo.rel(schema)})")
    if postgres:
        uses.append("postgres")
        why_uses.append(", ".join(postgres))
    redis = sorted(NODE_REDIS & deps)
    if redis:
        uses.append("redis")
        why_uses.append(", ".join(redis))
    service.uses = uses
    if uses:
        service.why["uses"] = repo.why(
            "; ".join(why_uses), manifest, f'"{why_uses[0].split(",")[0].split()[0]}"'
        )
    if schema and (schema.parent / "migrations").is_dir() and not evidence.release:
        relative = schema.relative_to(context).as_posix()
        default = relative == "prisma/schema.prisma" and context == folder
        where = "" if default else f" --schema {relative}"
        service.release = f"npx prisma migrate deploy{where}"
        service.why["release"] = Why(
            f"prisma migrations in {repo.rel(schema.parent / 'migrations')}", repo.rel(schema)
        )
        if "prisma" not in runtime_deps and context == folder:
            service.warnings.append(
                "the release runs the prisma CLI, a devDependency that production images "
                "prune: move `prisma` to dependencies"
            )
    elif "sequelize-cli" in deps and not evidence.release and not service.release:
        # sequelize-cli reads .sequelizerc for where the migrations live, else migrations/.
        rc = folder / ".sequelizerc"
        target = "migrations"
        if m := re.search(
            r"""['"]migrations-path['"]\s*:\s*[^'"]*['"]([^'"]+)['"]""", repo.text(rc)
        ):
            target = m.group(1).strip("./") or "migrations"
        if (folder / target).is_dir() and any((folder / target).glob("*.js")):
            service.release = "npx sequelize-cli db:migrate"
            service.why["release"] = Why(
                f"sequelize-cli and migrations in {repo.rel(folder / target)}",
                repo.rel(manifest),
                repo.line_of(manifest, '"sequelize-cli"'),
            )
            if "sequelize-cli" not in runtime_deps:
                service.warnings.append(
                    "the release runs sequelize-cli, a devDependency that production images "
                    "prune: move `sequelize-cli` to dependencies"
                )


def workspace_members(repo: Repo, notes: list[str]) -> list[Path] | None:
    """The package folders of a pnpm, npm or yarn workspace at the root, or None without one."""
    root = repo.root
    patterns: list[str] = []
    pnpm = root / "pnpm-workspace.yaml"
    if repo.exists(pnpm):
        try:
            data = yaml.safe_load(repo.text(pnpm))
        except (yaml.YAMLError, RecursionError):
            notes.append("pnpm-workspace.yaml: not valid YAML: its packages are not read")
            data = None
        patterns = strings(get(data, "packages"))
    else:
        workspaces = get(repo.json(root / "package.json"), "workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        if not isinstance(workspaces, list):
            return None
        patterns = strings(workspaces)
    clean = []
    for pattern in patterns:
        bare = pattern.removeprefix("!").removeprefix("./").rstrip("/")
        if bare.startswith("/") or ".." in bare.split("/") or not bare:
            notes.append(f"workspace pattern {pattern!r} leaves the repository: ignored")
            continue
        clean.append((pattern.startswith("!"), bare))
    # Matched against the folders that hold a package.json, never by globbing the disk: a
    # pattern cannot reach outside the repository or make the walk explode.
    folders = sorted(
        {
            p.parent
            for p in repo.reader.walk(root, prune=SKIPPED_DIRS)
            if p.name == "package.json" and p.parent != root and len(p.relative_to(root).parts) <= 5
        }
    )
    members = []
    for folder in folders:
        relative = folder.relative_to(root).as_posix()
        included = any(_matches(relative, p) for neg, p in clean if not neg)
        excluded = any(_matches(relative, p) for neg, p in clean if neg)
        if included and not excluded:
            members.append(folder)
    return members


def _matches(relative: str, pattern: str) -> bool:
    if "**" in pattern:
        return fnmatch.fnmatchcase(relative, pattern.replace("**/", "*").replace("**", "*"))
    parts, wanted = relative.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(
        fnmatch.fnmatchcase(a, b) for a, b in zip(parts, wanted, strict=True)
    )
