"""Check a repository: the descriptor is valid, generated files match it, and every deployment
file passes the installed linters of its field.

`shipforge check` is the CI use of shipforge. Drift reuses the generate pipeline (nothing is
written) and the manifest that tells edits from stale files; linting reuses generator.lint. The
result is one `Report`, which the CLI prints as text, JSON, SARIF (generator.sarif) or a GitLab
code quality report. Without a descriptor it lints hand-written deployment files only.
"""

from __future__ import annotations

from pathlib import Path

from generator.check.discovery import Inventory, discover
from generator.check.drift import DRIFT, check_drift, check_recorded, copier_note, relative
from generator.check.jobs import Job, lint_inventory, plan_jobs
from generator.check.output import format_gitlab, format_json, format_text
from generator.check.results import (
    DEFAULT_KUBERNETES_VERSION,
    Options,
    Problem,
    Report,
    ToolRun,
)
from generator.repofs import RepoReader

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "DRIFT",
    "Inventory",
    "Job",
    "Options",
    "Problem",
    "Report",
    "ToolRun",
    "check_drift",
    "check_recorded",
    "discover",
    "format_gitlab",
    "format_json",
    "format_text",
    "lint_inventory",
    "plan_jobs",
    "relative",
    "run_check",
]


def run_check(root: Path, descriptor: Path | None, options: Options) -> Report:
    """Validate, compare and lint everything under root; print nothing."""
    root = root.resolve()
    report = Report(root=str(root))
    # The one reader of this check: what it refuses (links out, FIFOs, devices, oversized or
    # binary files) is never handed to a linter, and is said in the report.
    reader = RepoReader(root)
    clean: set[str] = set()
    if descriptor is not None:
        clean = check_drift(descriptor, root, report, options.strict)
        copier_note(root, report, reader)
    elif reader.is_file(root / ".shipforge" / "manifest.json"):
        clean = check_recorded(root, report, options.strict, reader)
    else:
        report.notes.append("no shipforge.yaml: linting the deployment files only")
    inventory = discover(root, options.exclude, reader)
    report.notes.extend(str(note) for note in reader.notes)
    for path, why in sorted(inventory.refused.items()):
        report.problems.append(
            Problem("shipforge", "not-checked", path, None, f"not handed to any linter: {why}")
        )
    if options.files is not None:
        inventory = inventory.only(options.files)
    if options.lint:
        # The descriptor when it is a file of the repository (and, in pre-commit mode, staged).
        own = ""
        if descriptor is not None and reader.is_file(descriptor.resolve()):
            own = relative(descriptor.resolve(), root)
        if options.files is not None and own not in options.files:
            own = ""
        lint_inventory(root, inventory, clean, options, report, reader, own)
    if descriptor is None and not inventory.all_files() and not inventory.refused:
        report.problems.append(
            Problem(
                "shipforge",
                "nothing-checked",
                "",
                None,
                "found no shipforge.yaml and no deployment file to check",
            )
        )
    return report
