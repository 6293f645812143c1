"""The registry of targets: each owns some templates and checks the files they render.

The descriptor key, the module, the registry name and the copier condition (in the template
file names) are the same word. A target may also derive values only its templates need (its
view, under `model.views.<target>`), so the core model stays free of any one target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from typing import Any

from generator.errors import Issue
from generator.model import Project
from generator.render import Rendered
from generator.targets import (
    ci,
    compose,
    docker,
    env,
    kubernetes,
    monitoring,
    pm2,
    runbook,
    terraform,
)

Check = Callable[[Project, list[Rendered]], list[Issue]]
View = Callable[[Project], dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """An artifact family: the template files it owns (globs), its output check, its view."""

    name: str
    templates: tuple[str, ...]
    check: Check
    view: View | None = None


TARGETS: tuple[Target, ...] = (
    Target("docker", docker.TEMPLATES, docker.check),
    Target("compose", compose.TEMPLATES, compose.check, compose.view),
    Target("env", env.TEMPLATES, env.check),
    Target("kubernetes", kubernetes.TEMPLATES, kubernetes.check, kubernetes.view),
    Target("monitoring", monitoring.TEMPLATES, monitoring.check, monitoring.view),
    Target("pm2", pm2.TEMPLATES, pm2.check, pm2.view),
    Target("terraform", terraform.TEMPLATES, terraform.check, terraform.view),
    Target("ci", ci.TEMPLATES, ci.check, ci.view),
    Target("runbook", runbook.TEMPLATES, runbook.check, runbook.view),
)


def context(project: Project) -> dict[str, Any]:
    """The whole template context, for `shipforge generate` and copier alike."""
    model = project.context()
    model["views"] = {t.name: t.view(project) for t in TARGETS if t.view is not None}
    return {"model": model}


@cache
def owner(template: str) -> Target | None:
    """The target whose templates include this template path (cached: a yielded template
    renders one file per service, and matching every one against every glob added up)."""
    for target in TARGETS:
        if any(fnmatch(template, pattern) for pattern in target.templates):
            return target
    return None


def check_all(project: Project, files: list[Rendered]) -> list[Issue]:
    """Run each target's check on the files it rendered."""
    issues: list[Issue] = []
    for target in TARGETS:
        mine = [f for f in files if owner(f.template) is target]
        if mine:
            issues.extend(target.check(project, mine))
    return issues
