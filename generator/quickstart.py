"""`copier copy` without a data file: typed questions that become a valid shipforge.yaml.

copier.yml asks a handful of typed questions (name, runtime, package manager, port, command,
datastores, CI, deploy) and derives the descriptor's blocks from them through
`quickstart_blocks`; the copied project then gets a `shipforge.yaml` written by
`descriptor_text`, so `shipforge generate`, `check` and `upgrade` work in it at once.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from generator.loader import TOP_LEVEL_KEYS

NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
MANAGERS = {"python": ("pip", "poetry", "uv"), "node": ("npm", "pnpm", "yarn")}
# The targets each deploy value drives (the contract refuses a deploy without them).
DEPLOY_TARGETS: dict[str, dict[str, Any]] = {
    "kubernetes": {"kubernetes": True},
    "aws-ecs": {"terraform": "aws-ecs"},
    "gcp-cloud-run": {"terraform": "gcp-cloud-run"},
    "azure-container-apps": {"terraform": "azure-container-apps"},
    "pm2": {"pm2": True},
    "compose": {},
    "none": {},
}


def name_problem(value: Any) -> str:
    """A validator message for a project name, or "" when it is a valid DNS label."""
    if NAME.match(str(value)):
        return ""
    return (
        "a lowercase DNS label: a letter first, then letters, digits or '-', ending with a "
        "letter or digit, at most 40 characters"
    )


def manager_problem(runtime: Any, manager: Any) -> str:
    allowed = MANAGERS.get(str(runtime), ())
    return "" if manager in allowed else f"a {runtime} package manager: {', '.join(allowed)}"


def default_command(runtime: Any, web: Any, port: Any) -> str:
    """A start command that fits the usual layout; the question lets the user change it."""
    if runtime == "node":
        return "node server.js" if web else "node worker.js"
    if web:
        return f"uvicorn app.main:app --host 0.0.0.0 --port {port}"
    return "python -m app.worker"


def quickstart_blocks(
    project_name: str,
    runtime: str,
    package_manager: str,
    web: bool,
    port: int,
    command: str,
    datastores: list[str] | None,
    ci: str,
    deploy: str,
) -> dict[str, Any]:
    """The descriptor's blocks from the typed answers (one service, named web or worker)."""
    service: dict[str, Any] = {"runtime": runtime, "package_manager": package_manager}
    service["command"] = command
    if web:
        service["port"] = int(port)
        service["public"] = True
    used = [d for d in ("postgres", "redis") if d in (datastores or [])]
    if used:
        service["uses"] = used
    targets: dict[str, Any] = {"ci": ci, **DEPLOY_TARGETS.get(deploy, {})}
    return {
        "project": {"name": project_name},
        "services": {"web" if web else "worker": service},
        "datastores": {d: {} for d in used} or None,
        "targets": targets,
    }


def descriptor_text(**blocks: Any) -> str:
    """shipforge.yaml for the answers: the blocks that are set, in the contract's order."""
    descriptor = {
        key: blocks[key] for key in TOP_LEVEL_KEYS if blocks.get(key) not in (None, {}, "")
    }
    header = (
        "# shipforge.yaml, written by `copier copy` from your answers. Edit it, then run\n"
        "# `shipforge generate` (or `shipforge upgrade` for template updates).\n"
    )
    # The template adds the final newline.
    return header + yaml.safe_dump(descriptor, sort_keys=False, allow_unicode=True).rstrip("\n")
