"""The report formats of `shipforge check`: text, JSON and GitLab code quality (SARIF: generator.sarif)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from generator.check.results import Report


def format_text(report: Report) -> str:
    """The human report: what was checked, what ran, what was skipped, every finding."""
    lines = [f"shipforge check: {report.root}"]
    if report.descriptor:
        lines.append(f"descriptor: {report.descriptor}: {report.descriptor_status}")
    if report.generated:
        counts: dict[str, int] = {}
        for status in report.drift.values():
            counts[status] = counts.get(status, 0) + 1
        same = report.generated - sum(n for s, n in counts.items() if s not in ("obsolete", "kept"))
        parts = [f"{same} up to date"] + [f"{n} {s}" for s, n in sorted(counts.items())]
        lines.append(f"generated files: {', '.join(parts)}")
    lines.extend(f"note: {note}" for note in report.notes)
    if report.tools:
        lines.append("linters:")
        width = max(len(t.name) for t in report.tools)
        for run in report.tools:
            if run.ran:
                files = f"{len(run.files)} file{'s' if len(run.files) != 1 else ''}"
                verdict = f"{run.findings} finding(s)" if run.findings else "ok"
                lines.append(f"  {run.name:<{width}}  ran on {files}: {verdict}")
            else:
                lines.append(f"  {run.name:<{width}}  skipped: {run.skipped_reason}")
    if report.problems:
        lines.append("findings:")
        for problem in report.problems:
            where = problem.path or "-"
            if problem.line is not None:
                where += f":{problem.line}"
            tag = "" if problem.failing else " (not a failure)"
            message = problem.message.replace("\n", "\n      ")
            lines.append(f"  {where}: {problem.source} {problem.code}{tag}: {message}")
    failures = len(report.failures)
    lines.append("result: ok" if not failures else f"result: {failures} problem(s) (exit 1)")
    return "\n".join(lines) + "\n"


def format_json(report: Report) -> str:
    """The report as JSON, for scripts."""
    data = asdict(report)
    data["ok"] = report.ok
    data["failures"] = len(report.failures)
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


_QUALITY_SEVERITY = {"error": "major", "warning": "minor", "note": "info"}


def format_gitlab(report: Report) -> str:
    """A GitLab code quality report (`artifacts: reports: codequality:`), free tier included."""
    fallback = report.descriptor or "."
    issues = []
    for problem in report.problems:
        path = problem.path or fallback
        key = "\0".join([problem.source, problem.code, path, str(problem.line), problem.message])
        issues.append(
            {
                "description": f"{problem.source} {problem.code}: {problem.message}",
                "check_name": f"{problem.source}/{problem.code}",
                "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
                "severity": _QUALITY_SEVERITY[problem.level] if problem.failing else "info",
                "location": {"path": path, "lines": {"begin": problem.line or 1}},
            }
        )
    return json.dumps(issues, indent=2) + "\n"
