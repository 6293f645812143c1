"""Golden tests: each example's committed out/ tree is exactly what shipforge generates.

Reviewers read the out/ diff: it is the behaviour change. Refresh with `pytest --update-golden`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, copy_without_bookkeeping, tree


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_matches_golden(
    example: Path, generated: dict[str, Path], update_golden: bool
) -> None:
    out = generated[example.name]
    golden = example / "out"
    if update_golden:
        shutil.rmtree(golden, ignore_errors=True)
        copy_without_bookkeeping(out, golden)
    assert golden.is_dir(), f"{golden} is missing: run pytest --update-golden"
    expected, actual = tree(golden), tree(out)
    assert sorted(actual) == sorted(expected), "the set of generated files changed"
    changed = [path for path in expected if expected[path] != actual[path]]
    assert not changed, f"generated files differ from the golden tree: {changed}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_has_readme(example: Path) -> None:
    readme = example / "README.md"
    assert readme.is_file() and len(readme.read_text().split()) > 30
