"""`shipforge audit`: an evidence-based production-readiness report of any repository.

Reads the tree through the safe reader (nothing outside it, no special file, bounded bytes),
parses every CI system it holds, runs each check of `checks.CHECKS`, and returns the findings
in a fixed order: the same tree always gives the same report.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from generator.audit.checks import CHECKS, FAIL, NA, PASS, Context, Finding
from generator.audit.pipelines import read_pipelines
from generator.audit.repo import Repo
from generator.errors import Issue, UsageError

__all__ = ["FAIL", "NA", "PASS", "AuditReport", "Finding", "run_audit"]


@dataclass(frozen=True)
class AuditReport:
    root: str
    findings: tuple[Finding, ...]
    systems: tuple[str, ...]
    notes: tuple[Issue, ...]
    files: int
    truncated: bool
    tools_missing: tuple[str, ...]

    @property
    def passed(self) -> int:
        return sum(f.status == PASS for f in self.findings)

    @property
    def applicable(self) -> int:
        return sum(f.status != NA for f in self.findings)

    @property
    def ok(self) -> bool:
        return not any(f.status == FAIL for f in self.findings)


def run_audit(root: Path, history: bool = False) -> AuditReport:
    """Audit the repository at root; raises UsageError when root is not a folder."""
    if not root.is_dir():
        raise UsageError(
            f"{root}: not a folder",
            (
                Issue(
                    "audit reads a repository folder", str(root), hint="pass the repository's root"
                ),
            ),
        )
    repo = Repo.open(root)
    if not repo.files:
        raise UsageError(
            f"{root}: nothing to audit",
            (Issue("the folder holds no file", str(root), hint="pass the repository's root"),),
        )
    # git and detect-secrets are the tools the audit runs (each when installed); the other
    # linters belong to `shipforge check`.
    from generator import lint

    missing = tuple(
        name
        for name, present in (
            ("git", shutil.which("git")),
            ("detect-secrets", lint.find_tool("detect-secrets-hook")),
        )
        if not present
    )
    context = Context(repo, read_pipelines(repo), history=history)
    findings: list[Finding] = []
    for area, check in CHECKS:
        for finding in check(context):
            findings.append(_in_area(finding, area))
    return AuditReport(
        str(root),
        tuple(findings),
        tuple(context.pipelines),
        tuple(repo.reader.notes),
        len(repo.files),
        repo.truncated,
        missing,
    )


def _in_area(finding: Finding, area: str) -> Finding:
    from dataclasses import replace

    return replace(finding, area=area)
