"""docker: one multi-stage Dockerfile per image and a .dockerignore per build context."""

from __future__ import annotations

import json

from generator.errors import Issue
from generator.model import Project
from generator.render import Rendered

TEMPLATES = ("*model.dockerfiles*", "*model.dockerignores*", "_shipforge_macros/dockerfile.jinja")


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """Every Dockerfile runs as the non-root app user, from pinned bases, with a JSON CMD."""
    issues = []
    for file in files:
        if file.path.endswith(".dockerignore"):
            continue
        lines = [line for line in file.content.splitlines() if line and not line.startswith("#")]
        froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
        users = [line.split()[1] for line in lines if line.startswith("USER ")]
        cmd = next((line for line in reversed(lines) if line.startswith("CMD ")), "")

        def fail(message: str, file: Rendered = file) -> None:
            issues.append(Issue(message, file.path))

        if any(":" not in image or image.endswith(":latest") for image in froms):
            fail(f"unpinned base image in {froms}")
        if users[-1:] != [f"{project.app_uid}:{project.app_uid}"]:
            fail("the final stage must run as the non-root app user")
        try:
            json.loads(cmd.removeprefix("CMD "))
        except ValueError:
            fail("CMD must be in JSON form")
    return issues
