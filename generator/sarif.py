"""A `shipforge check` report as SARIF 2.1.0, for code-scanning upload (GitHub and others).

One run whose driver is shipforge: GitHub code scanning takes one run per tool and category,
and the linters behind it are named by each rule's id (`hadolint/DL3007`, `zizmor/...`).
Findings without a file (a tool that failed, a tool that did not run) are notifications of the
invocation, not results, since code scanning needs a location for every result.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from generator import __version__
from generator.check import Problem, Report

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
ROOT_ID = "%SRCROOT%"


def _help_uri(source: str, code: str) -> str:
    """Where a rule is documented, for the tools whose rule pages have stable addresses."""
    if source == "hadolint" and code.startswith("DL"):
        return f"https://github.com/hadolint/hadolint/wiki/{code}"
    if code.startswith("SC") and code[2:].isdigit():
        return f"https://www.shellcheck.net/wiki/{code}"
    if source == "zizmor" and code != "tool-error":
        return f"https://docs.zizmor.sh/audits/#{code}"
    return ""


def _rule(problem: Problem) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"{problem.source}/{problem.code}",
        "name": problem.code,
        "shortDescription": {"text": f"{problem.source}: {problem.code}"},
        "properties": {"tool": problem.source},
    }
    uri = _help_uri(problem.source, problem.code)
    if uri:
        rule["helpUri"] = uri
    return rule


def _location(problem: Problem) -> dict[str, Any]:
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": quote(problem.path), "uriBaseId": ROOT_ID}
    }
    if problem.line is not None:
        physical["region"] = {"startLine": problem.line}
    return {"physicalLocation": physical}


def to_sarif(report: Report) -> dict[str, Any]:
    """The SARIF log of a report (a plain dict, ready for json.dumps)."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    execution: list[dict[str, Any]] = []
    for problem in report.problems:
        if not problem.path:
            execution.append(
                {
                    "level": "error" if problem.failing else "note",
                    "message": {"text": problem.message},
                    "descriptor": {"id": f"{problem.source}/{problem.code}"},
                }
            )
            continue
        rule_id = f"{problem.source}/{problem.code}"
        if rule_id not in index:
            index[rule_id] = len(rules)
            rules.append(_rule(problem))
        result: dict[str, Any] = {
            "ruleId": rule_id,
            "ruleIndex": index[rule_id],
            "message": {"text": problem.message},
            "locations": [_location(problem)],
        }
        if problem.failing:
            result["level"] = problem.level
        else:
            # Reported, but not a failure (an edit the user owns): SARIF's informational kind.
            result["kind"] = "informational"
            result["level"] = "none"
        results.append(result)
    configuration = [
        {
            "level": "warning",
            "message": {"text": f"{run.name} did not run: {run.skipped_reason}"},
            "descriptor": {"id": f"{run.tool}/skipped"},
        }
        for run in report.tools
        if not run.ran
    ]
    # What the check left out or noticed (a link out of the repository, a FIFO): said in the
    # uploaded log too, not only in the text report.
    execution += [
        {"level": "note", "message": {"text": note}, "descriptor": {"id": "shipforge/note"}}
        for note in report.notes
    ]
    tool_errors = any(p.code == "tool-error" for p in report.problems)
    invocation: dict[str, Any] = {"executionSuccessful": not tool_errors}
    if execution:
        invocation["toolExecutionNotifications"] = execution
    if configuration:
        invocation["toolConfigurationNotifications"] = configuration
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "shipforge",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "invocations": [invocation],
                "results": results,
            }
        ],
    }


def format_sarif(report: Report) -> str:
    """The SARIF log as text."""
    return json.dumps(to_sarif(report), indent=2) + "\n"
