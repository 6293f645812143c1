"""Turn a generator.lint result into a pytest outcome."""

from __future__ import annotations

import os

import pytest

from generator.lint import LintResult


def require(result: LintResult) -> None:
    """Pass when the tool ran and found nothing.

    A tool that is not installed skips the test locally but fails it under CI (CI is set), so
    CI can never go green by silently not running a linter.
    """
    if not result.ran:
        reason = f"{result.tool}: {result.skipped_reason}"
        if os.environ.get("CI"):
            pytest.fail(
                f"{reason} (CI must run every linter: run tests/install-tools.sh)", pytrace=False
            )
        pytest.skip(reason)
    if result.findings:
        lines = [f"{result.tool} reported {len(result.findings)} problem(s):"]
        for f in result.findings:
            where = f"{f.path}:{f.line}" if f.line is not None else (f.path or "-")
            lines.append(f"  {where}: [{f.code}] {f.message}")
        pytest.fail("\n".join(lines), pytrace=False)
