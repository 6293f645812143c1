"""DEPLOYMENT.md: the generated runbook covers topology, secrets, first deploy and rollback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

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


READS_GITHUB = re.compile(r"\$\{\{\s*(?:vars|secrets)\.([A-Z][A-Z0-9_]*)\s*\}\}")
READS_SHELL = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")
REQUIRES = re.compile(r"require_vars ((?:[A-Z][A-Z0-9_]* ?)+)|smoke_vars\+=\(([A-Z0-9_]+)\)")


def _gitlab_reads(tree: Path, deploy: str) -> set[str]:
    """What the GitLab jobs and the deploy script read from CI/CD variables (images.sh's
    registry branches are not parsed: only the project's registry kind runs)."""
    pipeline = yaml.safe_load((tree / ".gitlab-ci.yml").read_text())
    text = (tree / ".gitlab-ci.yml").read_text()
    names = set(READS_SHELL.findall(text))
    for script in (tree / "deploy").glob(f"{deploy}.sh"):
        for literal, smoke in REQUIRES.findall(script.read_text()):
            names.update(literal.split() or [smoke])
    provided = {"GIT_SHA", "DOCKER_TLS_CERTDIR", "ROLLED_BACK_FROM", "SERVICE_PATH"}
    for job in pipeline.values():
        if isinstance(job, dict):
            provided |= set(job.get("variables") or {}) | set(job.get("id_tokens") or {})
    provided |= set(re.findall(r"export ([A-Z_]+)=", text))
    automatic = ("CI_", "GITLAB_", "GITHUB_", "PIP_", "POETRY_", "UV_", "YARN_")
    return {n for n in names - provided if not n.startswith(automatic)}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_runbook_lists_every_ci_variable_the_pipeline_reads(
    example: Path, generated: dict[str, Path]
) -> None:
    tree = generated[example.name]
    runbook = (tree / "DEPLOYMENT.md").read_text()
    if (tree / ".github").exists():
        reads = {
            name
            for workflow in (tree / ".github" / "workflows").glob("*.yml")
            for name in READS_GITHUB.findall(workflow.read_text())
        } - {"GITHUB_TOKEN"}
    elif (tree / ".gitlab-ci.yml").exists():
        reads = _gitlab_reads(tree, load(example / "shipforge.yaml").deploy)
    else:
        return
    section = runbook.split("## CI/CD variables", 1)[1].split("\n## ", 1)[0] if reads else ""
    missing = sorted(name for name in reads if f"| `{name}` |" not in section)
    assert not missing, f"{example.name}: DEPLOYMENT.md does not list {missing}"
