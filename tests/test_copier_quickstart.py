"""`copier copy` without a data file asks typed questions and writes a valid shipforge.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import generate_tree, tree


def copy(source: Path, destination: Path, *answers: str) -> subprocess.CompletedProcess[str]:
    copier = Path(sys.executable).with_name("copier")
    data = [arg for answer in answers for arg in ("--data", answer)]
    return subprocess.run(
        [
            str(copier),
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            *data,
            str(source),
            str(destination),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("answers", "service", "expected"),
    [
        (
            (),
            "web",
            {"runtime": "python", "package_manager": "pip", "port": 8000, "public": True},
        ),
        (
            (
                "project_name=queue-app",
                "runtime=node",
                "package_manager=pnpm",
                "web=false",
                'datastores_used=["redis", "postgres"]',
                "ci=gitlab",
                "deploy=kubernetes",
            ),
            "worker",
            {"runtime": "node", "package_manager": "pnpm", "command": "node worker.js"},
        ),
    ],
)
def test_typed_answers_become_a_descriptor_that_generates_the_same_files(
    template_source: Path,
    tmp_path: Path,
    answers: tuple[str, ...],
    service: str,
    expected: dict[str, object],
) -> None:
    copied = tmp_path / "copied"
    result = copy(template_source, copied, *answers)
    assert result.returncode == 0, result.stderr
    descriptor = yaml.safe_load((copied / "shipforge.yaml").read_text())
    assert expected.items() <= descriptor["services"][service].items()
    generated = generate_tree(copied / "shipforge.yaml", tmp_path / "generated")
    files = tree(copied)
    assert b"quickstart: true" in files.pop(".copier-answers.yml")
    files.pop("shipforge.yaml")
    want = tree(generated)
    assert sorted(files) == sorted(want)
    assert [p for p in want if files[p] != want[p]] == []


def test_the_answers_are_checked_as_they_are_given(template_source: Path, tmp_path: Path) -> None:
    for answer, message in (
        ("project_name=Bad_Name", "lowercase DNS label"),
        ("package_manager=npm", "a python package manager"),
        ("port=80", "1024 to 65535"),
    ):
        result = copy(template_source, tmp_path / answer.split("=")[0], answer)
        assert result.returncode != 0 and message in result.stderr, answer
