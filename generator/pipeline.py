"""The one pipeline: load -> plan -> render -> check -> (decide and) write."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from generator.errors import CheckFailed, Issue
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
    issues = check_all(project, files) + _overlaps(files)
    if issues:
        raise CheckFailed(
            "generated files failed shipforge's own checks (a shipforge bug)", tuple(issues)
        )
    return files


def _overlaps(files: list[Rendered]) -> list[Issue]:
    """Two files at one path, or a file where another needs a folder: nothing could write both."""
    counts = Counter(f.path for f in files)
    seen = set(counts)
    issues = [Issue("generated twice", path) for path, n in sorted(counts.items()) if n > 1]
    for path in sorted(seen):
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in seen:
                issues.append(
                    Issue(f"is generated inside the generated file {'/'.join(parts[:i])}", path)
                )
    return issues


def generate(descriptor: Path, out: Path, force: bool = False) -> tuple[Project, list[Change]]:
    """Everything short of writing: the project and what writing would change under out."""
    project = load(descriptor)
    return project, changes(project, out, force)


def changes(
    project: Project, out: Path, force: bool = False, conflict: str = "inline"
) -> list[Change]:
    """What writing a loaded project's files would change under out.

    conflict: "inline" (markers in the file) or "rej" (shipforge's lines in the file, yours
    in PATH.rej).
    """
    return plan_changes(out, render_project(project), force, conflict)
