"""compose: compose.yaml for development and compose.production.yaml for one host."""

from __future__ import annotations

import yaml

from generator.errors import Issue
from generator.model import Project
from generator.render import Rendered

TEMPLATES = ("*compose.yaml*", "*compose.production.yaml*")


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """Both files parse; development publishes on 127.0.0.1 only; production builds nothing."""
    issues = []
    for file in files:
        try:
            document = yaml.load(file.content, Loader=yaml.CSafeLoader)
        except yaml.YAMLError as error:
            issues.append(Issue(f"not valid YAML: {error}", file.path))
            continue
        for name, service in document["services"].items():
            where = f"services.{name}"
            if file.path == "compose.yaml":
                for port in service.get("ports", []):
                    if not str(port).startswith("127.0.0.1:"):
                        issues.append(
                            Issue(f"port {port} is not bound to 127.0.0.1", file.path, path=where)
                        )
            elif "build" in service or not service.get("read_only"):
                issues.append(
                    Issue(
                        "production services run prebuilt, read-only images", file.path, path=where
                    )
                )
    return issues
