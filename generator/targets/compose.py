"""compose: compose.yaml for development and compose.production.yaml for one host."""

from __future__ import annotations

from typing import Any

import yaml

from generator import fastyaml
from generator.errors import Issue
from generator.model import Project
from generator.render import Rendered
from generator.targets import monitoring

TEMPLATES = ("*compose.yaml*", "*compose.production.yaml*")

# The host ports the development datastores publish (compose.yaml).
DATASTORE_HOST_PORTS = {"postgres": 5432, "redis": 6379}


def host_ports(project: Project) -> dict[str, int]:
    """The host port each monitoring service publishes: its own in the monitoring block
    (monitoring.HOST_PORTS, away from the ports apps use) unless an app (any of its replicas'
    ports) or a datastore already publishes it, else the next free one. Both compose files bind
    them to 127.0.0.1, and two listeners cannot share a port even on different host addresses
    when one is 0.0.0.0 (a public production app)."""
    taken = {DATASTORE_HOST_PORTS[store.name] for store in project.datastores}
    for service in project.services:
        if service.web:
            taken.update(range(service.port, service.port + service.replicas))
    chosen: dict[str, int] = {}
    for name, port in monitoring.HOST_PORTS.items():
        while port in taken:
            port += 1
        taken.add(port)
        chosen[name] = port
    return chosen


def view(project: Project) -> dict[str, Any]:
    """What the compose templates need beyond the model: the monitoring services' host ports."""
    return {"host_port": host_ports(project)}


def check(project: Project, files: list[Rendered]) -> list[Issue]:
    """Both files parse; development publishes on 127.0.0.1 only; production builds nothing."""
    issues = []
    for file in files:
        try:
            document = fastyaml.load(file.content)
        except yaml.YAMLError as error:
            issues.append(Issue(f"not valid YAML: {error}", file.path))
            continue
        publishers: dict[int, str] = {}
        for name, service in document["services"].items():
            where = f"services.{name}"
            for port in published(service):
                if port in publishers:
                    issues.append(
                        Issue(
                            f"host port {port} is published by {publishers[port]} too",
                            file.path,
                            path=where,
                        )
                    )
                publishers.setdefault(port, name)
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


def published(service: dict[str, Any]) -> list[int]:
    """The host ports a compose service publishes ("[ip:]host[-end]:container" strings)."""
    ports: list[int] = []
    for entry in service.get("ports", []):
        host = str(entry).rsplit(":", 1)[0].rsplit(":", 1)[-1]
        first, _, last = host.partition("-")
        ports.extend(range(int(first), int(last or first) + 1))
    return ports
