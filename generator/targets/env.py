"""env: .env.example, .env.production.example and the .gitignore lines that protect real ones."""

from __future__ import annotations

from generator.errors import Issue
from generator.model import Project
from generator.render import Rendered

TEMPLATES = ("*.env.example*", "*.env.production.example*", "*.gitignore*")


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """No secret has a value in an .env template."""
    secret_names = {
        ".env.example": {e.name for e in project.env_development if e.secret},
        ".env.production.example": {e.name for e in project.env_production if e.secret},
    }
    issues = []
    for file in files:
        secrets = secret_names.get(file.path, set())
        for number, line in enumerate(file.content.splitlines(), start=1):
            name, _, value = line.partition("=")
            if name in secrets and value:
                issues.append(Issue(f"secret {name} has a value", file.path, number))
    return issues
