"""What a check finds and how strict it is: the types every part of `shipforge check` shares."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_KUBERNETES_VERSION = "1.32"


@dataclass(frozen=True)
class Problem:
    """One finding: of the descriptor, of drift, or of a linter."""

    source: str
    code: str
    path: str
    line: int | None
    message: str
    level: str = "error"  # error | warning | note
    failing: bool = True


@dataclass(frozen=True)
class ToolRun:
    """One linter job: which files it was given, whether it ran, and why not."""

    name: str
    tool: str
    files: tuple[str, ...]
    ran: bool
    skipped_reason: str = ""
    findings: int = 0


@dataclass
class Report:
    """Everything `shipforge check` found."""

    root: str
    descriptor: str = ""
    descriptor_status: str = ""
    generated: int = 0
    drift: dict[str, str] = field(default_factory=dict)
    tools: list[ToolRun] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Problem]:
        return [p for p in self.problems if p.failing]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Options:
    """How strict a check is and what it runs."""

    strict: bool = False
    require_tools: bool = False
    skip: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    lint: bool = True
    workers: int = 4
    # Pre-commit mode: lint only these files (relative to the root); drift still covers all.
    files: tuple[str, ...] | None = None
    # Called with one line per linter as it finishes (the CLI prints them on a terminal).
    progress: Callable[[str], None] | None = None


# The tool names --skip takes (a job's display name, e.g. "dotenv-linter (generated)", too).
TOOLS = (
    "actionlint",
    "check-jsonschema",
    "checkov",
    "detect-secrets",
    "docker-compose",
    "dotenv-linter",
    "hadolint",
    "kubernetes-validate",
    "kustomize",
    "promtool",
    "shellcheck",
    "terraform",
    "yamllint",
    "zizmor",
)


def unknown_skip(value: str) -> str:
    """Why a --skip value names no tool (with the closest one), or "" when it names one."""
    tool = value.split(" (", 1)[0]
    if tool in TOOLS:
        return ""
    close = difflib.get_close_matches(tool, TOOLS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"--skip {value!r} names no linter: {hint}known: {', '.join(TOOLS)}"
