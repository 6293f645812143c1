"""`copier copy` of this repository renders exactly the files `shipforge generate` renders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, tree

# Written by copier only: the record `copier update` replays.
COPIER_ONLY = ".copier-answers.yml"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_copier_copy_matches_generate(
    example: Path, template_source: Path, tmp_path: Path, generated: dict[str, Path]
) -> None:
    copier = Path(sys.executable).with_name("copier")
    result = subprocess.run(
        [
            str(copier),
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--data-file",
            str(example / "shipforge.yaml"),
            str(template_source),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    copied = tree(tmp_path)
    assert copied.pop(COPIER_ONLY).startswith(b"# Written by copier")
    expected = tree(generated[example.name])
    assert sorted(copied) == sorted(expected)
    assert [p for p in expected if copied[p] != expected[p]] == []
