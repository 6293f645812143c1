"""The one pipeline: load -> plan -> render -> check -> (decide and) write."""

from __future__ import annotations

from pathlib import Path

from generator.errors import CheckFailed
from generator.loader import load
from generator.model import Project
from generator.render import Rendered, environment, plan, render
from generator.targets import check_all, context
from generator.writer import Change, plan_changes


def render_project(project: Project) -> list[Rendered]:
    """Plan, render and check every file of a project; raise if our own checks fail."""
    env = environment()
    variables = context(project)
    files = render(env, plan(env, variables), variables)
    issues = check_all(project, files)
    if issues:
        raise CheckFailed(
            "generated files failed shipforge's own checks (a shipforge bug)", tuple(issues)
        )
    return files


def generate(descriptor: Path, out: Path, force: bool = False) -> tuple[Project, list[Change]]:
    """Everything short of writing: the project and what writing would change under out."""
    project = load(descriptor)
    return project, changes(project, out, force)


def changes(project: Project, out: Path, force: bool = False) -> list[Change]:
    """What writing a loaded project's files would change under out."""
    return plan_changes(out, render_project(project), force)
