"""Each file in tests/invalid/ breaks one rule; its header states the error it must produce.

Header lines: `# expect: <text in the message>`, `# path: <dotted path>`, `# line: <n or None>`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app

CASES = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def header(case: Path) -> dict[str, str]:
    fields = {}
    for line in case.read_text().splitlines():
        if not line.startswith("# ") or ":" not in line:
            break
        key, _, value = line[2:].partition(":")
        fields[key] = value.strip()
    return fields


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_invalid_descriptor_is_refused_with_its_place(case: Path, tmp_path: Path) -> None:
    expected = header(case)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", str(case), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), "an error escaped as an exception"
    message = result.stderr
    assert expected["expect"] in message
    if expected["path"]:
        assert expected["path"] in message
    if expected["line"] != "None":
        assert f"{case}:{expected['line']}:" in message
    assert not out.exists(), "nothing may be written for an invalid descriptor"
    assert CliRunner().invoke(app, ["validate", str(case)]).exit_code == 1


@pytest.mark.parametrize("name", ["misspelt-key", "bad-yaml", "secret-values"])
def test_real_process_prints_no_traceback(name: str, tmp_path: Path) -> None:
    case = Path(__file__).parent / "invalid" / f"{name}.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "generator", "generate", str(case), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "error:" in result.stderr
    assert header(case)["expect"] in result.stderr


def test_every_rule_file_has_a_header() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert {"expect", "path", "line"} <= header(case).keys(), case.name
