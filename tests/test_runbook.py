"""DEPLOYMENT.md: the generated runbook covers topology, secrets, first deploy and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.loader import load
from tests.conftest import EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_runbook_covers_the_project(example: Path, generated: dict[str, Path]) -> None:
    project = load(example / "shipforge.yaml")
    runbook = (generated[example.name] / "DEPLOYMENT.md").read_text()
    diagram = runbook.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert diagram.startswith("flowchart LR\n")
    for service in project.services:
        assert f"  {service.name}[" in diagram
        for store in service.uses:
            assert f"  {service.name} --> {store}" in diagram
        if service.public:
            assert f"  internet --> {service.name}" in diagram
    for name in project.secrets:
        assert f"| `{name}` |" in runbook
    if any(s.release for s in project.services):
        assert "it never undoes a migration" in runbook
    if project.deploy != "none":
        assert f"deploy/{project.deploy}.sh rollback <environment>" in runbook
        assert "## First deploy" in runbook and "rolls back" in runbook


def test_runbook_can_be_turned_off(tmp_path: Path) -> None:
    from tests.conftest import generate_tree

    descriptor = tmp_path / "shipforge.yaml"
    descriptor.write_text(
        "version: 1\nproject: {name: quiet}\nservices:\n  w: {runtime: python, "
        "command: python w.py}\ntargets: {runbook: false}\n"
    )
    assert not (generate_tree(descriptor, tmp_path / "out") / "DEPLOYMENT.md").exists()
